"""The Gogs bridge, the second container of the Drone server pod, for every umbrella scenario and the
drone subchart alone: restricted and bounded like every container, probed on its `hooks` port, its
script from the ConfigMap whose checksum rolls the pod, the machine token as a file (no secret in its
environment), its token store on Drone's data volume, and the CA only inside the umbrella.
(Drone -> bridge -> Gogs and Gogs -> bridge -> Drone are checked in test_drone_wiring.py.)"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any

import pytest

from homeci import manifests as mf
from homeci.rendering import render

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, UMBRELLA, dig

DRONE = f"{RELEASE}-drone"
BRIDGE = "gogs-bridge"
SCRIPT = UMBRELLA / "charts" / "drone" / "files" / "gogs-bridge.py"
DEFAULTS = {"uid": 65532, "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                        "limits": {"cpu": "200m", "memory": "96Mi"}}}


def _bridge(objs: list[mf.Manifest]) -> tuple[mf.Manifest, dict[str, Any], dict[str, Any]]:
    dep = mf.get(objs, "Deployment", DRONE)
    c = dep.container(BRIDGE)
    return dep, c, {e["name"]: e for e in c.get("env") or []}


def _mount(c: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount of ``c`` that holds ``path`` (longest mount path first)."""
    mounts = sorted(c.get("volumeMounts") or [], key=lambda m: len(m["mountPath"]), reverse=True)
    return next((m for m in mounts if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")), None)


def _volume(dep: mf.Manifest, name: str) -> dict[str, Any]:
    return next(v for v in (dep.pod_spec() or {}).get("volumes") or [] if v["name"] == name)


def test_bridge_container_is_restricted_bounded_and_probed(umbrella_manifests: list[mf.Manifest],
                                                           values: dict[str, Any]) -> None:
    dep, c, env = _bridge(umbrella_manifests)
    where = f"{dep.ref} containers[{BRIDGE}]"
    sc = c.get("securityContext") or {}
    uid = dig(values, "drone.server.bridge.uid", DEFAULTS["uid"])
    for key, want in (("runAsNonRoot", True), ("runAsUser", uid), ("runAsGroup", uid),
                      ("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
        assert sc.get(key) == want, f"{where}.securityContext.{key} = {sc.get(key)!r}, expected {want!r}"
    assert dig(sc, "capabilities.drop") == ["ALL"], f"{where}.securityContext.capabilities.drop"
    assert dig(sc, "seccompProfile.type") == "RuntimeDefault", f"{where}.securityContext.seccompProfile"
    assert dig(dep.pod_spec(), "securityContext.fsGroup") is not None, (
        f"{dep.ref} has no fsGroup: the bridge could not write its token store on the data volume"
    )
    want_res = dig(values, "drone.server.bridge.resources", DEFAULTS["resources"])
    assert c.get("resources") == want_res, f"{where}.resources {c.get('resources')} != values {want_res}"
    hooks = [p for p in c.get("ports") or [] if p.get("name") == "hooks"]
    assert len(hooks) == 1, f"{where}.ports has no port named hooks: {c.get('ports')}"
    listen = env["BRIDGE_HOOKS_LISTEN"]["value"]
    assert listen == f":{hooks[0]['containerPort']}", (
        f"{where} env BRIDGE_HOOKS_LISTEN {listen!r} is not every address on its hooks port"
    )
    for probe in ("readinessProbe", "livenessProbe"):
        assert dig(c, f"{probe}.httpGet") == {"path": "/healthz", "port": "hooks"}, (
            f"{where}.{probe} must GET /healthz on the hooks port, got {c.get(probe)}"
        )
    assert env["BRIDGE_LISTEN"]["value"].startswith("127.0.0.1:"), (
        f"{where} env BRIDGE_LISTEN {env['BRIDGE_LISTEN']['value']!r}: Drone's side must be loopback only"
    )
    assert 1 <= int(env["BRIDGE_TIMEOUT"]["value"]) <= 300, f"{where} env BRIDGE_TIMEOUT"


def test_bridge_runs_the_shipped_script_and_rolls_when_it_changes(
        umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c, _ = _bridge(umbrella_manifests)
    where = f"{dep.ref} containers[{BRIDGE}]"
    script = c["command"][-1]
    assert c["command"][:2] == ["python3", "-u"] and script.endswith("/gogs-bridge.py"), f"{where}.command"
    mount = _mount(c, script)
    assert mount is not None and mount.get("readOnly"), f"{where}: {script} is on no read-only mount"
    cm_name = _volume(dep, mount["name"])["configMap"]["name"]
    assert cm_name == f"{RELEASE}-drone-bridge", f"{where}: {script} comes from ConfigMap/{cm_name}"
    shipped = mf.get(umbrella_manifests, "ConfigMap", cm_name).obj["data"][posixpath.basename(script)]
    assert shipped == SCRIPT.read_text(), f"ConfigMap/{cm_name} does not carry {SCRIPT.name} as it is"
    checksum = dig(dep.obj, "spec.template.metadata.annotations", {}).get("checksum/gogs-bridge")
    assert checksum == hashlib.sha256(shipped.encode()).hexdigest(), (
        f"{dep.ref} pod annotation checksum/gogs-bridge {checksum!r} is not the sha256 of "
        f"ConfigMap/{cm_name}: a new script would not roll the pod"
    )


def test_bridge_reads_the_machine_token_from_a_file(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c, env = _bridge(umbrella_manifests)
    where = f"{dep.ref} containers[{BRIDGE}]"
    secret_env = [e["name"] for e in env.values() if "secretKeyRef" in (e.get("valueFrom") or {})]
    assert not secret_env and not c.get("envFrom"), f"{where} has secrets in its environment: {secret_env}"
    path = env["BRIDGE_MACHINE_TOKEN_FILE"]["value"]
    mount = _mount(c, path)
    assert mount is not None and mount.get("readOnly"), f"{where}: {path} is on no read-only mount"
    volume = _volume(dep, mount["name"])
    sources = [s["secret"] for s in dig(volume, "projected.sources", []) if "secret" in s]
    rel = posixpath.relpath(path, mount["mountPath"])
    found = [(s["name"], i["key"]) for s in sources for i in s.get("items") or [] if i["path"] == rel]
    drone_ref = dig({e["name"]: e for e in dep.container("drone")["env"]}, "HOMECI_MACHINE_TOKEN.valueFrom")
    want = (drone_ref["secretKeyRef"]["name"], drone_ref["secretKeyRef"]["key"])
    assert found == [want], (
        f"{where}: {path} comes from {found}, not the machine token Drone's DRONE_USER_CREATE uses {want}"
    )


def test_token_store_is_on_drones_data_volume(umbrella_manifests: list[mf.Manifest],
                                              values: dict[str, Any]) -> None:
    dep, c, env = _bridge(umbrella_manifests)
    store = env["BRIDGE_STORE"]["value"]
    mount = _mount(c, store)
    assert mount is not None and mount["name"] == "data" and not mount.get("readOnly"), (
        f"{dep.ref} containers[{BRIDGE}] BRIDGE_STORE {store} is not on the writable data volume"
    )
    drone_data = [m for m in dep.container("drone")["volumeMounts"] if m["name"] == "data"]
    assert [m["mountPath"] for m in drone_data] == [mount["mountPath"]], (
        f"{dep.ref}: the bridge and Drone mount volume data at different paths"
    )
    volume = _volume(dep, "data")
    if dig(values, "drone.server.database.type", "sqlite3") == "sqlite3":
        assert "persistentVolumeClaim" in volume, f"{dep.ref} volume data is not the kept claim: {volume}"


@pytest.fixture(scope="module")
def drone_alone() -> list[mf.Manifest]:
    return render(UMBRELLA / "charts" / "drone", release=RELEASE, namespace=NAMESPACE,
                  kube_version=KUBE_VERSION)


def test_bridge_in_the_subchart_alone_trusts_no_umbrella_ca(drone_alone: list[mf.Manifest]) -> None:
    dep, c, env = _bridge(drone_alone)
    assert "BRIDGE_CA_FILE" not in env and not any(m["name"] == "ca" for m in c["volumeMounts"]), (
        f"{dep.ref} containers[{BRIDGE}] mounts a CA the subchart alone does not render"
    )
    drone_env = {e["name"]: e.get("value") for e in dep.container("drone")["env"]}
    assert drone_env["DRONE_GOGS_SERVER"] == f"http://{env['BRIDGE_LISTEN']['value']}", drone_env


def test_bridge_in_the_umbrella_trusts_the_ca(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c, env = _bridge(umbrella_manifests)
    path = env["BRIDGE_CA_FILE"]["value"]
    mount = _mount(c, path)
    assert mount is not None and mount.get("subPath") == "ca.crt" and mount.get("readOnly"), (
        f"{dep.ref} containers[{BRIDGE}] BRIDGE_CA_FILE {path} is not the CA's ca.crt"
    )
    assert dig(_volume(dep, mount["name"]), "configMap.name") == f"{RELEASE}-ca"
