"""Issue 20 items 2-3 on a real kube-apiserver: drone-pipelines' scenario `two-owners` installed, then
requests made as the deployer ServiceAccounts (impersonation) and as the runner's step pods. Every
admission policy and RBAC rule is exercised with a case it admits and the cases it refuses, and each
refusal is checked for its one-line message. Admitted writes use server-side dry run (admission runs,
nothing is stored), except the Deployment an UPDATE is tried on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from homeci import contract
from homeci.cluster.sim import SimCluster
from homeci.helm import Helm
from homeci_testing import drone
from homeci_testing.clusters import Deployments, create_namespace, helm_install
from homeci_testing.support import PIPELINES

SCENARIO = PIPELINES / "ci" / "two-owners-values.yaml"
ALICE = "Alice.Smith"  # targets `alice` (hosts hello, blog), runner label alice-smith
HOMECI = "homeci"  # targets `apps` (every free label) and `legacy` (host legacy)


@dataclass
class Stack:
    release: str
    namespace: str  # the release namespace
    build: str
    ns: dict[str, str]  # scenario target name -> namespace in this cluster
    domain: str
    admin: Any  # ApiClient as the cluster admin

    def deployer(self, owner: str) -> str:
        return contract.deployer_account(owner, self.release)

    def as_deployer(self, owner: str) -> Any:
        user = f"system:serviceaccount:{self.build}:{self.deployer(owner)}"
        return client.ApiClient(self.admin.configuration, header_name="Impersonate-User", header_value=user)

    def host(self, label: str) -> str:
        return f"{label}.{self.domain}"


@pytest.fixture(scope="module")
def stack(sim_cluster: SimCluster, api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tag = uuid.uuid4().hex[:5]
    release, namespace = f"pp-{tag}", f"pp-{tag}"
    values = yaml.safe_load(SCENARIO.read_text())
    names = {t["namespace"]: f"pp-{tag}-{t['namespace']}" for t in values["targets"]}
    for target in values["targets"]:
        target["namespace"] = names[target["namespace"]]
    build = f"pp-{tag}-builds"
    values["stack"] = {"buildNamespace": build}
    values["drone"] = {"token": {"value": "sim-token-not-a-secret"}}
    path = tmp_path_factory.mktemp("values") / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    deps = Deployments()
    for ns in (namespace, *names.values()):
        create_namespace(api, ns)
        deps.namespaces.add(ns)
    create_namespace(api, build, level="baseline")  # the umbrella's build namespace level
    deps.namespaces.add(build)
    helm = Helm(3, kubeconfig=sim_cluster.kubeconfig)
    try:
        helm_install(deps, helm, api, PIPELINES, namespace, release=release, values_files=[path])
        domain = drone.chart_values(SCENARIO, chart=PIPELINES)["stack"]["domain"]
        st = Stack(release, namespace, build, names, domain, api)
        _wait_for_policies(st)
        yield st
    finally:
        deps.cleanup(api)
    # The policies are cluster-scoped: uninstalling the release must take them along.
    policies = client.AdmissionregistrationV1Api(api).list_validating_admission_policy().items
    left = [p.metadata.name for p in policies if p.metadata.name.startswith(f"{release}-")]
    assert not left, f"helm uninstall {release} left ValidatingAdmissionPolicies {left}"


def _wait_for_policies(st: Stack, timeout: float = 60) -> None:
    """The API server loads new policies asynchronously: wait until each one refuses a request."""
    import time

    probes: list[Callable[[], Any]] = [
        lambda: _step_pod(st, "bob", st.deployer(HOMECI)),
        lambda: _ingress(st, ALICE, "alice", _ingress_body(st.host("hello"), cls="other")),
        lambda: _deployment(st, ALICE, "alice", _pod(privileged=True)),
        lambda: _service(st, ALICE, "alice", {"type": "NodePort"}),
    ]
    deadline = time.monotonic() + timeout
    for i, probe in enumerate(probes):
        while True:
            try:
                probe()
                last = "admitted"
            except ApiException as exc:
                last = f"{exc.status}: {_message(exc)}"
                if "homeci:" in last:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"drone-pipelines' admission policies did not take effect within "
                                     f"{timeout:.0f}s (ValidatingAdmissionPolicy/{st.release}-*): probe {i} "
                                     f"got {last}")
            time.sleep(0.5)


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError):
        return str(exc.body or exc.reason)


# -- request builders ---------------------------------------------------------------------------------

def _pod(**extra: Any) -> dict[str, Any]:
    """A restricted-compliant pod spec, with ``extra`` knobs that the policies refuse."""
    container: dict[str, Any] = {
        "name": "app", "image": "registry.homeci.localhost/x/app:1",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True, "runAsUser": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    spec: dict[str, Any] = {"containers": [container], "imagePullSecrets": [{"name": "homeci-registry"}]}
    if extra.get("privileged"):  # (the API refuses privileged together with allowPrivilegeEscalation false)
        container["securityContext"] = {"privileged": True}
    if "add" in extra:
        container["securityContext"]["capabilities"]["add"] = [extra["add"]]
    if extra.get("host_port"):
        container["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    if "account" in extra:
        spec["serviceAccountName"] = extra["account"]
    if extra.get("host_network"):
        spec["hostNetwork"] = True
    if extra.get("host_path"):
        spec["volumes"] = [{"name": "node", "hostPath": {"path": "/etc"}}]
    if extra.get("secret_volume"):
        spec["volumes"] = [{"name": "creds", "secret": {"secretName": "homeci-registry"}}]
    if extra.get("secret_env"):
        container["env"] = [{"name": "AUTH", "valueFrom": {"secretKeyRef": {"name": "homeci-registry",
                                                                             "key": ".dockerconfigjson"}}}]
    return spec


def _deployment(st: Stack, owner: str, target: str, pod: dict[str, Any], *, name: str = "web",
                dry: bool = True) -> Any:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}
    return client.AppsV1Api(st.as_deployer(owner)).create_namespaced_deployment(
        st.ns[target], body, dry_run="All" if dry else None)


def _ingress_body(*hosts: str, cls: str | None = "homeci", tls: list[str] | None = None,
                  default_backend: bool = False) -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    rules = [({"host": h} if h else {}) | {"http": {"paths": [path]}} for h in hosts]
    spec: dict[str, Any] = {"rules": rules}
    if cls:
        spec["ingressClassName"] = cls
    if tls:
        spec["tls"] = [{"hosts": tls}]
    if default_backend:
        spec["defaultBackend"] = backend
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
            "spec": spec}


def _ingress(st: Stack, owner: str, target: str, body: dict[str, Any]) -> Any:
    return client.NetworkingV1Api(st.as_deployer(owner)).create_namespaced_ingress(st.ns[target], body,
                                                                                  dry_run="All")


def _service(st: Stack, owner: str, target: str, spec: dict[str, Any]) -> Any:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}
    core = client.CoreV1Api(st.as_deployer(owner))
    return core.create_namespaced_service(st.ns[target], body, dry_run="All")


def _step_pod(st: Stack, owner_label: str | None, account: str) -> Any:
    """A pod as drone-runner-kube runs one: created with every container on the idle placeholder (always
    admitted: refusing a creation would crash the runner), then the step's image swapped in with an
    update, which is where the policy decides. The pod is deleted again."""
    import uuid

    labels = {"io.drone": "true", "io.drone.build.number": "7"}
    if owner_label is not None:
        labels["io.drone.repo.namespace"] = owner_label
    name = f"drone-step-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"serviceAccountName": account, "restartPolicy": "Never",
                     "containers": [{"name": "clone", "image": "drone/placeholder:1"}]}}
    core = client.CoreV1Api(st.admin)
    core.create_namespaced_pod(st.build, body)
    try:
        patch = [{"op": "replace", "path": "/spec/containers/0/image", "value": "drone/git:1.2.1"}]
        return core.patch_namespaced_pod(name, st.build, patch, dry_run="All")
    finally:
        core.delete_namespaced_pod(name, st.build, grace_period_seconds=0)


def _refused(call: Callable[[], Any], needle: str, what: str) -> None:
    with pytest.raises(ApiException) as err:
        call()
    message = _message(err.value)
    assert needle in message, f"{what}: refused with {message!r}, want {needle!r}"


# -- step pods: a pipeline runs as its own owner's deployer or as default -----------------------------

def test_step_pod_may_use_its_owners_deployer_or_default(stack: Stack) -> None:
    st = stack
    _step_pod(st, "alice-smith", st.deployer(ALICE))
    _step_pod(st, "homeci", st.deployer(HOMECI))
    _step_pod(st, "alice-smith", "default")
    _step_pod(st, "someone-else", "default")


@pytest.mark.parametrize(("label", "owner", "needle"), [
    ("alice-smith", HOMECI, "homeci: a pipeline of owner alice-smith may not run as ServiceAccount {sa}: "
                            "its pods may use {own} or default only (targets[].owners of drone-pipelines)"),
    ("bob", HOMECI, "homeci: a pipeline of owner bob may not run as ServiceAccount {sa}: its pods may use "
                    "default only"),
    (None, ALICE, "homeci: a pipeline of no Drone repository may not run as ServiceAccount {sa}"),
])
def test_step_pod_with_another_owners_deployer_is_refused(stack: Stack, label: str | None, owner: str,
                                                          needle: str) -> None:
    st = stack
    sa = st.deployer(owner)
    text = needle.format(sa=sa, own=st.deployer(ALICE))
    _refused(lambda: _step_pod(st, label, sa), text, f"step pod labelled {label} as {sa}")


# -- RBAC: an owner deploys only into the targets that list it ---------------------------------------

@pytest.mark.parametrize(("owner", "target"), [(ALICE, "apps"), (ALICE, "legacy"), (HOMECI, "alice")])
def test_deployer_cannot_write_into_another_owners_target(stack: Stack, owner: str, target: str) -> None:
    st = stack
    with pytest.raises(ApiException) as err:
        _deployment(st, owner, target, _pod())
    assert err.value.status == 403 and "forbidden" in _message(err.value), (
        f"{st.deployer(owner)} in {st.ns[target]}: {err.value.status} {_message(err.value)}"
    )


def test_deployer_may_ask_rbac_before_writing(stack: Stack) -> None:
    """The deploy step's `kubectl auth can-i` (a SelfSubjectAccessReview) answers per target."""
    st = stack
    answers = {}
    for target in ("alice", "apps"):
        review = client.AuthorizationV1Api(st.as_deployer(ALICE)).create_self_subject_access_review({
            "spec": {"resourceAttributes": {"verb": "create", "group": "apps", "resource": "deployments",
                                            "namespace": st.ns[target]}}})
        answers[target] = review.status.allowed
    assert answers == {"alice": True, "apps": False}, answers


