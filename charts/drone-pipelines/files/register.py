"""Label the target namespaces, then register homeci pipeline templates and organisation secrets in Drone
(stdlib only).

Run by the drone-pipelines hook Job (post-install, post-upgrade) and imported as-is by the unit tests.

For every target namespace of HOMECI_NAMESPACES (the Kubernetes API, with the Job's ServiceAccount token,
which may get and patch exactly those namespaces): GET /api/v1/namespaces/{ns}; labels or annotations
that differ -> one merge PATCH; all equal -> nothing (so a rerun changes nothing).

For every owner (Drone namespace = Gogs user or organisation):
  * each template file in HOMECI_TEMPLATES_DIR: GET /api/templates/{ns}/{name}; missing -> POST
    /api/templates/{ns}; different -> PATCH /api/templates/{ns}/{name}; identical -> nothing;
  * each organisation secret of HOMECI_ORG_SECRETS: GET /api/secrets/{ns}/{name}; missing -> POST
    /api/secrets/{ns}; present -> PATCH (Drone never returns secret values, so it cannot be compared).

Every call is retried with exponential backoff on connection errors, timeouts and 5xx answers, up to
HOMECI_ATTEMPTS attempts; 401/403 fail at once (wrong token, not an admin, or a namespace the Job may not
change). The last log line says
what failed and what to do; the exit code is non-zero so the Job, and with it the helm hook, fails.

Environment:
  HOMECI_DRONE_SERVER       Drone base URL, e.g. http://homeci-drone.homeci.svc:80
  HOMECI_DRONE_TOKEN        admin machine token
  HOMECI_DRONE_TOKEN_SOURCE where the token came from (only used in messages)
  HOMECI_OWNERS             comma-separated Drone namespaces
  HOMECI_TEMPLATES_DIR      folder of *.yaml / *.yml templates (file name = template name)
  HOMECI_ORG_SECRETS        JSON {"<secret name>": "<env var holding the value>"}
  HOMECI_ATTEMPTS, HOMECI_BACKOFF_SECONDS, HOMECI_MAX_BACKOFF_SECONDS, HOMECI_REQUEST_TIMEOUT_SECONDS
  HOMECI_SECRETS_DIR        a setting that is not in the environment is read from the file of that name
                            here (the Job mounts the token and registry credentials as files, so no
                            secret is in the pod's environment)
  HOMECI_NAMESPACES         JSON {"<namespace>": {"labels": {k: v}, "annotations": {k: v or null}}};
                            null removes an annotation. Empty: no namespace is touched.
  HOMECI_KUBE_SERVER        Kubernetes API URL; default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
  HOMECI_KUBE_TOKEN_FILE, HOMECI_KUBE_CA_FILE   default: the pod's ServiceAccount token and CA files
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATE_SUFFIXES = (".yaml", ".yml")
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"

# {"labels": {key: value}, "annotations": {key: value or None}} of one namespace.
NamespaceMeta = dict[str, dict[str, str | None]]


class RegistrationError(Exception):
    """A failure to report as the Job's last log line (exit code 1)."""


class AuthError(RegistrationError):
    """Drone rejected the token: retrying cannot help."""


@dataclass
class Config:
    server: str
    token: str
    owners: list[str]
    templates: dict[str, str]
    secrets: dict[str, str]
    namespaces: dict[str, NamespaceMeta] = field(default_factory=dict)
    token_source: str = "HOMECI_DRONE_TOKEN"
    attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 10.0


@dataclass
class Result:
    kind: str  # "template" | "secret" | "namespace"
    namespace: str
    name: str
    action: str  # "created" | "updated" | "unchanged"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.action}"


@dataclass
class HttpClient:
    """A tiny JSON API client with bounded retries; subclasses say how to authenticate and what to advise."""

    server: str
    token: str
    attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))
    context: ssl.SSLContext | None = None

    def describe(self) -> str:
        """How messages name the server."""
        return self.server

    def auth_advice(self) -> str:
        """What to do after a 401/403."""
        return "check the credentials"

    def unusable_advice(self) -> str:
        """What to do when the server never answered."""
        return "check that the server is running"

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                missing_ok: bool = False, content_type: str = "application/json") -> tuple[int, Any]:
        """(status, decoded JSON or None). 404 is returned when ``missing_ok``; any other 4xx raises."""
        url = self.server.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        delay = self.backoff
        last = ""
        for attempt in range(1, self.attempts + 1):
            req = urllib.request.Request(url, data=data, method=method)
            req.add_header("Authorization", f"Bearer {self.token}")
            req.add_header("Accept", "application/json")
            if data is not None:
                req.add_header("Content-Type", content_type)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                    return resp.status, _decode(resp.read())
            except urllib.error.HTTPError as err:
                text = err.read().decode(errors="replace").strip()
                if err.code in (401, 403):
                    raise AuthError(
                        f"{self.describe()} answered {err.code} to {method} {path}: {self.auth_advice()}"
                    ) from None
                if err.code == 404 and missing_ok:
                    return 404, None
                if err.code < 500:
                    raise RegistrationError(
                        f"{self.describe()} answered {err.code} to {method} {path}: {text[:300]}"
                    ) from None
                last = f"HTTP {err.code} {text[:200]}"
            except (urllib.error.URLError, OSError) as err:
                reason = err.reason if isinstance(err, urllib.error.URLError) else err
                last = f"{type(reason).__name__}: {reason}"
            if attempt < self.attempts:
                self.log(f"{method} {url}: {last}; retry {attempt}/{self.attempts - 1} in {delay:g}s")
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise RegistrationError(
            f"{self.describe()} not usable after {self.attempts} attempts ({method} {path}: {last}); "
            f"{self.unusable_advice()}"
        )


