"""Backup on one real node, restore on another (issue 21, item 1).

Node A is the day-two node (fixture ``day_two``: the stack upgraded from the previous release, the sample
app pushed after each of the tier's operations), with a Drone repository secret added; its state is
recorded, the scheduled backup (the CronJob) runs once and ``homeci backup`` writes the archive; the two
must hold the same things. A is destroyed. Node B: a new node with the images loaded, ``homeci restore``
of the archive. The same state must be read back on B — repositories and their heads, build history,
activation, Drone secrets, registry images, the CA fingerprint, the admin's password — the app must
serve the last version, and the next push must build and deploy as the next build number. The
comparison table and the restore's steps are printed (run with ``-s``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from homeci import contract
from homeci.cluster.install import default_images, read_stack
from homeci.cluster.netns import NetnsCluster
from homeci.flow import driver
from homeci.flow.clients import Drone
from homeci_testing.daytwo import DayTwo, homeci_status, phases, progress, stack_state, state_table

console = Console(force_terminal=False, width=170)
SECRET = "d2_restore_probe"


def test_backup_on_one_node_restores_on_a_new_one(day_two: DayTwo, tmp_path: Path) -> None:
    from homeci.backup import collect, restore

    d2 = day_two
    st, app = d2.stack, d2.app
    archive = tmp_path / "homeci-backup.tar.gz"
    _, drone, _ = driver.clients(st)
    drone.call("POST", f"/repos/{app.owner}/{app.name}/secrets", {"name": SECRET, "data": "kept"})
    before = stack_state(st, app)
    last_version = d2.served
    scheduled = scheduled_backup(d2.cluster, tmp_path / "scheduled")
    manifest = collect.backup(d2.cluster.api(), archive, collect.Options(), progress=progress("backup"))
    assert archive.stat().st_size > 0
    print(f"archive {archive.stat().st_size / 1e6:.1f} MB: {collect.summary(manifest)}", flush=True)
    for key in ("secrets", "gogsRepositories", "droneBuilds", "droneActiveRepositories", "registryImages"):
        assert scheduled.contents.get(key) == manifest.contents.get(key), (
            f"the CronJob's archive and `homeci backup`'s differ in {key}: "
            f"{scheduled.contents.get(key)} != {manifest.contents.get(key)}")
    d2.cluster.down()
    assert not d2.cluster.leftovers(), f"node A left {d2.cluster.leftovers()}"

    node = NetnsCluster(f"{d2.cluster.name}b")
    try:
        say = progress("B")
        node.up(timeout=300, build=True, progress=say)
        node.load_images(default_images(), progress=say)
        started = time.monotonic()
        report = restore.restore(node.api, node.kubeconfig, archive, restore.Options(), progress=say)
        restore_seconds = time.monotonic() - started
        node.publish(release=contract.RELEASE, namespace=contract.NAMESPACE, progress=say)
        st_b = read_stack(node, tmp_path / "b")
        app_b = driver.App(source=app.source, owner=st_b.admin_user, name=app.name, namespace=app.namespace,
                           host=app.host)
        # The app deployed on A comes back with the restored objects and pulls its image from the
        # restored registry.
        driver.wait_served(st_b, app_b, last_version, timeout=300)
        after = stack_state(st_b, app_b)
        columns = ("node A (backed up)", "node B (restored)")
        console.print(state_table("backup → restore", columns, before, after))
        steps = "\n".join(f"  {s:<45} {secs:6.1f}s  {d}" for s, secs, d in report.steps)
        print(f"restore took {restore_seconds:.0f}s:\n{steps}", flush=True)
        different = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
        assert not different, f"state differs after the restore: {different}"
        assert SECRET in after["Drone repository secrets"]

        # The next push builds and deploys on the restored stack.
        repo = driver.prepare(app_b, tmp_path / "b-repo", domain=st_b.domain)
        rnd = driver.deliver(st_b, app_b, repo, f"1.0.99-restored.{time.strftime('%H%M%S')}", timeout=900,
                             progress=progress("B push"))
        assert rnd.ok, f"push after the restore: {phases(rnd)}"
        numbers = sorted(int(b["number"]) for b in Drone(st_b.web, st_b.url("ci"), st_b.machine_token)
                         .builds(app_b.owner, app_b.name))
        assert numbers[-1] == len(before["Drone builds (number status commit)"]) + 1, \
            f"the build after the restore continues the numbering: {numbers}"
        check_status(node, app_b, numbers[-1])
    finally:
        node.down()
    assert not node.leftovers(), f"node {node.name} left {node.leftovers()}"


def scheduled_backup(cluster: Any, into: Path) -> Any:
    """Turn the scheduled backup on (helm upgrade, same values otherwise), run its CronJob once as a
    Job, and read the archive it wrote on the volume (the local node's PV is a host folder)."""
    from kubernetes import client

    from homeci.backup import archive
    from homeci.helm import Helm
    from homeci.paths import charts_dir

    Helm(3, kubeconfig=cluster.kubeconfig).upgrade(
        "homeci", charts_dir() / "homeci-umbrella", namespace="homeci", timeout="5m",
        set_values=["backup.enabled=true", "backup.persistence.size=2Gi"], extra=["--reuse-values"])
    api = cluster.api()
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    spec = api.sanitize_for_serialization(batch.read_namespaced_cron_job("homeci-backup", "homeci").spec)
    batch.create_namespaced_job("homeci", {"metadata": {"name": "homeci-backup-now"},
                                           "spec": spec["jobTemplate"]["spec"]})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        st = batch.read_namespaced_job_status("homeci-backup-now", "homeci").status
        if st.succeeded or st.failed:
            break
        time.sleep(2)
    pods = core.list_namespaced_pod("homeci", label_selector="job-name=homeci-backup-now").items
    log = core.read_namespaced_pod_log(pods[0].metadata.name, "homeci") if pods else ""
    print(f"scheduled backup log:\n{log}", flush=True)
    assert st.succeeded, f"Job homeci-backup-now (from CronJob homeci-backup) did not succeed: {log[-1500:]}"
    pvc = core.read_namespaced_persistent_volume_claim("homeci-backup", "homeci")
    folder = Path(core.read_persistent_volume(pvc.spec.volume_name).spec.local.path)
    written = sorted(folder.glob("homeci-backup-*.tar.gz"))
    assert len(written) == 1, f"the CronJob wrote {written} on its volume"
    return archive.read(written[0], into)


def check_status(node: Any, app: driver.App, number: int) -> None:
    """`homeci status` on the restored stack: every component Ready, certificates and volumes read, the
    last build of the app is the push after the restore; the table as the operator sees it."""
    from homeci import status

    checks, _ = status.gather(node.api(), "homeci", "homeci")
    bad = [c for c in checks if c.state != status.OK]
    areas = {c.area for c in checks}
    code, output = homeci_status(node.kubeconfig)
    print(f"homeci status (exit {code}):\n{output}", flush=True)
    assert not bad, f"homeci status on the restored stack: {[(c.area, c.name, c.detail) for c in bad]}"
    assert code == 0, f"homeci status exited {code}"
    assert areas == {"component", "certificate", "volume", "build"}, f"status areas: {areas}"
    used = [c for c in checks if c.area == "volume" and "usage unknown" not in c.detail]
    volumes = [c.detail for c in checks if c.area == "volume"]
    assert used, f"no volume usage from the kubelet's stats: {volumes}"
    build = next(c for c in checks if c.area == "build" and c.name == f"{app.owner}/{app.name}")
    assert build.detail.startswith(f"#{number} success"), f"last build row: {build.detail}"