# -- Ingresses -----------------------------------------------------------------------------------------

def test_ingress_within_the_targets_hosts_is_admitted(stack: Stack) -> None:
    st = stack
    _ingress(st, ALICE, "alice", _ingress_body(st.host("hello"), st.host("blog"), tls=[st.host("hello")]))
    _ingress(st, HOMECI, "apps", _ingress_body(st.host("shop")))  # the target that keeps the free labels
    _ingress(st, HOMECI, "legacy", _ingress_body(st.host("legacy")))


INGRESS_REFUSALS: dict[str, tuple[str, str, Callable[[Stack], dict[str, Any]], str]] = {
    "no-class": (ALICE, "alice", lambda s: _ingress_body(s.host("hello"), cls=None),
                 "homeci: Ingress web must set spec.ingressClassName: homeci (the homeci Traefik)"),
    "other-class": (ALICE, "alice", lambda s: _ingress_body(s.host("hello"), cls="nginx"),
                    "must set spec.ingressClassName: homeci (the homeci Traefik), not nginx"),
    "stack-host": (ALICE, "alice", lambda s: _ingress_body(s.host("registry")),
                   "homeci: Ingress web host registry.{d} belongs to the homeci stack itself"),
    "stack-host-in-tls": (ALICE, "alice", lambda s: _ingress_body(s.host("hello"), tls=[s.host("git")]),
                          "host git.{d} belongs to the homeci stack itself"),
    "outside-domain": (HOMECI, "apps", lambda s: _ingress_body("shop.example.com"),
                       "homeci: Ingress web host shop.example.com is not one label under the stack domain"),
    "two-labels": (HOMECI, "apps", lambda s: _ingress_body(s.host("a.shop")),
                   "host a.shop.{d} is not one label under the stack domain"),
    "not-this-targets-label": (ALICE, "alice", lambda s: _ingress_body(s.host("legacy")),
                               "host legacy.{d} is not a host of namespace {alice} (its targets[].hosts in "
                               "drone-pipelines: hello, blog)"),
    "another-targets-label": (HOMECI, "apps", lambda s: _ingress_body(s.host("hello")),
                              "host hello.{d} is reserved for another namespace"),
    "rule-without-host": (HOMECI, "apps", lambda s: _ingress_body(""),
                          "homeci: Ingress web has a rule without host"),
    "default-backend": (HOMECI, "apps", lambda s: _ingress_body(s.host("shop"), default_backend=True),
                        "homeci: Ingress web may not set spec.defaultBackend"),
}


