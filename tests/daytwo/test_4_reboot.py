"""A reboot of the real node (issue 21, item 3): ``homeci cluster stop``, then ``homeci cluster start``.

``stop`` ends every process as a machine's shutdown does (the pods get SIGTERM and a grace period, then
the node and the control plane stop; the namespaces and cgroups go) and keeps the state: etcd's data,
containerd's images, the PKI, the volume folders, the /etc overlay (node trust's registry configuration)
and the host ports. ``start`` boots the same node from it. Without any other step the stack must be Ready
and the app must serve its last version; the time from ``start`` to Ready is printed (nodes, every
workload, the app answering). The same pods come back (same uids, restarted in place), on the same
volumes, with the same data, and the next push builds and deploys.
"""

from __future__ import annotations

import datetime as dt
import time

from rich.console import Console

from homeci.flow import driver
from homeci_testing.daytwo import (
    DayTwo,
    phases,
    pods_table,
    progress,
    stack_state,
    state_table,
    wait_ready,
    wait_routed,
    workload_pods,
)
from homeci_testing.support import run_cli

console = Console(force_terminal=False, width=180)


def test_stop_and_start_bring_the_stack_back_by_itself(day_two: DayTwo) -> None:
    d2 = day_two
    cluster = d2.cluster
    say = progress("reboot")
    before = stack_state(d2.stack, d2.app)
    pods = workload_pods(cluster.api())
    images = set(cluster.images())
    port, ca = cluster.https_port(), (cluster.layout.pki / "ca.crt").read_bytes()

    result = run_cli("cluster", "stop", "--provider", "netns", "--name", cluster.name)
    assert result.exit_code == 0, result.stderr or result.stdout
    st = cluster.status()
    assert st.exists and st.stopped and not st.ready and not any(st.processes.values()), f"stopped: {st}"
    assert not cluster.healthy(), "the API server still answers after stop"
    say(f"stopped: {result.stdout.strip()}")

    booted = dt.datetime.now(dt.UTC).replace(microsecond=0)  # conditions are stamped in whole seconds
    started = time.monotonic()
    result = run_cli("cluster", "start", "--provider", "netns", "--name", cluster.name)
    nodes_ready = time.monotonic() - started
    assert result.exit_code == 0, result.stderr or result.stdout
    say(result.stdout.strip())
    api = cluster.api()
    wait_ready(api, timeout=600, since=booted)
    stack_ready = time.monotonic() - started
    driver.wait_served(d2.stack, d2.app, d2.served, timeout=300)
    serving = time.monotonic() - started
    wait_routed(d2.stack)
    routed = time.monotonic() - started
    print(f"[reboot] start -> Ready: nodes {nodes_ready:.1f}s, every pod Ready again {stack_ready:.1f}s, "
          f"the app serving {d2.served} {serving:.1f}s, Gogs and Drone {routed:.1f}s", flush=True)

    after = stack_state(d2.stack, d2.app)
    pods_after = workload_pods(api)
    console.print(pods_table("pods across stop and start", pods, pods_after))
    console.print(state_table("stop → start", ("before", "after"), before, after))
    assert after == before, "the reboot changed what users keep"
    same = {w: (p.uid, p.claims) for w, p in pods.items()}
    assert {w: (p.uid, p.claims) for w, p in pods_after.items()} == same, (
        "pods were replaced, or came back on other volumes")
    assert all(pods_after[w].restarts > p.restarts for w, p in pods.items()), "a pod did not restart"
    assert images <= set(cluster.images()), f"images lost: {sorted(images - set(cluster.images()))}"
    assert cluster.https_port() == port, "the host port changed"
    assert (cluster.layout.pki / "ca.crt").read_bytes() == ca, "the cluster's CA changed"
    assert not cluster.stopped() and cluster.healthy()

    rnd = d2.push("rebooted")
    assert rnd.ok, f"the first push after the reboot: {phases(rnd)}"
