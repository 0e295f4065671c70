"""Backup on one real node, restore on another (issue 21, item 1).

Cluster A: the stack installed, the sample app pushed twice, a Drone repository secret added; its
state is recorded and ``homeci backup`` writes the archive. A is destroyed. Cluster B: a new node with
the images loaded, ``homeci restore`` of the archive. The same state must be read back on B —
repositories and their heads, build history, activation, Drone secrets, registry images, the CA
fingerprint, the admin's password — the app must serve the last version, and the next push must build
and deploy. The comparison table is printed (run with ``-s``).
"""

from __future__ import annotations

import hashlib
import os
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from homeci.flow import driver, setup
from homeci.flow import stack as stackmod
from homeci.flow.clients import Drone

console = Console(force_terminal=False, width=170)
SECRET = "d2_restore_probe"


def _progress(prefix: str) -> Any:
    start = time.monotonic()
    return lambda line: print(f"[{prefix} {time.monotonic() - start:5.0f}s] {line}", flush=True)


def ca_fingerprint(st: stackmod.Stack) -> str:
    der = ssl.PEM_cert_to_DER_cert(st.ca_file.read_text())
    return hashlib.sha256(der).hexdigest()


def state(st: stackmod.Stack, app: driver.App) -> dict[str, Any]:
    """What a user would check after a restore, read through the public names."""
    gogs, drone, registry = driver.clients(st)
    owner, name = app.owner, app.name
    repos = gogs._call("GET", "/user/repos") or []
    branch = gogs._call("GET", f"/repos/{owner}/{name}/branches/{driver.DEPLOY_BRANCH}") or {}
    builds = drone.builds(owner, name)
    repo = drone.call("GET", f"/repos/{owner}/{name}")
    secrets = drone.call("GET", f"/repos/{owner}/{name}/secrets") or []
    org = drone.call("GET", f"/secrets/{owner}", ok=(200, 404)) or []
    tags = registry.web.request("GET", f"{registry.base}/v2/{owner}/{name}/tags/list",
                                headers=registry._auth()).json() or {}
    return {
        "CA fingerprint (SHA-256)": ca_fingerprint(st),
        "Gogs repositories": sorted(r["full_name"] for r in repos),
        f"Gogs {owner}/{name} {driver.DEPLOY_BRANCH} head": (branch.get("commit") or {}).get("id"),
        "Drone builds (number status commit)": sorted(
            f"#{b['number']} {b['status']} {str(b.get('after'))[:12]}" for b in builds),
        "Drone repository active": bool(repo.get("active")),
        "Drone repository secrets": sorted(s["name"] for s in secrets),
        "Drone organisation secrets": sorted(s["name"] for s in org),
        "registry tags of the app": sorted(tags.get("tags") or []),
        "admin password accepted by Gogs": bool(gogs.token()),
    }