@pytest.mark.parametrize("case", list(INGRESS_REFUSALS))
def test_ingress_refusals(stack: Stack, case: str) -> None:
    st = stack
    owner, target, body, needle = INGRESS_REFUSALS[case]
    text = needle.format(d=st.domain, alice=st.ns["alice"])
    _refused(lambda: _ingress(st, owner, target, body(st)), text, f"Ingress case {case}")


# -- workloads -----------------------------------------------------------------------------------------

def test_plain_app_deployment_is_admitted(stack: Stack) -> None:
    _deployment(stack, ALICE, "alice", _pod())


WORKLOAD_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "other-account": ({"account": "homeci-pipelines-deployer-homeci"},
                      "homeci: Deployment web may run only as ServiceAccount default, not "
                      "homeci-pipelines-deployer-homeci"),
    "privileged": ({"privileged": True}, "homeci: Deployment web container app may not be privileged"),
    "host-network": ({"host_network": True}, "homeci: Deployment web may not share namespaces with the node"),
    "host-path": ({"host_path": True}, "homeci: Deployment web may not mount a directory of the node: volume "
                                       "node is a hostPath"),
    "added-capability": ({"add": "NET_ADMIN"},
                         "homeci: Deployment web container app may not add capabilities"),
    "host-port": ({"host_port": True},
                  "homeci: Deployment web container app may not open a port on the node"),
    "pull-secret-volume": ({"secret_volume": True}, "homeci: Deployment web may not read the Secret "
                                                    "homeci-registry that homeci puts in the namespace"),
    "pull-secret-env": ({"secret_env": True}, "may not read the Secret homeci-registry"),
}


