"""Every pod and container is restricted-compatible (Pod Security `restricted`), or is on the short
exception list below with its reason (the same reason is documented in values.yaml)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from homeci import manifests as mf

from .conftest import RELEASE, UMBRELLA, Rendered, containers, render_umbrella, workloads

# object ref -> (checks it may skip, reason). Keep short; every entry is opt-out or opt-in in values.yaml.
EXCEPTIONS: dict[str, tuple[frozenset[str], str]] = {
    f"DaemonSet/{RELEASE}-node-trust": (
        frozenset({"runAsNonRoot", "hostPath"}),
        "nodeTrust writes containerd certs.d/<registry>/ and the pipeline-step CA file on every node "
        "through hostPath, as root without capabilities, in its own `privileged` namespace "
        "(values.yaml nodeTrust; off with nodeTrust.enabled=false)",
    ),
    f"Deployment/{RELEASE}-traefik": (
        frozenset({"hostPort"}),
        "only with traefik.hostPorts.enabled (kind extraPortMappings, opt-in): host ports are outside "
        "Pod Security baseline (values.yaml traefik hostPorts)",
    ),
}
# Containers that may keep a writable root filesystem, with the reason.
WRITABLE_ROOT: dict[str, str] = {}
# Workloads that may run as a uid below 10000 (checkov CKV_K8S_40: ids that clash with host users), with
# the reason (the same as in toolchain/checkov-allowed.yaml and the README's security table).
LOW_UID: dict[str, str] = {
    f"Deployment/{RELEASE}-gogs": "uid 1000 (git): ssh-keygen, which Gogs runs, needs a passwd entry, "
                                  "and the rootless image has only git (tests/images/test_images_uid.py)",
    f"DaemonSet/{RELEASE}-node-trust": "root: writes root-owned node files through hostPath",
}
HIGH_UID = 10000


def allowed(ref: str, check: str) -> bool:
    checks, _reason = EXCEPTIONS.get(ref, (frozenset(), ""))
    return check in checks


def _pod_level(spec: dict[str, Any], key: str) -> Any:
    return (spec.get("securityContext") or {}).get(key)


def _api_users(objs: list[mf.Manifest]) -> set[str]:
    """ServiceAccounts bound to a Role or ClusterRole in the render (their pods use the API)."""
    users: set[str] = set()
    for m in objs:
        if m.kind in ("RoleBinding", "ClusterRoleBinding"):
            for s in m.obj.get("subjects") or []:
                if s.get("kind") == "ServiceAccount":
                    users.add(str(s.get("name")))
    return users


def test_pod_security_restricted(rendered: Rendered) -> None:
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests):
        spec = w.pod_spec() or {}
        sc = c.get("securityContext") or {}
        where = f"{w.ref} {path}.securityContext"
        non_root = sc.get("runAsNonRoot", _pod_level(spec, "runAsNonRoot"))
        if non_root is not True and not allowed(w.ref, "runAsNonRoot"):
            problems.append(f"{where}.runAsNonRoot is {non_root!r}, want true")
        uid = sc.get("runAsUser", _pod_level(spec, "runAsUser"))
        if uid == 0 and not allowed(w.ref, "runAsNonRoot"):
            problems.append(f"{where}.runAsUser is 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(
                f"{where}.allowPrivilegeEscalation is {sc.get('allowPrivilegeEscalation')!r}, want false"
            )
        if sc.get("privileged"):
            problems.append(f"{where}.privileged is true")
        drop = (sc.get("capabilities") or {}).get("drop") or []
        if "ALL" not in drop:
            problems.append(f"{where}.capabilities.drop is {drop!r}, want [ALL]")
        add = (sc.get("capabilities") or {}).get("add") or []
        if add and add != ["NET_BIND_SERVICE"]:
            problems.append(f"{where}.capabilities.add is {add!r} (restricted allows only NET_BIND_SERVICE)")
        seccomp = (sc.get("seccompProfile") or _pod_level(spec, "seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}.seccompProfile.type is {seccomp!r}, want RuntimeDefault")
        key = f"{w.ref} {path}"
        if sc.get("readOnlyRootFilesystem") is not True and key not in WRITABLE_ROOT:
            problems.append(
                f"{where}.readOnlyRootFilesystem is {sc.get('readOnlyRootFilesystem')!r}, want true"
            )
        for port in c.get("ports") or []:
            if port.get("hostPort") and not allowed(w.ref, "hostPort"):
                problems.append(f"{w.ref} {path}.ports[{port.get('name')}].hostPort is {port['hostPort']}")
    assert not problems, "\n".join(problems)


def test_high_uids(rendered: Rendered) -> None:
    """Every container runs as a uid and gid >= 10000 (clear of host users and system ids), and a pod with
    a data volume makes it writable through fsGroup = runAsGroup; exceptions: LOW_UID."""
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests):
        spec = w.pod_spec() or {}
        sc = c.get("securityContext") or {}
        uid = sc.get("runAsUser", _pod_level(spec, "runAsUser"))
        gid = sc.get("runAsGroup", _pod_level(spec, "runAsGroup"))
        if w.ref in LOW_UID:
            continue
        for key, value in (("runAsUser", uid), ("runAsGroup", gid)):
            if not isinstance(value, int) or value < HIGH_UID:
                problems.append(f"{w.ref} {path}.securityContext.{key} is {value!r}, want >= {HIGH_UID}")
        claims = [v for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v]
        if claims and _pod_level(spec, "fsGroup") != gid:
            problems.append(f"{w.ref} spec.securityContext.fsGroup is {_pod_level(spec, 'fsGroup')!r}: "
                            f"volume {claims[0]['name']} is writable for gid {gid} only with fsGroup {gid}")
    assert not problems, "\n".join(problems)


def test_pod_host_access(rendered: Rendered) -> None:
    problems: list[str] = []
    for w in workloads(rendered.manifests):
        spec = w.pod_spec() or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{w.ref} spec.{key} is true")
        for vol in spec.get("volumes") or []:
            if "hostPath" in vol and not allowed(w.ref, "hostPath"):
                problems.append(f"{w.ref} volumes[{vol.get('name')}].hostPath is not allowed")
    assert not problems, "\n".join(problems)


def test_service_links_and_tokens(rendered: Rendered) -> None:
    api_users = _api_users(rendered.manifests)
    problems: list[str] = []
    for w in workloads(rendered.manifests):
        spec = w.pod_spec() or {}
        if spec.get("enableServiceLinks") is not False:
            problems.append(
                f"{w.ref} spec.enableServiceLinks is {spec.get('enableServiceLinks')!r}, want false"
            )
        sa = spec.get("serviceAccountName") or "default"
        if spec.get("automountServiceAccountToken") is not False and sa not in api_users:
            problems.append(
                f"{w.ref} spec.automountServiceAccountToken is {spec.get('automountServiceAccountToken')!r} "
                f"but ServiceAccount {sa} has no RoleBinding: set it false"
            )
    assert not problems, "\n".join(problems)


def test_rbac_is_minimal(rendered: Rendered) -> None:
    """No wildcards, and nothing but reads cluster-wide: Ingress status is the one write, besides writes
    limited by resourceNames to named objects (drone-pipelines labels exactly its target namespaces)."""
    problems: list[str] = []
    for m in rendered.manifests:
        if m.kind not in ("Role", "ClusterRole"):
            continue
        for i, rule in enumerate(m.obj.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(field) or []):
                    problems.append(f"{m.ref} rules[{i}].{field} contains '*'")
            if m.kind == "ClusterRole":
                writes = set(rule.get("verbs") or []) - {"get", "list", "watch"}
                if writes and rule.get("resources") != ["ingresses/status"] and not rule.get("resourceNames"):
                    problems.append(
                        f"{m.ref} rules[{i}] grants {sorted(writes)} on {rule.get('resources')} cluster-wide"
                    )
    assert not problems, "\n".join(problems)


def test_exceptions_are_documented() -> None:
    for ref, (checks, reason) in EXCEPTIONS.items():
        assert checks and len(reason) > 40, f"security exception {ref} needs checks and a reason"


@pytest.mark.parametrize("component", ["traefik", "registry"])
def test_our_components_need_no_exception(default_manifests: list[mf.Manifest], component: str) -> None:
    """With default values Traefik and the registry are fully restricted (no exception used)."""
    ref = f"Deployment/{RELEASE}-{component}"
    w = mf.get(default_manifests, "Deployment", f"{RELEASE}-{component}")
    for path, c in w.containers():
        assert not any(p.get("hostPort") for p in c.get("ports") or []), (
            f"{ref} {path} uses a hostPort by default"
        )
        assert (c.get("securityContext") or {}).get("runAsNonRoot") is True, (
            f"{ref} {path}.securityContext.runAsNonRoot"
        )


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, op, values = labels.get(expr["key"]), expr["operator"], expr.get("values") or []
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and value in values)
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def _pod_labels(w: mf.Manifest) -> dict[str, str]:
    if w.kind == "Pod":  # a bare Pod (the helm test hook) carries its labels itself
        return dict(w.obj["metadata"].get("labels") or {})
    path = ("spec", "jobTemplate", "spec", "template") if w.kind == "CronJob" else ("spec", "template")
    node: Any = w.obj
    for key in path:
        node = node.get(key) or {}
    return dict((node.get("metadata") or {}).get("labels") or {})


def test_network_policies(rendered: Rendered) -> None:
    """With global.networkPolicy.enabled every release pod is under default deny, and every port a
    Service exposes is opened by an allow policy of that pod's component."""
    policies = mf.by_kind(rendered.manifests, "NetworkPolicy")
    if not ((rendered.values.get("global") or {}).get("networkPolicy") or {}).get("enabled"):
        assert not policies, (
            f"{[p.ref for p in policies]} rendered although global.networkPolicy.enabled is false"
        )
        return
    deny = mf.get(rendered.manifests, "NetworkPolicy", f"{RELEASE}-default-deny")
    assert set(deny.obj["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{deny.ref} spec.policyTypes"
    assert not deny.obj["spec"].get("ingress"), f"{deny.ref} must not allow any ingress"
    problems: list[str] = []
    in_release = [w for w in workloads(rendered.manifests) if (w.namespace or "homeci") == deny.namespace]
    for w in in_release:
        if not _selects(deny.obj["spec"]["podSelector"], _pod_labels(w)):
            problems.append(f"{w.ref} pod labels are not selected by {deny.ref}")
    for svc in mf.by_kind(rendered.manifests, "Service"):
        selector = svc.obj["spec"].get("selector") or {}
        targets = [w for w in in_release if selector and _selects({"matchLabels": selector}, _pod_labels(w))]
        for w in targets:
            allow = [
                p
                for p in policies
                if p is not deny
                and _selects(p.obj["spec"]["podSelector"], _pod_labels(w))
                and p.obj["spec"].get("ingress")
            ]
            if not allow:
                problems.append(f"{w.ref} is behind {svc.ref} but no NetworkPolicy allows ingress to it")
    assert not problems, "\n".join(problems)


def test_ingress_peer_reaches_the_stack_and_the_helm_test_reaches_it() -> None:
    """With k3s's Traefik (global.networkPolicy.ingressPeer) every public component admits exactly that
    peer, and the `helm test` Pod may reach it (not the disabled bundled Traefik)."""
    k3s = UMBRELLA / "ci" / "k3s-traefik-values.yaml"
    objs = render_umbrella([k3s], ["global.networkPolicy.enabled=true"])
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}}}
    for name in ("gogs", "drone", "registry"):
        policy = mf.get(objs, "NetworkPolicy", f"{RELEASE}-{name}")
        sources = [p for rule in policy.obj["spec"]["ingress"] for p in rule.get("from") or []]
        assert peer in sources, f"{policy.ref} spec.ingress[].from lacks the ingress peer {peer}: {sources}"
    tests = mf.get(objs, "NetworkPolicy", f"{RELEASE}-tests")
    targets = [p for rule in tests.obj["spec"]["egress"] for p in rule.get("to") or []]
    assert targets == [peer], f"{tests.ref} spec.egress[].to must be the ingress peer {peer}, got {targets}"


