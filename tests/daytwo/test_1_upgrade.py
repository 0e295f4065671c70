"""Upgrade with data on the real node (issue 21, item 2), then downgrades.

The node runs the previous release (its packaged charts, the images they name) with the sample app pushed
twice and served (fixture ``day_two``). The working tree is installed over it the way ``homeci cluster
install`` does (``helm upgrade --install --wait``, then drone-pipelines) while a prober requests the app
every 0.25 s. Afterwards every pod that restarted must run on the same volumes (claims and
PersistentVolumes compared by uid and name), the repositories, builds, activation, Drone secrets, registry
tags, the CA and every generated Secret are the same, the longest gap is printed, and the next push builds
and deploys. Tables of both comparisons are printed (run with ``-s``).

Downgrades: a chart whose Gogs, Drone or registry is older than the one that wrote the data is refused
before anything changes (ConfigMap ``homeci-versions``); the previous release itself runs the same
programs, so going back to it is allowed — it is done, the data checked, and the working tree installed
again.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from rich.console import Console

from homeci.cluster.install import install_stack
from homeci.helm import Helm, HelmError
from homeci_testing.chartrepo import with_older_program
from homeci_testing.clusters import generated_keys
from homeci_testing.daytwo import (
    DayTwo,
    Prober,
    app_url,
    generated_secrets,
    phases,
    pods_table,
    progress,
    same_htpasswd_login,
    stack_state,
    state_table,
    workload_pods,
)
from homeci_testing.support import RELEASE, UMBRELLA

console = Console(force_terminal=False, width=180)
# The app runs in its own namespace behind the stack's Traefik: an upgrade that rolls Traefik must not
# leave it unreachable for longer than this (a single Traefik replica is replaced, not doubled).
GAP_LIMIT = 15.0


def test_upgrade_from_the_previous_release_keeps_the_data_and_the_app_serving(day_two: DayTwo) -> None:
    d2 = day_two
    api = d2.cluster.api()
    helm = Helm(3, kubeconfig=d2.cluster.kubeconfig)
    before = stack_state(d2.stack, d2.app)
    pods_before, secrets_before = workload_pods(api), generated_secrets(api)
    say = progress("upgrade")
    with Prober(d2.stack, app_url(d2.stack, d2.app)) as prober:
        started = time.monotonic()
        installed = install_stack(d2.cluster, progress=say, workdir=d2.workdir / "upgraded")
        took = time.monotonic() - started
        time.sleep(5)  # a few answers after the upgrade returned
    gap, why = prober.longest_gap()
    print(f"[upgrade] {d2.previous.label} -> working tree: {took:.0f}s; app {prober.summary()}", flush=True)
    d2.installed = installed

    charts = [h["chart"] for h in helm.history(RELEASE, namespace="homeci")]
    assert charts[0] == f"homeci-umbrella-{d2.previous.label}" and len(charts) >= 2, (
        f"release history {charts}: the previous release, then the working tree")
    pods_after = workload_pods(api)
    console.print(pods_table("pods and volumes across the upgrade", pods_before, pods_after))
    after = stack_state(d2.stack, d2.app)
    title = f"upgrade {d2.previous.label} → working tree"
    console.print(state_table(title, ("before", "after"), before, after))

    moved = [f"{w}: {b.claims} -> {pods_after[w].claims}" for w, b in pods_before.items()
             if w in pods_after and pods_after[w].claims != b.claims]
    assert not moved, f"pods came back on other volumes (claim uid or PersistentVolume changed): {moved}"
    lost = [w for w, b in pods_before.items() if b.claims and w not in pods_after]
    assert not lost, f"workloads with volumes are gone after the upgrade: {lost}"
    different = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not different, f"the upgrade changed what users keep: {different}"
    must_keep = generated_keys(UMBRELLA)
    must_keep["homeci-admin"] = set(secrets_before.get("homeci-admin", {}))
    now = generated_secrets(api)
    changed = [f"Secret/{name} data[{key}]" for name, keys in sorted(must_keep.items())
               for key in sorted(keys) if key in secrets_before.get(name, {})
               and now.get(name, {}).get(key) != secrets_before[name][key]]
    # the rehash hook remakes Helm's cost-10 htpasswd line once; the same user and password must still work
    auth = f"{RELEASE}-registry-auth"
    if f"Secret/{auth} data[htpasswd]" in changed:
        changed.remove(f"Secret/{auth} data[htpasswd]")
        why = same_htpasswd_login(secrets_before[auth], now.get(auth, {}))
        assert why is None, f"Secret/{auth}: the rehashed htpasswd line: {why}"
    assert not changed, f"the upgrade replaced generated values: {changed}"
    assert gap <= GAP_LIMIT, (f"the app stopped answering for {gap:.1f}s during the upgrade (limit "
                              f"{GAP_LIMIT:.0f}s): {why}")

    rnd = d2.push("upgraded")
    assert rnd.ok, f"the first push after the upgrade: {phases(rnd)}"


def test_a_downgrade_to_an_older_gogs_is_refused_and_the_previous_release_is_allowed(
        day_two: DayTwo, tmp_path: Path) -> None:
    d2 = day_two
    api = d2.cluster.api()
    helm = Helm(3, kubeconfig=d2.cluster.kubeconfig)
    revision = helm.status(RELEASE, namespace="homeci")["version"]
    pods = workload_pods(api)
    try:
        older = with_older_program(UMBRELLA, tmp_path, "gogs", "next-0.14.2")
        helm.upgrade(RELEASE, older, namespace="homeci", install=False, timeout="5m")
        raise AssertionError("a chart with Gogs 0.14.2 was installed over data Gogs 0.14.3 wrote")
    except HelmError as exc:
        refusal = str(exc)
    print(f"[downgrade] older Gogs: {refusal}", flush=True)
    assert "the downgrade is refused and nothing was changed" in refusal, refusal
    assert helm.status(RELEASE, namespace="homeci")["version"] == revision, "the refusal made a revision"
    assert {w: p.uid for w, p in workload_pods(api).items()} == {w: p.uid for w, p in pods.items()}, (
        "a refused downgrade restarted pods")

    # The previous release runs the same Gogs, Drone and registry: going back loses nothing, so it is
    # allowed. Done for real (its chart, --wait), the data checked, then the working tree again.
    before = stack_state(d2.stack, d2.app)
    say = progress("downgrade")
    values = d2.workdir / "netns-values.yaml"
    values.write_text(yaml.safe_dump(d2.cluster.values()))
    with Prober(d2.stack, app_url(d2.stack, d2.app)) as prober:
        helm.upgrade(RELEASE, d2.previous.umbrella, namespace="homeci", values_files=[values], timeout="10m")
        back = stack_state(d2.stack, d2.app)
        say(f"on {d2.previous.label} again; app {prober.summary()}")
        d2.installed = install_stack(d2.cluster, progress=say, workdir=d2.workdir / "again")
    console.print(state_table(f"working tree → {d2.previous.label} (downgrade)", ("before", "after"), before,
                              back))
    different = {k: (before[k], back.get(k)) for k in before if back.get(k) != before[k]}
    assert not different, f"the downgrade to {d2.previous.label} lost: {different}"
    again = stack_state(d2.stack, d2.app)
    assert again == before, f"upgraded again: {again} != {before}"