@pytest.mark.parametrize("case", list(WORKLOAD_REFUSALS))
def test_workload_refusals(stack: Stack, case: str) -> None:
    extra, needle = WORKLOAD_REFUSALS[case]
    _refused(lambda: _deployment(stack, ALICE, "alice", _pod(**extra)), needle, f"Deployment case {case}")


def test_update_cannot_give_an_admitted_deployment_the_nodes_network(stack: Stack) -> None:
    """The deploy step's `kubectl apply`/`set image` on an existing app is an UPDATE: checked the same."""
    st = stack
    apps = client.AppsV1Api(st.as_deployer(HOMECI))
    _deployment(st, HOMECI, "apps", _pod(), name="updated", dry=False)
    patch = {"spec": {"template": {"spec": {"hostNetwork": True}}}}
    _refused(lambda: apps.patch_namespaced_deployment("updated", st.ns["apps"], patch, dry_run="All"),
             "homeci: Deployment updated may not share namespaces with the node", "PATCH of a Deployment")
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.x/y:2"}]}}}}
    apps.patch_namespaced_deployment("updated", st.ns["apps"], image, dry_run="All")


def test_services_stay_inside_the_cluster(stack: Stack) -> None:
    st = stack
    _service(st, ALICE, "alice", {})
    _refused(lambda: _service(st, ALICE, "alice", {"type": "NodePort"}),
             "homeci: Service web must be of type ClusterIP", "NodePort Service")
    _refused(lambda: _service(st, ALICE, "alice", {"externalIPs": ["10.9.9.9"]}),
             "homeci: Service web may not set spec.externalIPs", "Service with externalIPs")