@dataclass
class DroneClient(HttpClient):
    """Drone's API, with the admin machine token."""

    token_source: str = "HOMECI_DRONE_TOKEN"

    def describe(self) -> str:
        return f"Drone at {self.server}"

    def auth_advice(self) -> str:
        return (f"the token from {self.token_source} is wrong or not an admin's; fix that Secret (the "
                "umbrella's drone machine token) and run helm upgrade again")

    def unusable_advice(self) -> str:
        return "check that the Drone server is running and drone.server points to it"


@dataclass
class KubeClient(HttpClient):
    """The Kubernetes API, with the Job's ServiceAccount token (get/patch of the target namespaces only)."""

    def describe(self) -> str:
        return f"the Kubernetes API at {self.server}"

    def auth_advice(self) -> str:
        return ("the Job's ServiceAccount may get and patch only the target namespaces (ClusterRole "
                "<release>-namespace-labels of drone-pipelines); run helm upgrade again so the chart "
                "updates that role, or label the namespace yourself")

    def unusable_advice(self) -> str:
        return "check the API server and the Job's network policy"


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _path(*parts: str) -> str:
    return "/api/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)


def sync_template(client: DroneClient, namespace: str, name: str, data: str) -> Result:
    status, current = client.request("GET", _path("templates", namespace, name), missing_ok=True)
    if status == 404 or not isinstance(current, dict):
        client.request("POST", _path("templates", namespace), {"name": name, "data": data})
        return Result("template", namespace, name, "created")
    if current.get("data") == data:
        return Result("template", namespace, name, "unchanged")
    client.request("PATCH", _path("templates", namespace, name), {"data": data})
    return Result("template", namespace, name, "updated")


def sync_secret(client: DroneClient, namespace: str, name: str, data: str) -> Result:
    status, current = client.request("GET", _path("secrets", namespace, name), missing_ok=True)
    if status == 404 or not isinstance(current, dict):
        body = {"name": name, "data": data, "pull_request": False, "pull_request_push": False}
        client.request("POST", _path("secrets", namespace), body)
        return Result("secret", namespace, name, "created")
    client.request("PATCH", _path("secrets", namespace, name), {"data": data})
    return Result("secret", namespace, name, "updated")


def label_namespace(client: HttpClient, namespace: str, meta: NamespaceMeta) -> Result:
    """Bring the namespace's labels and annotations to ``meta`` with at most one merge PATCH."""
    path = "/api/v1/namespaces/" + urllib.parse.quote(namespace, safe="")
    status, current = client.request("GET", path, missing_ok=True)
    if status == 404 or not isinstance(current, dict):
        raise RegistrationError(f"namespace {namespace} does not exist: create it (targets[].namespace of "
                                "drone-pipelines must exist before the chart is installed)")
    have = current.get("metadata") or {}
    patch: dict[str, dict[str, str | None]] = {}
    for section in ("labels", "annotations"):
        present = have.get(section) or {}
        wanted = meta.get(section) or {}
        changes = {k: v for k, v in wanted.items() if present.get(k) != v and (v is not None or k in present)}
        if changes:
            patch[section] = changes
    summary = ",".join(f"{k.rsplit('/', 1)[-1]}={v}" for k, v in sorted((meta.get("labels") or {}).items()))
    if not patch:
        return Result("namespace", namespace, summary, "unchanged")
    client.request("PATCH", path, {"metadata": patch}, content_type=MERGE_PATCH)
    return Result("namespace", namespace, summary, "updated")


def kube_client(environ: Mapping[str, str], **overrides: Any) -> KubeClient:
    """The in-cluster client (or HOMECI_KUBE_SERVER with its token and CA files)."""
    server = environ.get("HOMECI_KUBE_SERVER", "").strip()
    if not server:
        host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
        port = environ.get("KUBERNETES_SERVICE_PORT", "").strip() or "443"
        if not host:
            raise RegistrationError("KUBERNETES_SERVICE_HOST is not set: the Job must run in the cluster "
                                    "(or set HOMECI_KUBE_SERVER)")
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    token_file = Path(environ.get("HOMECI_KUBE_TOKEN_FILE", "") or SERVICE_ACCOUNT_DIR / "token")
    ca_file = Path(environ.get("HOMECI_KUBE_CA_FILE", "") or SERVICE_ACCOUNT_DIR / "ca.crt")
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise RegistrationError(f"cannot read the ServiceAccount token {token_file} ({err.strerror}): the "
                                "Job's pod needs automountServiceAccountToken") from None
    context = None
    if server.startswith("https://"):
        try:
            context = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as err:
            raise RegistrationError(f"cannot read the cluster CA {ca_file} ({err})") from None
    return KubeClient(server=server, token=token, context=context, **overrides)


