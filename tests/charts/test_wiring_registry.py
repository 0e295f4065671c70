"""Cross-object wiring: the registry's public host is the same in its Ingress, its config and the NOTES;
every Secret, ConfigMap and claim a pod references is rendered or documented as external; Ingresses
point at rendered Services and ports, with the shared TLS Secret and the configured class."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import contract
from homeci import manifests as mf
from homeci.helm import Helm
from homeci_testing import certs

from .conftest import KUBE_VERSION, RELEASE, UMBRELLA, dig, workloads

# Values keys whose value names an object the user creates (the chart only references it).
EXTERNAL_KEYS = ("existingSecret", "existingClaim", "existingConfigMap")


def external_names(values: dict[str, Any]) -> set[str]:
    """Every object name a scenario declares as external (any `existing*` key, pull secrets, the
    user-provided serving certificate)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in EXTERNAL_KEYS and isinstance(value, str) and value:
                    names.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(values)
    for s in dig(values, "global.imagePullSecrets", []) or []:
        names.add(s if isinstance(s, str) else s["name"])
    if dig(values, "certificates.createServingSecret") is False:
        names.add(f"{RELEASE}-tls")
    return names


def references(w: mf.Manifest) -> Iterator[tuple[str, str, str | None, str]]:
    """(kind, name, key or None, field path) of every Secret/ConfigMap/PVC a pod template references."""
    spec = w.pod_spec() or {}
    for vol in spec.get("volumes") or []:
        path = f"volumes[{vol.get('name')}]"
        if "secret" in vol:
            items = vol["secret"].get("items") or [{}]
            for item in items:
                yield "Secret", vol["secret"]["secretName"], item.get("key"), f"{path}.secret"
        if "configMap" in vol:
            items = vol["configMap"].get("items") or [{}]
            for item in items:
                yield "ConfigMap", vol["configMap"]["name"], item.get("key"), f"{path}.configMap"
        if "persistentVolumeClaim" in vol:
            yield "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"], None, path
        for src in (vol.get("projected") or {}).get("sources") or []:
            for kind, field in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if field in src:
                    for item in src[field].get("items") or [{}]:
                        yield kind, src[field]["name"], item.get("key"), f"{path}.projected"
    for s in spec.get("imagePullSecrets") or []:
        yield "Secret", s["name"], None, "imagePullSecrets"
    for cpath, c in w.containers():
        for env in c.get("env") or []:
            ref = env.get("valueFrom") or {}
            if "secretKeyRef" in ref and not ref["secretKeyRef"].get("optional"):
                yield (
                    "Secret",
                    ref["secretKeyRef"]["name"],
                    ref["secretKeyRef"]["key"],
                    f"{cpath}.env[{env['name']}]",
                )
            if "configMapKeyRef" in ref and not ref["configMapKeyRef"].get("optional"):
                yield (
                    "ConfigMap",
                    ref["configMapKeyRef"]["name"],
                    ref["configMapKeyRef"]["key"],
                    f"{cpath}.env[{env['name']}]",
                )
        for src in c.get("envFrom") or []:
            if "secretRef" in src and not src["secretRef"].get("optional"):
                yield "Secret", src["secretRef"]["name"], None, f"{cpath}.envFrom"
            if "configMapRef" in src and not src["configMapRef"].get("optional"):
                yield "ConfigMap", src["configMapRef"]["name"], None, f"{cpath}.envFrom"


def _keys(m: mf.Manifest) -> set[str]:
    return set(m.obj.get("data") or {}) | set(m.obj.get("stringData") or {})


@pytest.fixture
def installed(umbrella_manifests: list[mf.Manifest]) -> list[mf.Manifest]:
    """The render plus the CA and certificate objects the hook Job writes before anything else starts."""
    return certs.with_certificates(umbrella_manifests)


def test_references_are_rendered_or_external(installed: list[mf.Manifest], values: dict[str, Any]) -> None:
    external = external_names(values)
    rendered = {(m.kind, m.namespace or "homeci", m.name): m for m in installed}
    problems: list[str] = []
    for w in workloads(installed):
        ns = w.namespace or "homeci"
        for kind, name, key, path in references(w):
            target = rendered.get((kind, ns, name))
            if target is None:
                # kube-root-ca.crt: Kubernetes publishes it in every namespace (the API server's CA).
                if name not in external and (kind, name) != ("ConfigMap", "kube-root-ca.crt"):
                    problems.append(
                        f"{w.ref} {path} references {kind}/{name} in {ns}: neither rendered nor "
                        "declared external (an existing* value)"
                    )
                continue
            if key is not None and kind != "PersistentVolumeClaim" and key not in _keys(target):
                problems.append(f"{w.ref} {path} references key {key!r} that {target.ref} does not have")
    assert not problems, "\n".join(problems)