def test_the_same_requests_from_a_non_deployer_are_not_policed(stack: Stack) -> None:
    """The deployer policies bind to the deployers only (the operator keeps every right)."""
    st = stack
    client.NetworkingV1Api(st.admin).create_namespaced_ingress(
        st.ns["alice"], _ingress_body(st.host("legacy"), cls="nginx"), dry_run="All")


# -- Pod Security labels by the registration Job's identity ------------------------------------------

def test_registration_identity_labels_exactly_the_targets(stack: Stack, sim_cluster: SimCluster,
                                                          tmp_path: Path) -> None:
    """register.py's labelling with a token of the Job's ServiceAccount: the targets get their level
    (legacy: baseline with its reason), a rerun changes nothing, any other namespace is refused."""
    st = stack
    reg = drone.load_registration()
    token = client.CoreV1Api(st.admin).create_namespaced_service_account_token(
        f"{st.release}-registration", st.namespace, {"spec": {"expirationSeconds": 600}}).status.token
    (tmp_path / "token").write_text(token)
    cfg = st.admin.configuration
    ca = cfg.ssl_ca_cert
    assert ca, "the sim kubeconfig names no CA file"
    kube = reg.kube_client({"HOMECI_KUBE_SERVER": cfg.host, "HOMECI_KUBE_TOKEN_FILE": str(tmp_path / "token"),
                            "HOMECI_KUBE_CA_FILE": ca}, attempts=1, log=lambda _: None)
    values = yaml.safe_load(SCENARIO.read_text())
    wanted = {}
    for t in values["targets"]:
        level = t.get("podSecurity", "restricted")
        wanted[st.ns[t["namespace"]]] = {
            "labels": {"pod-security.kubernetes.io/enforce": level,
                       "pod-security.kubernetes.io/audit": "restricted",
                       "pod-security.kubernetes.io/warn": "restricted"},
            "annotations": {"homeci.dev/pod-security-reason": t.get("podSecurityReason")}}
    first = [reg.label_namespace(kube, ns, meta).action for ns, meta in sorted(wanted.items())]
    second = [reg.label_namespace(kube, ns, meta).action for ns, meta in sorted(wanted.items())]
    assert "updated" in first and set(second) == {"unchanged"}, (first, second)
    legacy = client.CoreV1Api(st.admin).read_namespace(st.ns["legacy"]).metadata
    assert legacy.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert legacy.annotations["homeci.dev/pod-security-reason"] == values["targets"][2]["podSecurityReason"]
    with pytest.raises(reg.AuthError, match="answered 403 to GET /api/v1/namespaces/kube-system"):
        reg.label_namespace(kube, "kube-system", wanted[st.ns["apps"]])
