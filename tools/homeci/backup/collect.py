"""``homeci backup``: everything needed to rebuild a stack's state, read through the API server into one
archive (see :mod:`homeci.backup.archive` for its layout)."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homeci import __version__, contract, kubeops
from homeci.backup import archive, images, inpod, objects, stackinfo
from homeci.errors import HomeciError
from homeci.flow.clients import Registry

Progress = Callable[[str], None]


@dataclass
class Options:
    namespace: str = "homeci"
    release: str = "homeci"
    pipelines_release: str = contract.PIPELINES_RELEASE
    registry: bool = True  # the registry's images (they can be rebuilt, but slowly)
    apps: bool = True  # what the pipelines deployed in their target namespaces


def _say(progress: Progress | None, line: str) -> None:
    if progress:
        progress(line)


def registry_client(api: Any, namespace: str, release: str) -> Registry:
    """The registry's API through a port-forward to its pod, with the stack's push credentials."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    pod = kubeops.ready_pod(api, namespace, stackinfo.selector(release, "registry"), "the registry")
    secret = core.read_namespaced_secret(contract.Names(release).registry_auth_secret, namespace)
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items() if k in ("username",
                                                                                              "password")}
    ports = [p.container_port for c in pod.spec.containers for p in c.ports or [] if p.name == "http"]
    port = ports[0] if ports else 5000
    web = kubeops.PodWeb(api, namespace, pod.metadata.name, int(port))
    return Registry(web, f"http://{release}-registry:{port}", data.get("username", ""),
                    data.get("password", ""))


def backup(api: Any, dest: Path, opts: Options, *, progress: Progress | None = None) -> archive.Manifest:
    from kubernetes import client

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns, rel = opts.namespace, opts.release
    umbrella = stackinfo.umbrella(core, ns, rel)
    pipelines = stackinfo.helm_release(core, ns, opts.pipelines_release)
    gogs = kubeops.ready_pod(api, ns, stackinfo.selector(rel, "git"), "Gogs")
    drone = kubeops.ready_pod(api, ns, stackinfo.selector(rel, "ci-server"), "the Drone server")
    contents: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="homeci-backup-", dir=dest.parent if dest.parent.is_dir()
                                     else None) as tmp:
        w = archive.Writer(Path(tmp) / "staging")
        _say(progress, "Secrets, namespaces and Helm values")
        secrets = objects.stack_secrets(api, ns)
        w.put_json("kubernetes/secrets.json", secrets)
        contents["secrets"] = [s["metadata"]["name"] for s in secrets]
        targets = stackinfo.pipeline_targets(pipelines)
        w.put_json("kubernetes/namespaces.json", objects.namespace_objects(api, [ns, *targets]))
        w.put_json(f"helm/{rel}.json", {**umbrella.to_json(), "role": "umbrella"})
        charts = {rel: {"chart": umbrella.chart, "version": umbrella.version}}
        if pipelines is not None:
            w.put_json(f"helm/{pipelines.name}.json", {**pipelines.to_json(), "role": "pipelines"})
            charts[pipelines.name] = {"chart": pipelines.chart, "version": pipelines.version}
        if opts.apps and targets:
            deployed = objects.app_objects(api, targets)
            w.put_json("kubernetes/apps.json", deployed)
            contents["apps"] = sorted(f"{o['kind']}/{o['metadata']['namespace']}/{o['metadata']['name']}"
                                      for o in deployed if o["kind"] in ("Deployment", "StatefulSet"))

        _say(progress, f"Gogs: gogs backup --database-only in {gogs.metadata.name}")
        with w.path("gogs/database.zip").open("wb") as out:
            kubeops.exec_in(api, ns, gogs.metadata.name, stackinfo.GOGS_CONTAINER,
                            ["sh", "-c", inpod.GOGS_DUMP], stdout=out)
        _say(progress, "Gogs: repositories and files")
        with w.path("gogs/files.tar").open("wb") as out:
            kubeops.exec_in(api, ns, gogs.metadata.name, stackinfo.GOGS_CONTAINER,
                            ["sh", "-c", inpod.GOGS_TAR], stdout=out)
        contents["gogsRepositories"] = _repositories(w.path("gogs/files.tar"))

        if _drone_sqlite(umbrella.values):
            _say(progress, f"Drone: SQLite online backup in {drone.metadata.name} "
                           f"({stackinfo.BRIDGE_CONTAINER})")
            with w.path("drone/database.sqlite").open("wb") as out:
                kubeops.exec_in(api, ns, drone.metadata.name, stackinfo.BRIDGE_CONTAINER,
                                ["python3", "-c", inpod.DRONE_DUMP], stdout=out)
            contents["droneBuilds"], contents["droneActiveRepositories"] = _drone_counts(
                w.path("drone/database.sqlite"))
        else:
            contents["droneDatabase"] = "external PostgreSQL: back it up with its own tools"
        with w.path("drone/files.tar").open("wb") as out:
            kubeops.exec_in(api, ns, drone.metadata.name, stackinfo.BRIDGE_CONTAINER,
                            ["python3", "-c", inpod.DRONE_TAR], stdout=out)

        if opts.registry:
            _say(progress, "registry: images through its API")
            contents["registryImages"] = images.dump(registry_client(api, ns, rel),
                                                     w.path("registry/index.json").parent)
        else:
            contents["registryImages"] = "left out (--no-registry)"

        version = client.VersionApi(api).get_code().git_version
        manifest = archive.Manifest(
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), homeci_version=__version__,
            source={"release": rel, "namespace": ns, "server": str(api.configuration.host),
                    "kubernetesVersion": version, "pipelinesRelease": pipelines.name if pipelines else None},
            components=stackinfo.component_versions(apps, ns, rel), charts=charts, contents=contents)
        _say(progress, f"writing {dest}")
        w.pack(manifest, dest)
    return manifest


def _drone_sqlite(values: dict[str, Any]) -> bool:
    db = ((values.get("drone") or {}).get("server") or {}).get("database") or {}
    return bool(db.get("type", "sqlite3") == "sqlite3")


def _repositories(tar_path: Path) -> list[str]:
    import tarfile

    with tarfile.open(tar_path) as tar:
        parts = [m.name.split("/") for m in tar.getmembers() if m.isdir()]
    return sorted({f"{p[2]}/{p[3].removesuffix('.git')}" for p in parts
                   if len(p) == 4 and p[:2] == ["git", "gogs-repositories"] and p[3].endswith(".git")})


def _drone_counts(db: Path) -> tuple[int, int]:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        builds = int(con.execute("select count(*) from builds").fetchone()[0])
        active = int(con.execute("select count(*) from repos where repo_active").fetchone()[0])
    except sqlite3.Error as exc:
        raise HomeciError(f"Drone's database copy cannot be read ({exc}): the backup is not usable") from None
    finally:
        con.close()
    return builds, active


def summary(manifest: archive.Manifest) -> dict[str, Any]:
    """What the archive holds, for the command's table and tests."""
    c = manifest.contents
    return {"created": manifest.created, "source": f"{manifest.source.get('namespace')}/"
            f"{manifest.source.get('release')}", "charts": ", ".join(
                f"{rel}: {c.get('chart')} {c.get('version')}" for rel, c in sorted(manifest.charts.items())),
            "secrets": len(c.get("secrets", [])), "repositories": len(c.get("gogsRepositories", [])),
            "builds": c.get("droneBuilds"), "images": c.get("registryImages"),
            "apps": len(c.get("apps", []))}