def test_ingresses(installed: list[mf.Manifest], values: dict[str, Any]) -> None:
    external = external_names(values)
    services = {m.name: m for m in mf.by_kind(installed, "Service")}
    secrets = {m.name for m in mf.by_kind(installed, "Secret")}
    classes = {m.name for m in mf.by_kind(installed, "IngressClass")}
    want_class = dig(values, "global.ingressClass", "homeci")
    problems: list[str] = []
    for ing in mf.by_kind(installed, "Ingress"):
        spec = ing.obj["spec"]
        if spec.get("ingressClassName") != want_class:
            problems.append(
                f"{ing.ref} spec.ingressClassName {spec.get('ingressClassName')!r} != global.ingressClass "
                f"{want_class!r}"
            )
        if dig(values, "traefik.enabled", True) and spec.get("ingressClassName") not in classes:
            problems.append(
                f"{ing.ref} spec.ingressClassName {spec.get('ingressClassName')!r} is not rendered"
            )
        tls = spec.get("tls") or []
        if not tls:
            problems.append(f"{ing.ref} spec.tls is missing (HTTPS with {RELEASE}-tls on every public host)")
        for i, t in enumerate(tls):
            if t.get("secretName") != f"{RELEASE}-tls":
                problems.append(
                    f"{ing.ref} spec.tls[{i}].secretName {t.get('secretName')!r} != {RELEASE}-tls"
                )
            elif t["secretName"] not in secrets and t["secretName"] not in external:
                problems.append(f"{ing.ref} spec.tls[{i}].secretName {t['secretName']} is not rendered")
            rule_hosts = {r.get("host") for r in spec.get("rules") or []}
            if set(t.get("hosts") or []) != rule_hosts:
                problems.append(
                    f"{ing.ref} spec.tls[{i}].hosts {t.get('hosts')} != rule hosts {sorted(rule_hosts)}"
                )
        for r in spec.get("rules") or []:
            for p in (r.get("http") or {}).get("paths") or []:
                backend = p["backend"]["service"]
                svc = services.get(backend["name"])
                if svc is None:
                    problems.append(f"{ing.ref} backend Service/{backend['name']} is not rendered")
                    continue
                port = backend.get("port") or {}
                names = {sp.get("name") for sp in svc.obj["spec"]["ports"]}
                numbers = {sp.get("port") for sp in svc.obj["spec"]["ports"]}
                if port.get("name", port.get("number")) not in names | numbers:
                    problems.append(f"{ing.ref} backend port {port} is not a port of {svc.ref}")
    assert not problems, "\n".join(problems)


def registry_config(objs: list[mf.Manifest]) -> dict[str, Any]:
    secret = mf.get(objs, "Secret", f"{RELEASE}-registry-config")
    data = secret.obj.get("data") or {}
    config = yaml.safe_load(base64.b64decode(data["config.yml"]))
    assert isinstance(config, dict), f"{secret.ref} data[config.yml] is not a mapping"
    return config


def test_registry_host_matches_everywhere(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any], notes: str
) -> None:
    host = contract.host("registry", values)
    ing = mf.get(umbrella_manifests, "Ingress", f"{RELEASE}-registry")
    ingress_hosts = [r["host"] for r in ing.obj["spec"]["rules"]]
    assert ingress_hosts == [host], f"{ing.ref} spec.rules[*].host {ingress_hosts} != {host}"
    config = registry_config(umbrella_manifests)
    assert config["http"]["host"] == f"https://{host}", (
        f"Secret/{RELEASE}-registry-config config.yml http.host {config['http']['host']!r} != https://{host}"
    )
    assert f"Registry:  https://{host}\n" in notes, f"NOTES do not list the registry URL https://{host}"
    assert f"docker login {host} " in notes, f"NOTES docker login does not use {host}"


