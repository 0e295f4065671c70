"""Names and labels follow the cross-chart contract: <release>-<component> names and the
app.kubernetes.io recommended labels on every object and pod template; Services select real pods."""

from __future__ import annotations

from homeci import manifests as mf

from .conftest import Rendered, workloads

REQUIRED = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
# Objects whose name cannot be <release>-*, with the reason.
NAME_EXCEPTIONS = {
    "IngressClass": "the class name is global.ingressClass (`homeci`), which Ingress objects reference",
    "ClusterRole": "cluster-scoped: <namespace>-<release>-<component> so two namespaces can hold a release",
    "ClusterRoleBinding": "cluster-scoped: <namespace>-<release>-<component>, like its ClusterRole",
    "Namespace": "<release>-<purpose> namespaces are checked by their own name rule",
}
# Objects the user names (an existing config map of another system), with the reason.
EXTERNAL_NAMES = {("ConfigMap", "coredns-custom"): "k3s reads exactly kube-system/coredns-custom"}
# drone-pipelines' copies into each target namespace carry the name of the stack's object they copy
# (<stack.release>-<suffix>, what the app's manifests and the deploy step reference), not its own release's.
STACK_NAMED = {
    ("Secret", "registry"): "the pull Secret apps name in imagePullSecrets: <stack.release>-registry",
    ("ConfigMap", "ca"): "the stack's CA bundle, mounted by apps as <stack.release>-ca",
}


def test_names(rendered: Rendered) -> None:
    release = rendered.case.release
    stack = (rendered.values.get("stack") or {}).get("release") or "homeci"
    problems: list[str] = []
    # app namespaces are the user's names (global.appNamespaces), not the release's
    spec = (rendered.values.get("global") or {}).get("appNamespaces") or [{"name": "apps"}]
    apps = {a.get("name") for a in spec}
    for m in rendered.manifests:
        if (m.kind, m.name) in EXTERNAL_NAMES:
            continue
        if m.kind == "Namespace" and m.name in apps and rendered.case.is_umbrella:
            continue
        copied = (m.kind, m.name.removeprefix(f"{stack}-"))
        if rendered.case.chart == "drone-pipelines" and copied in STACK_NAMED:
            continue
        if m.kind in ("ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
                      "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
                      "MutatingAdmissionPolicyBinding"):
            ok = m.name.startswith(f"{m.namespace or 'homeci'}-{release}-") or m.name.startswith(
                f"{release}-"
            )
        elif m.kind == "IngressClass":
            ok = bool(m.name)
        else:
            ok = m.name == release or m.name.startswith(f"{release}-")
        if not ok:
            problems.append(
                f"{m.ref} metadata.name does not start with {release}- "
                f"({NAME_EXCEPTIONS.get(m.kind, 'contract: <release>-<component>')})"
            )
        if m.kind == "Service" and m.name == "drone-server":
            problems.append(
                f"{m.ref}: a Service named drone-server breaks Drone (DRONE_SERVER_* env collision)"
            )
    assert not problems, "\n".join(problems)


def test_labels(rendered: Rendered) -> None:
    release = rendered.case.release
    problems: list[str] = []
    for m in rendered.manifests:
        labels = m.labels
        for key in REQUIRED:
            if not labels.get(key):
                problems.append(f"{m.ref} metadata.labels[{key}] is missing")
        if labels.get("app.kubernetes.io/part-of", "homeci") != "homeci":
            problems.append(f"{m.ref} metadata.labels[app.kubernetes.io/part-of] is not homeci")
        if labels.get("app.kubernetes.io/instance", release) != release:
            problems.append(f"{m.ref} metadata.labels[app.kubernetes.io/instance] is not {release}")
    for w in workloads(rendered.manifests):
        if w.kind not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        tmpl = (w.obj["spec"]["template"].get("metadata") or {}).get("labels") or {}
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/version",
            "app.kubernetes.io/part-of",
        ):
            if not tmpl.get(key):
                problems.append(f"{w.ref} spec.template.metadata.labels[{key}] is missing")
        selector = w.obj["spec"]["selector"].get("matchLabels") or {}
        for key, value in selector.items():
            if tmpl.get(key) != value:
                problems.append(
                    f"{w.ref} spec.selector.matchLabels[{key}]={value} does not match the pod template"
                )
        if "app.kubernetes.io/version" in selector:
            problems.append(
                f"{w.ref} spec.selector contains app.kubernetes.io/version (immutable selector would "
                "block upgrades)"
            )
    assert not problems, "\n".join(problems)


def test_services_select_pods(rendered: Rendered) -> None:
    templates = [
        ((w.obj["spec"]["template"].get("metadata") or {}).get("labels") or {}, w)
        for w in workloads(rendered.manifests)
        if w.kind in ("Deployment", "StatefulSet", "DaemonSet")
    ]
    problems: list[str] = []
    for svc in mf.by_kind(rendered.manifests, "Service"):
        selector = svc.obj["spec"].get("selector") or {}
        if not selector:
            continue
        matches = [w for labels, w in templates if all(labels.get(k) == v for k, v in selector.items())]
        if len(matches) != 1:
            problems.append(f"{svc.ref} spec.selector {selector} matches {len(matches)} workloads, want 1")
            continue
        w = matches[0]
        ports = {p.get("name") for _path, c in w.containers(init=False) for p in c.get("ports") or []}
        ports |= {
            p.get("containerPort") for _path, c in w.containers(init=False) for p in c.get("ports") or []
        }
        for p in svc.obj["spec"].get("ports") or []:
            if p.get("targetPort", p.get("port")) not in ports:
                problems.append(
                    f"{svc.ref} spec.ports[{p.get('name')}].targetPort {p.get('targetPort')} is not a "
                    f"port of {w.ref}"
                )
    assert not problems, "\n".join(problems)
