"""A crash of containerd or the kubelet while a build runs, on the real node (issue 21, item 3).

A push starts a build; once one of its steps runs, the daemon is killed with SIGKILL by its pid (as a
crash would end it), stays down for a few seconds, and is started again the way the node starts it (a
service supervisor's restart). The build must end cleanly — it succeeds, or it fails and the next push
succeeds — never hang; nothing the stack keeps is lost (every earlier build, the repositories, the
registry's tags, the CA), every workload is Ready again, and the app serves the newest version.
"""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from homeci.flow import driver
from homeci_testing.daytwo import (
    DayTwo,
    phases,
    pods_table,
    progress,
    stack_state,
    wait_ready,
    workload_pods,
)

console = Console(force_terminal=False, width=180)
DOWN_SECONDS = 5


def _start_build(d2: DayTwo, label: str) -> tuple[str, str, int]:
    """Commit and push a new version; returns (version, commit, build number) once a step runs."""
    _, drone, _ = driver.clients(d2.stack)
    version = f"1.0.{len(d2.rounds) + 1}-{label}.{time.strftime('%H%M%S')}"
    sha = driver.commit(d2.repo, version)
    driver.push(d2.stack, d2.repo, d2.app)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for b in drone.builds(d2.app.owner, d2.app.name):
            if b.get("after") != sha:
                continue
            build = drone.build(d2.app.owner, d2.app.name, int(b["number"]))
            steps = [s for st in build.get("stages") or [] for s in st.get("steps") or []]
            running = [s["name"] for s in steps if s.get("status") == "running" and s["name"] != "clone"]
            if running:
                return version, sha, int(b["number"])
        time.sleep(0.5)
    raise AssertionError(f"no step of the build of {sha[:12]} started within 300s")


@pytest.mark.parametrize("daemon", ["containerd", "kubelet"])
def test_a_daemon_crash_during_a_build_loses_nothing(day_two: DayTwo, daemon: str) -> None:
    d2 = day_two
    api = d2.cluster.api()
    say = progress(f"crash {daemon}")
    before = stack_state(d2.stack, d2.app)
    pods = workload_pods(api)
    version, sha, number = _start_build(d2, f"crash-{daemon}")
    pid = d2.cluster.crash(daemon)
    say(f"build #{number} running: {daemon} (pid {pid}) killed with SIGKILL")
    time.sleep(DOWN_SECONDS)
    started = time.monotonic()
    new = d2.cluster.restart_daemon(daemon)
    say(f"{daemon} started again (pid {new}) in {time.monotonic() - started:.1f}s")

    _, drone, _ = driver.clients(d2.stack)
    build = driver.wait_build(drone, d2.app, sha, timeout=900, progress=say)
    assert build is not None and build.get("status") in driver.FINISHED, f"build #{number}: {build}"
    outcome = str(build["status"])
    say(f"build #{number} ended: {outcome}; " + ", ".join(f"{p.name} {p.status}"
                                                       for p in driver.step_phases(build)))
    if outcome == "success":
        driver.wait_served(d2.stack, d2.app, version, timeout=300)
        rnd = driver.Round(version, sha, build)
        rnd.phases.extend(driver.step_phases(build))
        d2.rounds.append(rnd)
    else:
        log = driver.failed_step_log(drone, d2.app, build)
        say(f"the build failed cleanly ({log[:300]}); the next push must succeed")
        rnd = d2.push(f"after-{daemon}")
        assert rnd.ok, f"the push after the {daemon} crash: {phases(rnd)}"
    seconds = wait_ready(api, timeout=300)
    after = stack_state(d2.stack, d2.app)
    console.print(pods_table(f"pods across the {daemon} crash", pods, workload_pods(api)))
    say(f"every workload Ready {seconds:.0f}s after the build; build #{number}: {outcome}")

    grows = ("Drone builds", "registry tags")  # the new build and its image are added; the head moves
    kept = {k: v for k, v in before.items() if not k.startswith(grows) and not k.endswith(" head")}
    assert {k: after[k] for k in kept} == kept, f"the {daemon} crash changed: {after}"
    for key in ("Drone builds (number status commit)", "registry tags of the app"):
        gone = sorted(set(before[key]) - set(after[key]))
        assert not gone, f"after the {daemon} crash {key} lost {gone}"
    driver.wait_served(d2.stack, d2.app, d2.served, timeout=120)
