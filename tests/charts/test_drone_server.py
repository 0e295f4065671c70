"""The Drone server, its bootstrap hook and the subchart on its own: non-root on 8080, telemetry off,
login for every Gogs user (Gogs takes no sign-ups) or only Drone's own users, /healthz probes,
SQLite on a kept volume or PostgreSQL through $(VAR) expansion."""

from __future__ import annotations

from typing import Any

from homeci import manifests as mf
from homeci.rendering import render

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, UMBRELLA, dig

DRONE = f"{RELEASE}-drone"


def drone_container(objs: list[mf.Manifest]) -> tuple[mf.Manifest, dict[str, Any]]:
    dep = mf.get(objs, "Deployment", DRONE)
    return dep, dep.container("drone")


def env_values(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or []}


def test_server_settings(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    dep, c = drone_container(umbrella_manifests)
    env = env_values(c)
    closed = dig(values, "drone.server.login", "gogs") == "closed"
    for key, value in {
        "DRONE_DATADOG_ENABLED": "false",
        "DRONE_REGISTRATION_CLOSED": str(closed).lower(),
        "DRONE_SERVER_PORT": ":8080",
        "DRONE_SERVER_PROTO": "https",
        "DRONE_SERVER_PROXY_PROTO": "http",
        "DRONE_GOGS_SKIP_VERIFY": "false",
    }.items():
        assert env.get(key) == value, (
            f"{dep.ref} containers[drone].env[{key}] = {env.get(key)!r}, expected {value!r}"
        )
    assert [p["containerPort"] for p in c["ports"]] == [8080], f"{dep.ref} containers[drone].ports"
    assert c["image"].endswith("drone/drone:2.28.2"), f"{dep.ref} containers[drone].image {c['image']}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert dig(c, f"{probe}.httpGet.path") == "/healthz", (
            f"{dep.ref} containers[drone].{probe} must GET /healthz"
        )
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, (
        f"{dep.ref} containers[drone] must not run as root"
    )
    pod = dig(dep.pod_spec(), "securityContext")
    assert pod.get("fsGroup") == sc["runAsGroup"] == pod.get("runAsGroup"), (
        f"{dep.ref} needs fsGroup = runAsGroup for a writable /data, got pod {pod}, container {sc}"
    )


def test_database(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    dep, c = drone_container(umbrella_manifests)
    env = env_values(c)
    names = [e["name"] for e in c["env"]]
    if dig(values, "drone.server.database.type", "sqlite3") == "postgres":
        pg = dig(values, "drone.server.database.postgres")
        assert env["DRONE_DATABASE_DRIVER"] == "postgres"
        dsn = env["DRONE_DATABASE_DATASOURCE"]
        assert "$(HOMECI_DATABASE_PASSWORD)" in dsn and pg["host"] in dsn, (
            f"{dep.ref} env DRONE_DATABASE_DATASOURCE"
        )
        assert names.index("HOMECI_DATABASE_PASSWORD") < names.index("DRONE_DATABASE_DATASOURCE")
        assert env["HOMECI_DATABASE_PASSWORD"]["secretKeyRef"]["name"] == pg["existingSecret"]
        assert not [
            p for p in mf.by_kind(umbrella_manifests, "PersistentVolumeClaim") if p.name == f"{DRONE}-data"
        ]
    else:
        assert env["DRONE_DATABASE_DRIVER"] == "sqlite3"
        assert env["DRONE_DATABASE_DATASOURCE"].startswith("/data/")
        pvc = mf.get(umbrella_manifests, "PersistentVolumeClaim", f"{DRONE}-data")
        assert pvc.annotations.get("helm.sh/resource-policy") == "keep", (
            f"{pvc.ref} must be kept on uninstall"
        )


def test_bootstrap_hook(umbrella_manifests: list[mf.Manifest]) -> None:
    job = mf.get(umbrella_manifests, "Job", f"{DRONE}-bootstrap")
    assert job.annotations.get("helm.sh/hook") == "post-install,post-upgrade", f"{job.ref} helm.sh/hook"
    policy = job.annotations.get("helm.sh/hook-delete-policy", "")
    assert "hook-failed" not in policy, f"{job.ref}: a failed bootstrap must stay for `kubectl logs`"
    spec = job.obj["spec"]
    assert spec.get("backoffLimit", 6) <= 2 and spec.get("activeDeadlineSeconds"), (
        f"{job.ref} must be bounded"
    )
    env = {e["name"]: e for _, c in job.containers() for e in c.get("env") or []}
    assert env["DRONE_URL"]["value"] == f"http://{DRONE}.{NAMESPACE}.svc"
    cm = mf.get(umbrella_manifests, "ConfigMap", f"{DRONE}-bootstrap")
    assert "def form_login" in cm.obj["data"]["bootstrap.py"]
    assert "helm.sh/hook" not in cm.annotations, (
        f"{cm.ref} must exist before the hook runs (not a hook itself)"
    )


def test_runner_image_is_the_pinned_rc(umbrella_manifests: list[mf.Manifest]) -> None:
    dep = mf.get(umbrella_manifests, "Deployment", f"{DRONE}-runner")
    images = [c["image"] for _, c in dep.containers()]
    assert images and images[0].endswith("drone/drone-runner-kube:1.0.0-rc.5"), f"{dep.ref} image {images}"


def test_subchart_renders_on_its_own() -> None:
    objs = render(
        UMBRELLA / "charts" / "drone", release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    refs = {m.ref for m in objs}
    for ref in (
        f"Deployment/{DRONE}",
        f"Deployment/{DRONE}-runner",
        f"Service/{DRONE}",
        f"Namespace/{RELEASE}-builds",
    ):
        assert ref in refs, f"drone subchart alone does not render {ref}"
    _, c = drone_container(objs)
    mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
    assert "/etc/ssl/certs/homeci-ca.crt" not in mounts, "standalone Drone must not mount the umbrella CA"


def test_drone_login_follows_gogs_sign_up() -> None:
    """Drone's registration is open only because Gogs takes no sign-ups: its app.ini must say so."""
    objs = render(UMBRELLA, (), (), release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION)
    _, c = drone_container(objs)
    assert env_values(c)["DRONE_REGISTRATION_CLOSED"] == "false"
    appini = mf.get(objs, "Secret", f"{RELEASE}-gogs-config")
    text = "".join(str(v) for v in (appini.obj.get("stringData") or {}).values())
    assert "DISABLE_REGISTRATION = true" in text, (
        f"{appini.ref}: Drone lets every Gogs user in, so Gogs must not take sign-ups (DISABLE_REGISTRATION)")
    closed = render(UMBRELLA, (), ("drone.server.login=closed",), release=RELEASE, namespace=NAMESPACE,
                    kube_version=KUBE_VERSION)
    assert env_values(drone_container(closed)[1])["DRONE_REGISTRATION_CLOSED"] == "true"


def test_rpc_is_not_public(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    """The public Ingress sends /rpc to the bridge's hooks port (404), not to Drone: the runner's RPC is
    in-cluster only."""
    if not dig(values, "drone.server.ingress.enabled", True):
        return
    ing = mf.get(umbrella_manifests, "Ingress", DRONE)
    paths = {p["path"]: p["backend"]["service"]["port"]["name"]
             for r in ing.obj["spec"]["rules"] for p in r["http"]["paths"]}
    assert paths == {"/": "http", "/rpc": "hooks"}, f"{ing.ref} spec.rules[].http.paths {paths}"