def test_registry_configuration(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    config = registry_config(umbrella_manifests)
    dep = mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-registry")
    where = f"Secret/{RELEASE}-registry-config config.yml"
    assert config["auth"]["htpasswd"]["path"] == "/auth/htpasswd", f"{where} auth.htpasswd.path"
    assert config["storage"]["delete"]["enabled"] is True, f"{where} storage.delete.enabled"
    assert dep.obj["spec"]["strategy"]["type"] == "Recreate", f"{dep.ref} spec.strategy.type"
    ((_path, c),) = list(dep.containers())
    env = {e["name"]: e for e in c.get("env") or []}
    assert env.get("OTEL_TRACES_EXPORTER", {}).get("value") == "none", f"{dep.ref} env OTEL_TRACES_EXPORTER"
    assert c["args"][-1] == "/etc/distribution/config.yml", f"{dep.ref} containers[registry].args"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert "/etc/distribution" in mounts and "/auth" in mounts, f"{dep.ref} config and htpasswd mounts"
    pod_sc = dep.pod_spec()["securityContext"]  # type: ignore[index]
    assert pod_sc.get("fsGroup"), f"{dep.ref} spec.template.spec.securityContext.fsGroup"
    if dig(values, "registry.storage.type", "filesystem") == "s3":
        assert "s3" in config["storage"] and "filesystem" not in config["storage"], f"{where} storage.s3"
        assert not mf.by_kind(umbrella_manifests, "PersistentVolumeClaim") or all(
            "registry" not in p.name for p in mf.by_kind(umbrella_manifests, "PersistentVolumeClaim")
        )
        if dig(values, "registry.storage.s3.existingSecret"):
            assert {"REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY"} <= set(env), (
                f"{dep.ref} S3 credentials come from the environment"
            )
    else:
        assert config["storage"]["filesystem"]["rootdirectory"] == "/var/lib/registry"
        claims = [v for v in dep.pod_spec()["volumes"] if v["name"] == "data"]  # type: ignore[index]
        if dig(values, "registry.persistence.enabled", True):
            pvc = mf.get(umbrella_manifests, "PersistentVolumeClaim", f"{RELEASE}-registry")
            assert pvc.annotations.get("helm.sh/resource-policy") == "keep", (
                f"{pvc.ref} is not kept on uninstall"
            )
            assert claims[0]["persistentVolumeClaim"]["claimName"] == pvc.name
            want_class = dig(values, "registry.persistence.storageClass") or dig(
                values, "global.storageClass"
            )
            assert pvc.obj["spec"].get("storageClassName") == (want_class or None), (
                f"{pvc.ref} storageClassName"
            )
        else:
            assert "emptyDir" in claims[0], (
                f"{dep.ref} volumes[data] should be an emptyDir without persistence"
            )


def test_garbage_collect_is_safe(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    jobs = [m for m in mf.by_kind(umbrella_manifests, "CronJob") if m.name == f"{RELEASE}-registry-gc"]
    if not dig(values, "registry.garbageCollect.enabled", False):
        assert not jobs, "garbage-collect CronJob rendered although registry.garbageCollect.enabled is false"
        return
    (job,) = jobs
    ((_path, c),) = list(job.containers())
    read_only = registry_config(umbrella_manifests)["storage"]["maintenance"]["readonly"]["enabled"]
    assert read_only == bool(dig(values, "registry.maintenance.readOnly", False))
    assert ("--dry-run" in c["args"]) == (not read_only), (
        f"{job.ref} containers[garbage-collect].args {c['args']}: delete only while the registry is read-only"
    )
    assert job.obj["spec"]["concurrencyPolicy"] == "Forbid", f"{job.ref} spec.concurrencyPolicy"


def test_traefik_serves_the_shared_certificate(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    if not dig(values, "traefik.enabled", True):
        assert not [m for m in umbrella_manifests if m.name == f"{RELEASE}-traefik"], (
            "traefik.enabled=false but Traefik objects are rendered"
        )
        return
    dep = mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-traefik")
    spec = dep.pod_spec() or {}
    ((_path, c),) = list(dep.containers())
    args = c["args"]
    # The certificate lives in the file provider's watched directory (renewals reload without restart).
    watched = next(a.split("=", 1)[1] for a in args if a.startswith("--providers.file.directory="))
    assert "--providers.file.watch=true" in args, f"{dep.ref} containers[traefik].args: no file watch"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == watched)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    sources = (volume.get("projected") or {}).get("sources") or []
    secret = [s["secret"] for s in sources if "secret" in s]
    assert secret and secret[0]["name"] == f"{RELEASE}-tls", (
        f"{dep.ref} volumes[{volume['name']}]: Secret {RELEASE}-tls is not projected into {watched}")
    paths = {i["path"] for i in secret[0]["items"]}
    assert paths == {"tls.crt", "tls.key"}, f"{dep.ref} volumes[{volume['name']}] projects {paths}"
    klass = dig(values, "global.ingressClass", "homeci")
    for want in (
        f"--providers.kubernetesIngress.ingressClass={klass}",
        "--entryPoints.web.http.redirections.entryPoint.scheme=https",
        "--entryPoints.websecure.http.tls=true",
        "--ping=true",
    ):
        assert want in args, f"{dep.ref} containers[traefik].args lacks {want}"
    timeout = [
        a for a in args if a.startswith("--entryPoints.websecure.transport.respondingTimeouts.readTimeout=")
    ]
    assert timeout and timeout[0].rsplit("=", 1)[1] not in ("60s", "1m"), (
        f"{dep.ref} websecure readTimeout must be raised above Traefik's 60s default for layer uploads"
    )
    cm = mf.get(umbrella_manifests, "ConfigMap", f"{RELEASE}-traefik")
    dynamic = yaml.safe_load(cm.obj["data"]["dynamic.yaml"])
    default = dynamic["tls"]["stores"]["default"]["defaultCertificate"]
    assert (default["certFile"], default["keyFile"]) == (f"{watched}/tls.crt", f"{watched}/tls.key"), (
        f"{cm.ref} tls.stores.default.defaultCertificate")


@pytest.mark.parametrize("major", [3, 4])
def test_subcharts_work_alone(major: int) -> None:
    """Traefik and the registry render on their own (no umbrella, no global values)."""
    helm = Helm(major)
    traefik = mf.parse(
        helm.template(
            UMBRELLA / "charts" / "traefik", release="edge", namespace="edge", kube_version=KUBE_VERSION
        )
    )
    dep = mf.get(traefik, "Deployment", "edge-traefik")
    assert mf.get(traefik, "IngressClass", "homeci")
    assert not [v for v in (dep.pod_spec() or {})["volumes"] if v["name"] == "certs"], (
        f"{dep.ref}: standalone without tls.defaultCertificateSecret must not mount a certificate"
    )
    registry = mf.parse(
        helm.template(
            UMBRELLA / "charts" / "registry",
            release="reg",
            namespace="reg",
            set_values=["host=registry.lan"],
            kube_version=KUBE_VERSION,
        )
    )
    ing = mf.get(registry, "Ingress", "reg-registry")
    assert ing.obj["spec"]["rules"][0]["host"] == "registry.lan"
    dep = mf.get(registry, "Deployment", "reg-registry")
    assert not [v for v in (dep.pod_spec() or {})["volumes"] if v["name"] == "ca"], (
        f"{dep.ref}: standalone must not mount the umbrella's CA ConfigMap"
    )
    alone = mf.parse(
        helm.template(
            UMBRELLA / "charts" / "registry", release="reg", namespace="reg", kube_version=KUBE_VERSION
        )
    )
    host = mf.get(alone, "Ingress", "reg-registry").obj["spec"]["rules"][0]["host"]
    # The chart's own global defaults (global.domain homeci.localhost, global.hosts.registry), the same
    # host the umbrella gives it: registry.localhost was a default of the registry's own copy of the helper.
    assert host == "registry.homeci.localhost", f"Ingress/reg-registry standalone default host {host!r}"


def test_a_numeric_host_label_stays_a_string(tmp_path: Path) -> None:
    """``registry.host: "2"`` is a valid DNS label; unquoted in the Ingress it became the integer 2, which
    Kubernetes refuses (found by the property tests)."""
    from homeci_testing.support import render_umbrella

    values = tmp_path / "values.yaml"
    values.write_text('registry:\n  host: "2"\n')
    objects = render_umbrella([values])
    ingress = mf.get(objects, "Ingress", f"{RELEASE}-registry").obj
    host = ingress["spec"]["rules"][0]["host"]
    assert host == "2", f"Ingress/{RELEASE}-registry spec.rules[0].host is {host!r}, not the string '2'"
    assert ingress["spec"]["tls"][0]["hosts"] == ["2"], f"Ingress/{RELEASE}-registry spec.tls[0].hosts"