def run_namespaces(config: Config, client: HttpClient) -> list[Result]:
    results: list[Result] = []
    for namespace, meta in sorted(config.namespaces.items()):
        results.append(label_namespace(client, namespace, meta))
        client.log(str(results[-1]))
    return results


def run(config: Config, client: DroneClient) -> list[Result]:
    results: list[Result] = []
    for owner in config.owners:
        for name, text in sorted(config.templates.items()):
            results.append(sync_template(client, owner, name, text))
            client.log(str(results[-1]))
        for name, value in sorted(config.secrets.items()):
            results.append(sync_secret(client, owner, name, value))
            client.log(str(results[-1]))
    return results


def load_config(environ: Mapping[str, str]) -> Config:
    secrets_dir = environ.get("HOMECI_SECRETS_DIR", "")

    def need(key: str) -> str:
        value = environ.get(key, "").strip()
        if not value and secrets_dir and (Path(secrets_dir) / key).is_file():
            value = (Path(secrets_dir) / key).read_text(encoding="utf-8").strip()
        if not value:
            where = f" (or file {Path(secrets_dir) / key})" if secrets_dir else ""
            raise RegistrationError(f"environment variable {key}{where} is empty: the chart sets it; "
                                    "check the Job")
        return value

    def number(key: str, default: float) -> float:
        raw = environ.get(key, "").strip()
        try:
            return float(raw) if raw else default
        except ValueError:
            raise RegistrationError(f"{key}={raw!r} is not a number") from None

    folder = Path(need("HOMECI_TEMPLATES_DIR"))
    if not folder.is_dir():
        raise RegistrationError(f"HOMECI_TEMPLATES_DIR {folder} is not a folder")
    # ConfigMap volumes hold ..data symlinks and hidden folders: take only visible regular template files.
    templates = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(folder.iterdir())
        if p.suffix in TEMPLATE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    }
    if not templates:
        raise RegistrationError(f"no *.yaml templates in {folder}")
    try:
        secret_env = json.loads(environ.get("HOMECI_ORG_SECRETS", "") or "{}")
    except ValueError:
        raise RegistrationError("HOMECI_ORG_SECRETS is not JSON ({\"secret name\": \"ENV_VAR\"})") from None
    secrets = {}
    for name, env in dict(secret_env).items():
        secrets[str(name)] = need(str(env))
    owners = [o.strip() for o in need("HOMECI_OWNERS").split(",") if o.strip()]
    try:
        namespaces = json.loads(environ.get("HOMECI_NAMESPACES", "") or "{}")
    except ValueError:
        raise RegistrationError("HOMECI_NAMESPACES is not JSON "
                                "({\"namespace\": {\"labels\": {...}, \"annotations\": {...}}})") from None
    if not isinstance(namespaces, dict) or not all(isinstance(m, dict) for m in namespaces.values()):
        raise RegistrationError("HOMECI_NAMESPACES must map each namespace to {\"labels\", \"annotations\"}")
    return Config(
        server=need("HOMECI_DRONE_SERVER"),
        token=need("HOMECI_DRONE_TOKEN"),
        owners=owners,
        templates=templates,
        secrets=secrets,
        namespaces={str(k): dict(v) for k, v in namespaces.items()},
        token_source=environ.get("HOMECI_DRONE_TOKEN_SOURCE", "") or "HOMECI_DRONE_TOKEN",
        attempts=max(1, int(number("HOMECI_ATTEMPTS", 8))),
        backoff=number("HOMECI_BACKOFF_SECONDS", 2.0),
        max_backoff=number("HOMECI_MAX_BACKOFF_SECONDS", 30.0),
        timeout=number("HOMECI_REQUEST_TIMEOUT_SECONDS", 10.0),
    )


def client_for(config: Config, **overrides: Any) -> DroneClient:
    return DroneClient(server=config.server, token=config.token, token_source=config.token_source,
                       attempts=config.attempts, backoff=config.backoff, max_backoff=config.max_backoff,
                       timeout=config.timeout, **overrides)


def main(environ: Mapping[str, str] | None = None, **client_overrides: Any) -> int:
    env = os.environ if environ is None else environ
    try:
        config = load_config(env)
        results: list[Result] = []
        if config.namespaces:
            kube = kube_client(env, attempts=config.attempts, backoff=config.backoff,
                               max_backoff=config.max_backoff, timeout=config.timeout, **client_overrides)
            kube.log(f"labelling {len(config.namespaces)} target namespace(s) at {kube.server}")
            results += run_namespaces(config, kube)
        client = client_for(config, **client_overrides)
        client.log(f"registering {len(config.templates)} template(s) and {len(config.secrets)} secret(s) "
                   f"for {', '.join(config.owners)} at {config.server}")
        results += run(config, client)
    except RegistrationError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    changed = sum(r.action != "unchanged" for r in results)
    print(f"done: {len(results)} object(s), {changed} created or updated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
