"""T3 attack: repositories of a team member (alice, not the admin) whose pipelines try to cross a trust
boundary. Each attempt must be refused, by the mechanism the test names, while the normal loop keeps
working (the sample app of test_push_to_deploy.py still answers afterwards).

The repositories are in tests/integration/attacks/ (their README lists each attempt). alice creates
them in her Gogs account, activates them in Drone with her own session (so her token, not the admin's,
is the clone credential), and pushes them with git.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from homeci.flow import setup
from homeci.flow.clients import Drone
from homeci.flow.web import basic, expect
from homeci_testing import team

ATTACKS = Path(__file__).resolve().parent / "attacks"
LINE = re.compile(r"ATTACK (\S+) (REFUSED|OPEN) ?(.*)")


def _gogs_token(prepared: setup.Prepared, member: team.Member) -> str:
    stack = prepared.stack
    resp = stack.web.request("POST", f"{stack.url('git')}/api/v1/users/{member.name}/tokens",
                             body=json.dumps({"name": f"attack-tier-{uuid.uuid4().hex[:6]}"}).encode(),
                             headers={"Content-Type": "application/json",
                                      **basic(member.name, member.password)})
    return str(expect(resp, (201,), f"Gogs token for {member.name}").json()["sha1"])


def _runner_restarts(prepared: setup.Prepared) -> int:
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(prepared.kubeconfig)))
    pods = core.list_namespaced_pod(prepared.stack.namespace,
                                    label_selector="app.kubernetes.io/component=ci-runner")
    return sum(cs.restart_count for p in pods.items for cs in p.status.container_statuses or [])


@pytest.fixture(scope="module")
def runner_restarts_before(prepared: setup.Prepared) -> int:
    return _runner_restarts(prepared)


@pytest.fixture(scope="module")
def attacks(runner_restarts_before: int, prepared: setup.Prepared, alice: team.Member,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Drone, dict[str, Any]]]:
    """Every attack repository created, activated by alice and pushed; name -> (her Drone, finished build)."""
    stack = prepared.stack
    token = _gogs_token(prepared, alice)
    names = sorted(p.name for p in ATTACKS.iterdir() if p.is_dir())
    for name in names:
        resp = stack.web.request("POST", f"{stack.url('git')}/api/v1/user/repos",
                                 body=json.dumps({"name": f"attack-{name}", "private": True}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"token {token}"})
        expect(resp, (201, 409, 422), f"Gogs: create {alice.name}/attack-{name}")
    mine = team.drone_as(stack, alice)
    mine.sync()
    shas = {}
    for name in names:
        mine.activate(alice.name, f"attack-{name}")
        shas[name] = team.push_repository(stack, alice, ATTACKS / name, f"attack-{name}",
                                          tmp_path_factory.mktemp(name), branch="main")
    builds: dict[str, tuple[Drone, dict[str, Any]]] = {}
    deadline = time.monotonic() + 900
    while len(builds) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name in builds:
                continue
            for b in mine.builds(alice.name, f"attack-{name}"):
                if b.get("after") == shas[name] and b.get("status") not in ("pending", "running"):
                    builds[name] = (mine, mine.build(alice.name, f"attack-{name}", int(b["number"])))
        time.sleep(3)
    missing = sorted(set(names) - set(builds))
    assert not missing, f"attack builds that did not finish in 15 minutes: {missing}"
    return builds


def _log_of(drone: Drone, owner: str, repo: str, build: dict[str, Any], step: str) -> str:
    for stage in build.get("stages") or []:
        for s in stage.get("steps") or []:
            if s["name"] == step:
                return drone.logs(owner, repo, int(build["number"]), int(stage["number"]), int(s["number"]))
    return ""


def _errors(build: dict[str, Any]) -> str:
    """Every error Drone recorded for the build, its stages and steps (what its UI shows)."""
    parts = [str(build.get("error") or "")]
    for stage in build.get("stages") or []:
        parts.append(str(stage.get("error") or ""))
        parts += [str(s.get("error") or "") for s in stage.get("steps") or []]
    return " | ".join(p for p in parts if p)


def _lines(log: str) -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in LINE.finditer(log)}


def test_a_step_finds_no_token_cannot_touch_trust_and_cannot_reach_rpc(
        attacks: dict[str, tuple[Drone, dict[str, Any]]], alice: team.Member) -> None:
    drone, build = attacks["snoop"]
    log = _log_of(drone, alice.name, "attack-snoop", build, "look-around")
    seen = _lines(log)
    expected = {"netrc-file", "token-env", "ca-write", "ca-mkdir", "ca-replace", "rpc-public", "read-secrets"}
    missing = expected - set(seen)
    assert not missing, f"attempts missing from the step's log: {missing}\n{log[-2000:]}"
    open_ = {k: v for k, v in seen.items() if v[0] != "REFUSED"}
    assert not open_, f"attempts that got through: {open_}"
    assert "Read-only file system" in seen["ca-write"][1], f"the CA folder is read-only: {seen['ca-write']}"
    assert "HTTP 404" in seen["rpc-public"][1], f"/rpc is not served publicly: {seen['rpc-public']}"
    assert "HTTP 403" in seen["read-secrets"][1], (
        f"the step's ServiceAccount reads nothing: {seen['read-secrets']}")
    assert build["status"] == "success", f"attack-snoop build: {build['status']} {_errors(build)}"


@pytest.mark.parametrize("name", ["alias-netrc", "no-clone"])
def test_the_clone_credential_reaches_no_other_step(
        attacks: dict[str, tuple[Drone, dict[str, Any]]], alice: team.Member, name: str) -> None:
    drone, build = attacks[name]
    errors = _errors(build)
    assert build["status"] in ("error", "failure"), f"attack-{name}: {build['status']}"
    assert "the clone credential (DRONE_NETRC_*) may reach only the clone step" in errors, (
        f"attack-{name} must be refused by the build namespace's admission policy: {errors}")
    for step in ("steal", "first"):
        assert "OPEN" not in _log_of(drone, alice.name, f"attack-{name}", build, step)


@pytest.mark.parametrize(("name", "words"), [
    ("privileged", "untrusted repositories cannot enable privileged mode"),
    ("hostpath", "untrusted repositories cannot mount host volumes"),
])
def test_the_linter_refuses_untrusted_privilege(attacks: dict[str, tuple[Drone, dict[str, Any]]],
                                                name: str, words: str) -> None:
    _, build = attacks[name]
    errors = _errors(build)
    assert build["status"] in ("error", "failure") and words in errors.lower(), (
        f"attack-{name}: {build['status']}, errors: {errors}")


def test_another_owners_deployer_cannot_be_borrowed(attacks: dict[str, tuple[Drone, dict[str, Any]]],
                                                    alice: team.Member) -> None:
    drone, build = attacks["other-deployer"]
    errors = _errors(build)
    assert build["status"] in ("error", "failure"), f"attack-other-deployer: {build['status']}"
    assert "homeci-pipelines-deployer-homeci" in errors and "homeci:" in errors, (
        f"the pod with another owner's deployer must be refused with drone-pipelines' message: {errors}")
    assert "OPEN" not in _log_of(drone, alice.name, "attack-other-deployer", build, "deploy-elsewhere")


def test_a_deployer_stays_inside_its_app(attacks: dict[str, tuple[Drone, dict[str, Any]]],
                                         alice: team.Member) -> None:
    drone, build = attacks["deployer"]
    log = _log_of(drone, alice.name, "attack-deployer", build, "overreach")
    seen = _lines(log)
    expected = {"ingress-registry-v2": "homeci:", "ingress-git": "homeci:",
                "ingress-outside-domain": "homeci:",
                "ingress-other-app": "homeci:", "deploy-other-namespace": "forbidden",
                "privileged-deployment": "homeci:", "mount-pull-secret": "homeci:",
                "other-serviceaccount": "homeci:"}
    assert set(expected) <= set(seen), f"attempts missing: {set(expected) - set(seen)}\n{log[-2000:]}"
    for ident, word in expected.items():
        verdict, answer = seen[ident]
        assert verdict == "REFUSED", f"{ident} got through: {answer}"
        assert word.lower() in answer.lower(), f"{ident}: refused, but not by the expected rule: {answer}"
    assert build["status"] == "success", f"attack-deployer: {build['status']} {_errors(build)}"


def test_an_oversized_build_is_refused_when_it_starts(
        attacks: dict[str, tuple[Drone, dict[str, Any]]]) -> None:
    _, build = attacks["many-steps"]
    errors = _errors(build)
    assert build["status"] in ("error", "failure"), f"attack-many-steps: {build['status']}"
    assert "step containers, more than the 16 one build may have" in errors, errors


def test_the_normal_loop_still_works(prepared: setup.Prepared, attacks: dict[str, Any],
                                     runner_restarts_before: int, served: list[Any]) -> None:
    """After every attack, the sample app (owner homeci, namespace apps) still answers its last version,
    and the runner never restarted (drone-runner-kube 1.0.0-rc.5 crashes on a refused pod creation: the
    policies refuse steps, never pods, so one repository cannot stop everyone's builds)."""
    restarts = _runner_restarts(prepared)
    assert restarts == runner_restarts_before, "the Drone runner restarted during the attacks"
    from homeci.flow import driver

    assert served and served[-1].ok, "the sample app's pushes must have worked"
    driver.wait_served(prepared.stack, prepared.app, served[-1].version, timeout=60)
