"""``homeci restore``: a backup archive into a fresh install (a new cluster, or a stack without data).

Order, so that every install reuses what the archive holds: the archive is checked whole first
(nothing changes before), then the namespaces and Secrets (the chart looks its generated Secrets up
and keeps them: same CA fingerprint, same passwords and keys), the umbrella with its saved values, the
data (each of Gogs and Drone scaled to zero, restored by a helper pod on its own volume, scaled up;
the registry's images pushed back through its API), drone-pipelines with its saved values, and last
what the pipelines had deployed.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import kubeaccess, kubeops
from homeci.backup import archive, collect, images, inpod, stackinfo
from homeci.errors import HomeciError
from homeci.paths import charts_dir

Progress = Callable[[str], None]
CHART_DIRS = {"homeci-umbrella": "homeci-umbrella", "drone-pipelines": "drone-pipelines"}
IDLE_SH = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
IDLE_PY = ["python3", "-c", "import signal, time\nsignal.signal(signal.SIGTERM, lambda *a: exit(0))\n"
           "while True: time.sleep(1)"]


@dataclass
class Options:
    force: bool = False
    helm_major: int = 3
    timeout: str = "10m"
    charts: Path = field(default_factory=charts_dir)
    extra_values: list[Path] = field(default_factory=list)  # after the saved values (cluster-specific)


@dataclass
class Report:
    manifest: archive.Manifest
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, detail)


def _chart_version(chart: Path) -> str:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return str(meta.get("version", "0"))


def _version_key(v: str) -> tuple[int, ...]:
    core = v.split("-", 1)[0].split("+", 1)[0]
    return tuple(int(p) if p.isdigit() else 0 for p in core.split("."))


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def existing_data(api: Any, namespace: str, release: str) -> list[str]:
    """What a stack already installed in ``namespace`` holds (empty: nothing to lose)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    if stackinfo.helm_release(core, namespace, release) is None:
        return []
    found = []
    try:
        gogs = kubeops.ready_pod(api, namespace, stackinfo.selector(release, "git"), "Gogs")
        out = kubeops.exec_in(api, namespace, gogs.metadata.name, stackinfo.GOGS_CONTAINER,
                              ["sh", "-c", "ls -d /data/git/gogs-repositories/*/*.git 2>/dev/null | wc -l"])
        if int(out.strip() or 0):
            found.append(_count(int(out.strip()), "repository", "repositories") + " in Gogs")
    except HomeciError as exc:
        found.append(f"Gogs could not be checked ({exc})")
    try:
        drone = kubeops.ready_pod(api, namespace, stackinfo.selector(release, "ci-server"), "Drone")
        out = kubeops.exec_in(api, namespace, drone.metadata.name, stackinfo.BRIDGE_CONTAINER,
                              ["python3", "-c", inpod.DRONE_BUILDS])
        builds = int(out.split()[0]) if out.split() else 0
        if builds:
            found.append(_count(builds, "build", "builds") + " in Drone")
    except HomeciError as exc:
        found.append(f"Drone could not be checked ({exc})")
    return found


def _apply(api: Any, obj: dict[str, Any], *, replace: bool) -> str:
    """Create ``obj``; when it exists, replace it (``replace``) or leave it. Returns what was done."""
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    dyn = dynamic.DynamicClient(api)
    res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    meta = obj["metadata"]
    ns = meta.get("namespace")
    try:
        res.create(body=obj, namespace=ns)
        return "created"
    except ApiException as exc:
        if exc.status != 409:
            raise HomeciError(f"cannot create {obj['kind']} {ns}/{meta['name']}: {exc.status} {exc.reason} "
                              f"{' '.join(str(exc.body).split())[:200]}") from None
    if not replace:
        return "kept"
    live = res.get(name=meta["name"], namespace=ns)
    body = {**obj, "metadata": {**meta, "resourceVersion": live.metadata.resourceVersion}}
    if obj["kind"] == "Service":
        body["spec"] = {**obj.get("spec", {}), "clusterIP": live.spec.clusterIP}
    res.replace(body=body, namespace=ns)
    return "replaced"


def _upload(api: Any, ns: str, pod: str, container: str, src: Path, dest: str, *, python: bool) -> None:
    command = inpod.upload_command(python, src.stat().st_size, dest)
    kubeops.exec_in(api, ns, pod, container, command, upload=src)


