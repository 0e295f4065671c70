"""The Gogs Deployment: rootless uid 1000, Gogs' RUN_USER check satisfied, admin from the shared Secret,
/healthcheck probes, the CA mounted, the data volume kept, SSH only when asked for."""

from __future__ import annotations

from typing import Any

from homeci import contract
from homeci import manifests as mf

from .conftest import RELEASE, dig, secret_source

GOGS = f"{RELEASE}-gogs"


def gogs_container(objs: list[mf.Manifest]) -> tuple[mf.Manifest, dict[str, Any]]:
    dep = mf.get(objs, "Deployment", GOGS)
    return dep, dep.container("gogs")


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env") or []}


def test_rootless_and_run_user(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c = gogs_container(umbrella_manifests)
    sc = c.get("securityContext") or {}
    assert sc.get("runAsUser") == 1000 and sc.get("runAsNonRoot") is True, (
        f"{dep.ref} containers[gogs].securityContext must run as uid 1000 (rootless image), got {sc}"
    )
    assert (dep.pod_spec() or {}).get("securityContext", {}).get("fsGroup") == 1000, (
        f"{dep.ref} spec.template.spec.securityContext.fsGroup must be 1000 (the git group owns /data)"
    )
    env = env_of(c)
    assert env.get("USER", {}).get("value") == "git", (
        f"{dep.ref} containers[gogs].env[USER] must be git: Gogs refuses to start unless it equals RUN_USER"
    )
    assert "gogs/gogs:next-0.14." in c["image"], (
        f"{dep.ref} containers[gogs].image {c['image']} is not next-0.14.x"
    )


def test_admin_from_shared_secret(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    dep, c = gogs_container(umbrella_manifests)
    env = env_of(c)
    expected = dig(values, "global.admin.existingSecret") or f"{RELEASE}-admin"
    for name, key in (
        ("GOGS_ADMIN_USERNAME", "username"),
        ("GOGS_ADMIN_PASSWORD", "password"),
        ("GOGS_ADMIN_EMAIL", "email"),
    ):
        assert name not in env, f"{dep.ref} containers[gogs].env[{name}]: the admin Secret is a volume"
        ref = secret_source(dep, "gogs", name)
        assert ref == (expected, key), (
            f"{dep.ref} containers[gogs]: {name} must be the file of Secret {expected} key {key}, got {ref}"
        )
    if not dig(values, "global.admin.existingSecret"):
        mf.get(umbrella_manifests, "Secret", expected)


def test_start_script_creates_the_admin(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c = gogs_container(umbrella_manifests)
    assert c.get("command") == ["/bin/sh", "/opt/homeci/start.sh"], (
        f"{dep.ref} containers[gogs].command must be the start.sh wrapper (creates the admin), "
        f"got {c.get('command')}"
    )
    scripts = mf.get(umbrella_manifests, "ConfigMap", f"{GOGS}-scripts").obj["data"]
    assert 'gogs" web' in scripts["start.sh"] or '"$GOGS_BIN" web' in scripts["start.sh"]
    assert "admin create-user" in scripts["create-admin.sh"]


def test_healthcheck_probes(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c = gogs_container(umbrella_manifests)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = dig(c, f"{probe}.httpGet.path")
        assert path == "/healthcheck", (
            f"{dep.ref} containers[gogs].{probe}.httpGet.path = {path!r}, expected /healthcheck"
        )


def test_ca_mounted(umbrella_manifests: list[mf.Manifest]) -> None:
    dep, c = gogs_container(umbrella_manifests)
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    ca = mounts.get("/etc/ssl/certs/homeci-ca.crt")
    assert ca and ca.get("subPath") == "ca.crt", (
        f"{dep.ref} containers[gogs].volumeMounts must mount ca.crt at "
        "/etc/ssl/certs/homeci-ca.crt (webhook TLS)"
    )
    vols = {v["name"]: v for v in (dep.pod_spec() or {}).get("volumes") or []}
    assert dig(vols.get(ca["name"], {}), "configMap.name") == f"{RELEASE}-ca"


def test_data_volume_kept(umbrella_manifests: list[mf.Manifest]) -> None:
    pvc = mf.get(umbrella_manifests, "PersistentVolumeClaim", f"{GOGS}-data")
    assert pvc.annotations.get("helm.sh/resource-policy") == "keep", (
        f"{pvc.ref} metadata.annotations[helm.sh/resource-policy] must be keep"
    )
    dep = mf.get(umbrella_manifests, "Deployment", GOGS)
    assert dig(dep.obj, "spec.strategy.type") == "Recreate", (
        f"{dep.ref} spec.strategy.type must be Recreate (RWO)"
    )


def test_ssh_service_only_when_enabled(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    services = {m.name: m for m in mf.by_kind(umbrella_manifests, "Service")}
    _, c = gogs_container(umbrella_manifests)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
    if dig(values, "gogs.ssh.service.enabled", False):
        svc = services.get(f"{GOGS}-ssh")
        assert svc is not None, f"Service/{GOGS}-ssh is not rendered although gogs.ssh.service.enabled"
        assert ports.get("ssh") == 2222, "containers[gogs].ports[ssh] must be 2222 (built-in SSH server)"
        assert [p["targetPort"] for p in svc.obj["spec"]["ports"]] == ["ssh"]
    else:
        assert f"{GOGS}-ssh" not in services, f"Service/{GOGS}-ssh must be off by default"
    if not dig(values, "gogs.ssh.enabled", False):
        assert "ssh" not in ports, "containers[gogs].ports[ssh] declared while SSH is off"
    http = services[GOGS].obj["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in http] == [("http", 3000)], f"Service/{GOGS} ports {http}"


def test_ingress(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    ing = mf.get(umbrella_manifests, "Ingress", GOGS)
    host = contract.host("git", values)
    assert [r["host"] for r in ing.obj["spec"]["rules"]] == [host], f"{ing.ref} spec.rules[].host"
    assert ing.obj["spec"]["tls"] == [{"hosts": [host], "secretName": f"{RELEASE}-tls"}], (
        f"{ing.ref} spec.tls"
    )
    assert ing.obj["spec"]["ingressClassName"] == dig(values, "global.ingressClass", "homeci")
