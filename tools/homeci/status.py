"""``homeci status``: what an operator checks on a running stack, from any kubeconfig, through the API
server only (no public DNS): each component's readiness and version; the CA and serving certificate
expiry (the Secrets' ``homeci.dev/not-after`` annotations and the certificates themselves); volume usage
against size (the kubelet's stats summary, read through the API server's node proxy); the last build of
each active repository (Drone's API through a port-forward to its pod, with the machine token). Each row
says what to do when it is not ok.

The evaluation (:func:`component_checks`, :func:`certificate_checks`, :func:`volume_checks`,
:func:`build_checks`) works on plain data, so it is tested without a cluster; :func:`gather` reads
the cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from homeci import contract
from homeci.errors import HomeciError

OK, WARN, FAIL = "ok", "warn", "fail"
VOLUME_WARN = 0.80  # used / size
VOLUME_FAIL = 0.95
CA_WARN_DAYS = 90  # a CA takes planning to replace: say so early


@dataclass
class Check:
    area: str  # component | certificate | volume | build
    name: str
    state: str  # ok | warn | fail
    detail: str
    advice: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def needs_attention(checks: list[Check]) -> bool:
    return any(c.state != OK for c in checks)


# -- components ------------------------------------------------------------------------------------

@dataclass
class Workload:
    kind: str  # Deployment | DaemonSet
    name: str
    namespace: str
    component: str
    version: str
    desired: int
    ready: int
    updated: int


def component_checks(workloads: list[Workload], expected: list[str]) -> list[Check]:
    """One row per workload; ``expected`` components that have none are a failure."""
    out = []
    seen = set()
    for w in sorted(workloads, key=lambda w: (w.component, w.name)):
        seen.add(w.component)
        detail = f"{w.kind}/{w.name} {w.ready}/{w.desired} ready, version {w.version or '?'}"
        if w.desired == 0:
            out.append(Check("component", w.component, WARN, detail,
                             f"scaled to zero: `kubectl -n {w.namespace} scale {w.kind.lower()} {w.name} "
                             "--replicas=1`"))
        elif w.ready < w.desired:
            out.append(Check("component", w.component, FAIL, detail,
                             f"`kubectl -n {w.namespace} describe {w.kind.lower()} {w.name}` and its pods' "
                             f"logs (`kubectl -n {w.namespace} logs {w.kind.lower()}/{w.name}`)"))
        elif w.updated < w.desired:
            out.append(Check("component", w.component, WARN, detail + f", {w.updated} updated",
                             "a rollout is in progress: run status again in a minute"))
        else:
            out.append(Check("component", w.component, OK, detail))
    for comp in expected:
        if comp not in seen:
            out.append(Check("component", comp, FAIL, "no workload found",
                             f"is {comp} enabled in the release values? `helm get values` shows them"))
    return out


# -- certificates ----------------------------------------------------------------------------------

@dataclass
class Certificate:
    name: str  # CA | serving
    secret: str
    annotation: str | None  # homeci.dev/not-after
    not_after: dt.datetime | None  # from the certificate itself
    subject: str = ""


def certificate_checks(certs: list[Certificate], now: dt.datetime, renew_before_days: int,
                       namespace: str, release: str, *, renewed_by_chart: bool = True) -> list[Check]:
    """One row per certificate. ``renewed_by_chart``: the umbrella issues the serving certificate
    (``certificates.createServingSecret``), so its CronJob ``<release>-certs`` renews it."""
    out = []
    for c in certs:
        if c.not_after is None:
            out.append(Check("certificate", c.name, FAIL, f"Secret {c.secret} has no readable tls.crt",
                             f"check `kubectl -n {namespace} get secret {c.secret}`; a helm upgrade "
                             "recreates it"))
            continue
        left = c.not_after - now
        days = left.total_seconds() / 86400
        detail = f"{c.subject} expires {c.not_after:%Y-%m-%d %H:%M}Z ({days:.0f} days)"
        if c.annotation:
            try:
                annotated = dt.datetime.strptime(c.annotation, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            except ValueError:
                annotated = None
            if annotated is None or abs((annotated - c.not_after).total_seconds()) > 86400:
                out.append(Check("certificate", c.name, WARN,
                                 detail + f"; annotation homeci.dev/not-after says {c.annotation}",
                                 f"the Secret {c.secret} was edited by hand: a pass of the certificate "
                                 f"program re-reads it ({_run_now(namespace, release)})"))
                continue
        renew = _renew_advice(c, namespace, release, renewed_by_chart)
        if days <= 0:
            state, advice = FAIL, "expired: " + renew
        elif c.name == "serving" and days <= renew_before_days:
            state = WARN
            advice = f"within renewBeforeDays ({renew_before_days}): " + renew
        elif c.name == "CA" and days <= CA_WARN_DAYS:
            state, advice = WARN, renew
        else:
            state, advice = OK, ""
        out.append(Check("certificate", c.name, state, detail, advice))
    return out


def _run_now(namespace: str, release: str) -> str:
    cron = contract.Names(release).certs
    return f"`kubectl -n {namespace} create job --from=cronjob/{cron} {cron}-now`"


def _renew_advice(c: Certificate, namespace: str, release: str, renewed_by_chart: bool) -> str:
    if c.name == "serving" and renewed_by_chart:
        return (f"CronJob {contract.Names(release).certs} reissues it on its next run (same CA; "
                f"certificates.renewal.schedule); now: {_run_now(namespace, release)}")
    if c.name == "serving":
        return (f"certificates.createServingSecret is false: renew Secret {c.secret} where you issue it "
                "(cert-manager, your CA tooling)")
    return ("plan a new CA: `homeci ca init`, install it with global.tls.mode=existingSecret, and "
            "re-trust it on clients and nodes")


# -- volumes ---------------------------------------------------------------------------------------

@dataclass
class Volume:
    claim: str
    size: int  # bytes requested/bound
    used: int | None  # bytes, from the kubelet; None when no pod mounts it or no stats
    # the capacity of the filesystem the kubelet measured; differs from ``size`` when the volume is a
    # folder on a shared disk (local-path, hostPath, the local node's pool): then ``used`` is the disk's
    capacity: int | None = None


def volume_checks(volumes: list[Volume], namespace: str) -> list[Check]:
    out = []
    for v in sorted(volumes, key=lambda v: v.claim):
        if v.used is None:
            out.append(Check("volume", v.claim, OK,
                             f"{_size(v.size)}, usage unknown (no mounted pod reports it)"))
            continue
        shared = v.capacity is not None and v.size > 0 and abs(v.capacity - v.size) > v.size * 0.05
        if shared and v.capacity:
            # The claim's size is not enforced: what fills up is the disk the folder lives on.
            ratio = v.used / v.capacity
            detail = (f"on a shared disk: {_size(v.used)} of {_size(v.capacity)} used ({ratio:.0%}); "
                      f"claim {_size(v.size)} not enforced")
        else:
            ratio = v.used / v.size if v.size else 0.0
            detail = f"{_size(v.used)} of {_size(v.size)} ({ratio:.0%})"
        if ratio >= VOLUME_FAIL:
            out.append(Check("volume", v.claim, FAIL, detail, _grow_advice(v, namespace)))
        elif ratio >= VOLUME_WARN:
            out.append(Check("volume", v.claim, WARN, detail, _grow_advice(v, namespace)))
        else:
            out.append(Check("volume", v.claim, OK, detail))
    return out


def _grow_advice(v: Volume, namespace: str) -> str:
    tip = ("; for the registry, enable registry.garbageCollect (registry.gc) to delete unreferenced layers"
           if "registry" in v.claim else "")
    return (f"grow it (`kubectl -n {namespace} edit pvc {v.claim}` where the storage class allows expansion) "
            f"or free space{tip}")


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def quantity_bytes(q: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9,
             "T": 10**12}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * factor)
    return int(float(q))


# -- builds ----------------------------------------------------------------------------------------

def build_checks(repos: list[dict[str, Any]], ci_url: str) -> list[Check]:
    """One row per active repository with its latest build (Drone's ``/api/user/repos?latest=true``)."""
    out = []
    for r in sorted(repos, key=lambda r: str(r.get("slug"))):
        if not r.get("active"):
            continue
        slug = str(r.get("slug") or f"{r.get('namespace')}/{r.get('name')}")
        b = r.get("build") or {}
        if not b or not b.get("number"):
            out.append(Check("build", slug, OK, "active, no build yet"))
            continue
        when = dt.datetime.fromtimestamp(int(b.get("finished") or b.get("created") or 0), dt.UTC)
        detail = (f"#{b['number']} {b.get('status')} {str(b.get('after', ''))[:12]} on {b.get('target')} "
                  f"{when:%Y-%m-%d %H:%M}Z")
        status = b.get("status")
        if status in ("failure", "error", "killed"):
            out.append(Check("build", slug, WARN, detail,
                             f"see {ci_url}/{slug}/{b['number']} (the failed step's log)"))
        else:
            out.append(Check("build", slug, OK, detail))
    return out


# -- gathering -------------------------------------------------------------------------------------

EXPECTED = ("traefik", "registry", "git", "ci-server", "ci-runner")


def gather(api: Any, namespace: str, release: str, *,
           now: dt.datetime | None = None) -> tuple[list[Check], dict[str, Any]]:
    """Every check for release ``release`` in ``namespace``, plus facts for the header (version, hosts)."""
    from kubernetes import client

    from homeci.backup import stackinfo

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    umbrella = stackinfo.umbrella(core, namespace, release)
    values = umbrella.values
    facts: dict[str, Any] = {"release": release, "namespace": namespace, "chart": umbrella.chart,
                             "version": umbrella.version, "revision": umbrella.revision}
    checks = component_checks(_workloads(apps, namespace, release), [
        c for c in EXPECTED if ((values.get(_section(c)) or {}).get("enabled", True))])
    certs = values.get("certificates") or {}
    renew = int(certs.get("renewBeforeDays") or 30)
    checks += certificate_checks(_certificates(core, namespace, release), now or dt.datetime.now(dt.UTC),
                                 renew, namespace, release,
                                 renewed_by_chart=certs.get("createServingSecret", True) is not False)
    checks += volume_checks(_volumes(api, core, namespace, release), namespace)
    try:
        repos, ci_url = _drone_repos(api, core, namespace, release)
        checks += build_checks(repos, ci_url)
    except HomeciError as exc:
        checks.append(Check("build", "drone", FAIL, f"cannot ask Drone: {exc}",
                            "Drone must be Ready to list builds (see its component row)"))
    return checks, facts


def _section(component: str) -> str:
    return {"git": "gogs", "ci-server": "drone", "ci-runner": "drone"}.get(component, component)


def _workloads(apps: Any, namespace: str, release: str) -> list[Workload]:
    sel = f"app.kubernetes.io/instance={release}"
    out = []
    for d in apps.list_namespaced_deployment(namespace, label_selector=sel).items:
        labels = d.metadata.labels or {}
        out.append(Workload("Deployment", d.metadata.name, namespace,
                            labels.get("app.kubernetes.io/component", "?"),
                            labels.get("app.kubernetes.io/version", ""), int(d.spec.replicas or 0),
                            int(d.status.ready_replicas or 0), int(d.status.updated_replicas or 0)))
    for d in apps.list_daemon_set_for_all_namespaces(label_selector=sel).items:
        labels = d.metadata.labels or {}
        out.append(Workload("DaemonSet", d.metadata.name, d.metadata.namespace,
                            labels.get("app.kubernetes.io/component", "?"),
                            labels.get("app.kubernetes.io/version", ""),
                            int(d.status.desired_number_scheduled or 0), int(d.status.number_ready or 0),
                            int(d.status.updated_number_scheduled or 0)))
    return out


def _certificates(core: Any, namespace: str, release: str) -> list[Certificate]:
    from cryptography import x509
    from kubernetes.client.exceptions import ApiException

    names = contract.Names(release)
    out = []
    for label, secret in (("CA", names.ca_secret), ("serving", names.tls_secret)):
        try:
            s = core.read_namespaced_secret(secret, namespace)
        except ApiException as exc:
            if exc.status == 404:
                continue  # an existing CA under another name, or serving certificates managed elsewhere
            raise
        ann = (s.metadata.annotations or {}).get("homeci.dev/not-after")
        not_after, subject = None, ""
        try:
            cert = x509.load_pem_x509_certificate(base64.b64decode((s.data or {})["tls.crt"]))
            not_after = cert.not_valid_after_utc
            subject = cert.subject.rfc4514_string()
        except (KeyError, ValueError):
            pass
        out.append(Certificate(label, secret, ann, not_after, subject))
    return out


def _volumes(api: Any, core: Any, namespace: str, release: str) -> list[Volume]:
    """PVCs of the release with the bytes the kubelet reports used (stats summary via the node proxy)."""
    claims = core.list_namespaced_persistent_volume_claim(
        namespace, label_selector=f"app.kubernetes.io/instance={release}").items
    used: dict[str, tuple[int, int | None]] = {}
    nodes = {p.spec.node_name for p in core.list_namespaced_pod(namespace).items if p.spec.node_name}
    for node in sorted(nodes):
        try:
            summary = api.call_api(f"/api/v1/nodes/{node}/proxy/stats/summary", "GET", response_type="object",
                                   auth_settings=["BearerToken"], _return_http_data_only=True,
                                   _request_timeout=15)
        except Exception:  # no nodes/proxy permission, or the kubelet does not answer
            continue
        for pod in (summary or {}).get("pods", []):
            for vol in pod.get("volume") or []:
                ref = vol.get("pvcRef") or {}
                if ref.get("namespace") == namespace and "usedBytes" in vol:
                    cap = vol.get("capacityBytes")
                    used[ref["name"]] = (int(vol["usedBytes"]), int(cap) if cap else None)
    out = []
    for c in claims:
        requested = (c.spec.resources.requests or {}).get("storage", "0")
        cap = (c.status.capacity or {}).get("storage") or requested
        measured, fs = used.get(c.metadata.name, (None, None))
        out.append(Volume(c.metadata.name, quantity_bytes(str(cap)), measured, fs))
    return out


def _drone_repos(api: Any, core: Any, namespace: str, release: str) -> tuple[list[dict[str, Any]], str]:
    from homeci import kubeops
    from homeci.backup import stackinfo
    from homeci.flow.web import bearer, expect

    names = contract.Names(release)
    pod = kubeops.ready_pod(api, namespace, stackinfo.selector(release, "ci-server"), "the Drone server")
    secret = core.read_namespaced_secret(names.drone_machine_secret, namespace)
    token = base64.b64decode((secret.data or {})["token"]).decode()
    web = kubeops.PodWeb(api, namespace, pod.metadata.name, 8080)
    path = "/api/user/repos?latest=true"
    resp = expect(web.request("GET", f"http://drone{path}", headers=bearer(token)), (200,),
                  f"Drone GET {path}")
    hosts = [e.value for c in pod.spec.containers for e in c.env or [] if e.name == "DRONE_SERVER_HOST"]
    host = hosts[0] if hosts else ""
    repos: list[dict[str, Any]] = resp.json() or []
    return repos, f"https://{host}" if host else "Drone"
