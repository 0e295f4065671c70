"""The promise of homeci, end to end on a real cluster: a push to Gogs is built by Drone in pods,
the image lands in the registry, the app rolls out and answers over HTTPS through Traefik, trusting
only the homeci CA — then the failure paths: a failing test, a crashing image, and a push to another
branch (built, not deployed, with the reason in its log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from homeci.flow import driver, setup
from homeci.flow.clients import Drone

console = Console(force_terminal=False, width=160)


def _steps(build: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for st in build.get("stages") or [] for s in st.get("steps") or []}


def test_first_push_creates_the_app_and_second_push_updates_it(served: list[driver.Round]) -> None:
    assert len(served) == 2, f"stopped after round {len(served)}: {served[-1].phases}"
    for rnd in served:
        bad = [p for p in rnd.phases if p.status not in ("ok", "success")]
        assert not bad, f"version {rnd.version}: phases not ok: {[(p.name, p.status, p.detail) for p in bad]}"
        assert _steps(rnd.build) == {"clone": "success", "test": "success", "build": "success",
                                     "deploy": "success"}, f"build #{rnd.build['number']} steps"


def _old_version_still_served(prepared: setup.Prepared, version: str) -> None:
    driver.wait_served(prepared.stack, prepared.app, version, timeout=30)


def test_failing_unit_test_fails_the_build_and_the_old_version_keeps_serving(
    prepared: setup.Prepared, repo: Path, served: list[driver.Round]
) -> None:
    def break_tests(r: Path) -> None:
        (r / "test_broken.py").write_text(
            "import unittest\n\n\nclass Broken(unittest.TestCase):\n"
            "    def test_fails(self) -> None:\n        self.assertEqual(1, 2)\n")

    rnd = driver.deliver(prepared.stack, prepared.app, repo, "1.0.9-broken-test", timeout=600,
                         edit=break_tests)
    steps = _steps(rnd.build)
    number = rnd.build.get("number")
    assert rnd.build.get("status") == "failure", f"build #{number}: status with a failed test"
    # The sample app builds beside its tests (parallel_build), so the build may finish; deploy never runs.
    assert steps.get("test") == "failure" and steps.get("deploy", "skipped") == "skipped", f"steps: {steps}"
    failed = next(p for p in rnd.phases if p.name == "build" and p.status == "failure")
    assert "test_fails" in failed.detail, f"the failed step's log must show the test: {failed.detail[-500:]}"
    _old_version_still_served(prepared, served[-1].version)
    (repo / "test_broken.py").unlink()


def test_crashing_image_fails_the_deploy_step_and_the_old_version_keeps_serving(
    prepared: setup.Prepared, repo: Path, served: list[driver.Round]
) -> None:
    def crash(r: Path) -> None:
        app = r / "sample_app.py"
        text = app.read_text()
        (r / "sample_app.py.orig").write_text(text)
        main = 'if __name__ == "__main__":'
        app.write_text(text.replace(main, main + "\n    sys.exit(3)", 1))

    rnd = driver.deliver(prepared.stack, prepared.app, repo, "1.0.9-crash", timeout=900, edit=crash)
    steps = _steps(rnd.build)
    assert steps.get("build") == "success" and steps.get("deploy") == "failure", f"steps: {steps}"
    failed = next(p for p in rnd.phases if p.name == "build" and p.status == "failure")
    assert "Progressing=False" in failed.detail or "ProgressDeadlineExceeded" in failed.detail, (
        f"the deploy step's log must show the Deployment's conditions: {failed.detail[-800:]}"
    )
    _old_version_still_served(prepared, served[-1].version)
    orig = repo / "sample_app.py.orig"
    (repo / "sample_app.py").write_text(orig.read_text())
    orig.unlink()


def test_push_to_another_branch_builds_and_says_why_it_did_not_deploy(
    prepared: setup.Prepared, repo: Path, served: list[driver.Round]
) -> None:
    """Issue 19 item 5: no silent nothing. A push to a branch that does not deploy is built (tests and
    image, no push) and its last step tells, in Drone's log, why nothing was deployed and how to change it."""
    sha = driver.commit(repo, "1.0.9-other-branch")
    driver.push(prepared.stack, repo, prepared.app, branch="feature")
    drone = Drone(prepared.stack.web, prepared.stack.url("ci"), prepared.stack.machine_token)
    build = driver.wait_build(drone, prepared.app, sha, timeout=600)
    assert build is not None, "a push to branch feature started no build"
    steps = _steps(build)
    assert build.get("status") == "success" and steps == {
        "clone": "success", "test": "success", "build": "success", "no-deploy": "success"}, (
        f"build #{build.get('number')} of branch feature: {build.get('status')} {steps}"
    )
    stage = build["stages"][0]
    step = next(s for s in stage["steps"] if s["name"] == "no-deploy")
    log = drone.logs(prepared.app.owner, prepared.app.name, int(build["number"]), int(stage["number"]),
                     int(step["number"]))
    why = "branch feature was tested and built, but not pushed or deployed: only pushes to main deploy"
    assert why in log, f"the no-deploy step must say why: {log[-800:]}"
    assert "set branch: feature under data in .drone.yml" in log, f"and how to deploy it: {log[-800:]}"
    _old_version_still_served(prepared, served[-1].version)