def restore(connect: Callable[[], Any], kubeconfig: Path, source: Path, opts: Options, *,
            progress: Progress | None = None) -> Report:
    """Restore ``source``; ``connect()`` gives the API client, called only once the archive is known good
    (a bad archive is refused without touching, or even asking, the cluster)."""
    from homeci.helm import Helm

    def say(line: str) -> None:
        if progress:
            progress(line)

    with tempfile.TemporaryDirectory(prefix="homeci-restore-") as tmp:
        work = Path(tmp)
        manifest = archive.read(source, work / "archive")
        root = work / "archive"
        report = Report(manifest)
        ns, rel = str(manifest.source["namespace"]), str(manifest.source["release"])
        helm_files = {p.stem: json.loads(p.read_text()) for p in sorted((root / "helm").glob("*.json"))}
        if rel not in helm_files:
            raise HomeciError(f"{source} has no Helm values of release {rel}: the archive is incomplete")
        # Refusals first: nothing has changed yet.
        for name, saved in helm_files.items():
            chart = opts.charts / CHART_DIRS.get(saved["chart"], saved["chart"])
            if not (chart / "Chart.yaml").is_file():
                raise HomeciError(f"chart {saved['chart']} of release {name} is not in {opts.charts}: pass "
                                  "--charts with the folder holding homeci-umbrella and drone-pipelines")
            have = _chart_version(chart)
            if _version_key(have) < _version_key(str(saved["version"])) and not opts.force:
                raise HomeciError(f"release {name} was backed up from chart {saved['chart']} "
                                  f"{saved['version']}, newer than {have} in {chart}: restore with that "
                                  "version or newer (--force installs the older chart anyway)")
        api = connect()
        data = existing_data(api, ns, rel)
        if data and not opts.force:
            raise HomeciError(f"release {rel} in namespace {ns} already holds data ({'; '.join(data)}): "
                              "restore into a fresh install, or pass --force to overwrite it")

        def timed(step: str, fn: Callable[[], str]) -> None:
            start = time.monotonic()
            say(step)
            detail = fn()
            report.steps.append((step, time.monotonic() - start, detail))

        def namespaces_and_secrets() -> str:
            spaces = root / "kubernetes/namespaces.json"
            if spaces.is_file():
                for obj in json.loads(spaces.read_text()):
                    _apply(api, obj, replace=True)
            else:  # a scheduled backup cannot read namespaces: homeci's own install labels
                kubeaccess.ensure_namespace(api, ns, kubeaccess.pss_labels("restricted"))
            done = [_apply(api, s, replace=True)
                    for s in json.loads((root / "kubernetes/secrets.json").read_text())]
            return f"{len(done)} Secrets ({done.count('created')} created, {done.count('replaced')} replaced)"

        timed("namespaces and Secrets", namespaces_and_secrets)
        helm = Helm(opts.helm_major, kubeconfig=kubeconfig)

        def install(name: str) -> Callable[[], str]:
            def run() -> str:
                saved = helm_files[name]
                values = work / f"{name}.values.json"
                values.write_text(json.dumps(saved["values"]))
                chart = opts.charts / CHART_DIRS.get(saved["chart"], saved["chart"])
                helm.upgrade(name, chart, namespace=ns, values_files=[values, *opts.extra_values],
                             timeout=opts.timeout)
                return f"{saved['chart']} {_chart_version(chart)} (backed up from {saved['version']})"
            return run

        timed(f"helm upgrade --install {rel} (saved values)", install(rel))
        timed("Gogs: database and repositories", lambda: _restore_gogs(api, ns, rel, root, say))
        if (root / "drone/database.sqlite").is_file():
            timed("Drone: database", lambda: _restore_drone(api, ns, rel, root, say))
        if (root / "registry/index.json").is_file():
            def registry() -> str:
                return f"{images.load(collect.registry_client(api, ns, rel), root / 'registry', say)} tags"
            timed("registry: images", registry)
        pipelines = manifest.source.get("pipelinesRelease")
        if pipelines and pipelines in helm_files:
            timed(f"helm upgrade --install {pipelines} (saved values)", install(str(pipelines)))
        if (root / "kubernetes/apps.json").is_file():
            def apps() -> str:
                done = [_apply(api, o, replace=opts.force)
                        for o in json.loads((root / "kubernetes/apps.json").read_text())]
                return f"{len(done)} objects ({done.count('created')} created)"
            timed("deployed apps", apps)
    return report


def _restore_on_volume(api: Any, ns: str, dep: str, container: str, idle: list[str], files: list[Path],
                       command: list[str], say: Progress, *, python: bool, run_as: str | None = None) -> None:
    """Deployment ``dep`` scaled to zero; a helper pod of its template (``container`` only, idle) gets
    ``files`` uploaded to the restore folder on the data volume and runs ``command``; then the
    Deployment is scaled up again and waited for."""
    kubeops.scale(api, ns, dep, 0, progress=say)
    pod = kubeops.helper_pod(api, ns, dep, container, idle, run_as=run_as)
    try:
        for src in files:
            _upload(api, ns, pod, container, src, f"{inpod.RESTORE_DIR}/{src.name}", python=python)
        kubeops.exec_in(api, ns, pod, container, command)
    finally:
        kubeops.delete_pod(api, ns, pod)
    kubeops.scale(api, ns, dep, 1, progress=say)


def _restore_gogs(api: Any, ns: str, rel: str, root: Path, say: Progress) -> str:
    dep = stackinfo.deployment_name(rel, "git")
    _restore_on_volume(api, ns, dep, stackinfo.GOGS_CONTAINER, IDLE_SH,
                       [root / "gogs/database.zip", root / "gogs/files.tar"],
                       ["sh", "-c", inpod.GOGS_RESTORE], say, python=False)
    return _count(len(collect._repositories(root / "gogs/files.tar")), "repository", "repositories")


def _restore_drone(api: Any, ns: str, rel: str, root: Path, say: Progress) -> str:
    # The bridge container (Python) with the Drone server's identity, on Drone's data volume.
    dep = stackinfo.deployment_name(rel, "ci-server")
    _restore_on_volume(api, ns, dep, stackinfo.BRIDGE_CONTAINER, IDLE_PY,
                       [root / "drone/database.sqlite", root / "drone/files.tar"],
                       ["python3", "-c", inpod.DRONE_RESTORE], say, python=True, run_as="drone")
    builds, active = collect._drone_counts(root / "drone/database.sqlite")
    return (f"{_count(builds, 'build', 'builds')}, "
            f"{_count(active, 'active repository', 'active repositories')}")