def _show(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else str(value)


def _table(before: dict[str, Any], after: dict[str, Any]) -> Table:
    table = Table("what", "cluster A (backed up)", "cluster B (restored)", "same", title="backup → restore")
    for key in before:
        b, a = before[key], after.get(key)
        table.add_row(key, _show(b), _show(a), "yes" if a == b else "NO")
    return table


def test_backup_on_one_node_restores_on_a_new_one(local_node: None, tmp_path: Path) -> None:
    from homeci import images
    from homeci.backup import collect, restore
    from homeci.cluster import stack as clusterstack
    from homeci.cluster.local import LocalCluster
    from homeci.flow.web import PublicNames

    name = f"d2-{os.getpid()}"
    archive = tmp_path / "homeci-backup.tar.gz"
    cluster_a = f"{name}a"
    try:
        prepared = setup.local(cluster_a, workdir=tmp_path / "a", progress=_progress("A"))
        st, app = prepared.stack, prepared.app
        rounds = driver.run(st, app, tmp_path / "a", rounds=2, progress=_progress("A push"))
        assert [r.ok for r in rounds] == [True, True], f"pushes on cluster A: {[r.phases for r in rounds]}"
        _, drone, _ = driver.clients(st)
        drone.call("POST", f"/repos/{app.owner}/{app.name}/secrets", {"name": SECRET, "data": "kept"})
        before = state(st, app)
        last_version = rounds[-1].version
        scheduled = scheduled_backup(prepared.cluster, tmp_path / "scheduled")
        manifest = collect.backup(prepared.cluster.api(), archive, collect.Options(),
                                  progress=_progress("backup"))
        assert archive.stat().st_size > 0
        print(f"archive {archive.stat().st_size / 1e6:.1f} MB: {collect.summary(manifest)}", flush=True)
        for key in ("secrets", "gogsRepositories", "droneBuilds", "droneActiveRepositories",
                    "registryImages"):
            assert scheduled.contents.get(key) == manifest.contents.get(key), (
                f"the CronJob's archive and `homeci backup`'s differ in {key}: "
                f"{scheduled.contents.get(key)} != {manifest.contents.get(key)}")
    finally:
        LocalCluster(cluster_a).down()

    cluster_b = f"{name}b"
    node = LocalCluster(cluster_b)
    try:
        say = _progress("B")
        node.up(timeout=300, build=True, progress=say)
        refs = [r.ref for r in images.referenced_images() if r.default]
        node.load_images(sorted(set(images.build(refs, say).values())), progress=say)
        node.recycle_volumes()
        started = time.monotonic()
        report = restore.restore(node.api, node.kubeconfig, archive, restore.Options(), progress=say)
        restore_seconds = time.monotonic() - started
        node.publish(progress=say)
        from kubernetes import client

        api = node.api()
        port = int(node.info()["ports"]["https"])
        st_b = stackmod.from_cluster(client.CoreV1Api(api), client.NetworkingV1Api(api),
                                     clusterstack.NAMESPACE, clusterstack.RELEASE, tmp_path / "b",
                                     lambda ca: PublicNames({"https": port}, ca))
        st_b.https_port = port
        st_b.git_resolve = [f"{h}:{port}:127.0.0.1" for h in st_b.hosts.values()]
        app_b = driver.App(source=app.source, owner=st_b.admin_user, name=app.name, namespace=app.namespace,
                           host=app.host)
        # The app deployed on A comes back with the restored objects and pulls its image from the
        # restored registry.
        driver.wait_served(st_b, app_b, last_version, timeout=300)
        after = state(st_b, app_b)
        console.print(_table(before, after))
        steps = "\n".join(f"  {s:<45} {secs:6.1f}s  {d}" for s, secs, d in report.steps)
        print(f"restore took {restore_seconds:.0f}s:\n{steps}", flush=True)
        different = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
        assert not different, f"state differs after the restore: {different}"
        assert SECRET in after["Drone repository secrets"]

        # The next push builds and deploys on the restored stack.
        repo = driver.prepare(app_b, tmp_path / "b-repo", domain=st_b.domain)
        rnd = driver.deliver(st_b, app_b, repo, f"1.0.3-restored.{time.strftime('%H%M%S')}", timeout=900,
                             progress=_progress("B push"))
        assert rnd.ok, f"push after the restore: {[(p.name, p.status, p.detail[:300]) for p in rnd.phases]}"
        numbers = sorted(int(b["number"]) for b in Drone(st_b.web, st_b.url("ci"), st_b.machine_token)
                         .builds(app_b.owner, app_b.name))
        assert numbers[-1] == len(before["Drone builds (number status commit)"]) + 1, \
            f"the build after the restore continues the numbering: {numbers}"
        check_status(node, app_b)
    finally:
        node.down()
    assert not node.leftovers(), f"cluster {cluster_b} left {node.leftovers()}"


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


def check_status(node: Any, app: driver.App) -> None:
    """`homeci status` on the restored stack: every component Ready, certificates and volumes read, the
    last build of the app is the push after the restore; the table as the operator sees it."""
    import subprocess
    import sys

    from homeci import status

    checks, _ = status.gather(node.api(), "homeci", "homeci")
    bad = [c for c in checks if c.state != status.OK]
    areas = {c.area for c in checks}
    proc = subprocess.run([sys.executable, "-c", "from homeci.cli import main; main()", "status",
                           "--kubeconfig", str(node.kubeconfig)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False)
    print(f"homeci status (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}", flush=True)
    assert not bad, f"homeci status on the restored stack: {[(c.area, c.name, c.detail) for c in bad]}"
    assert proc.returncode == 0, f"homeci status exited {proc.returncode}"
    assert areas == {"component", "certificate", "volume", "build"}, f"status areas: {areas}"
    used = [c for c in checks if c.area == "volume" and "usage unknown" not in c.detail]
    volumes = [c.detail for c in checks if c.area == "volume"]
    assert used, f"no volume usage from the kubelet's stats: {volumes}"
    build = next(c for c in checks if c.area == "build" and c.name == f"{app.owner}/{app.name}")
    assert build.detail.startswith("#3 success"), f"last build row: {build.detail}"


@pytest.fixture(autouse=True)
def _no_stale_d2(local_node: None) -> None:
    """Only one day-two cluster at a time: take down what a killed earlier run left."""
    from homeci.cluster.local import LocalCluster
    from homeci.cluster.local import layout as local_layout

    base = local_layout.root()
    for d in base.glob("d2-*") if base.is_dir() else []:
        pid = d.name.removeprefix("d2-").rstrip("ab")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            LocalCluster(d.name).down()