INSECURE_TEXT = re.compile(
    r"insecureSkipVerify\s*[:=]\s*\"?true|skip_?verify\s*[:=]\s*\"?true|SKIP_TLS_VERIFY\s*[:=]\s*\"?true"
    r"|--insecure[a-z-]*(?!=false)\b|--skip-tls-verify[a-z-]*(?!=false)\b",
    re.IGNORECASE,
)
TRUE_VALUES = {"true", "1", "yes", "on"}


def test_nothing_skips_tls_verification(rendered: Rendered) -> None:
    """Every component trusts the homeci CA instead of turning verification off (design contract)."""
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests):
        for env in c.get("env") or []:
            name = str(env.get("name", ""))
            if (
                re.search(r"SKIP_?(TLS_?)?VERIFY|INSECURE", name, re.I)
                and str(env.get("value", "")).lower() in TRUE_VALUES
            ):
                problems.append(f"{w.ref} {path}.env[{name}] turns TLS verification off")
        for arg in [*(c.get("args") or []), *(c.get("command") or [])]:
            if INSECURE_TEXT.search(str(arg)):
                problems.append(f"{w.ref} {path} argument {arg!r} turns TLS verification off")
    for m in rendered.manifests:
        if m.kind not in ("ConfigMap", "Secret"):
            continue
        texts = dict(m.obj.get("data") or {})
        if m.kind == "Secret":
            texts = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in texts.items()}
        texts.update(m.obj.get("stringData") or {})
        for key, text in texts.items():
            if INSECURE_TEXT.search(str(text)):
                problems.append(f"{m.ref} data[{key}] turns TLS verification off")
    assert not problems, "\n".join(problems)
