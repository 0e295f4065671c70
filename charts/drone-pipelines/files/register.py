"""Register homeci pipeline templates and organisation secrets in Drone (stdlib only).

Run by the drone-pipelines hook Job (post-install, post-upgrade) and imported as-is by the unit tests.

For every owner (Drone namespace = Gogs user or organisation):
  * each template file in HOMECI_TEMPLATES_DIR: GET /api/templates/{ns}/{name}; missing -> POST
    /api/templates/{ns}; different -> PATCH /api/templates/{ns}/{name}; identical -> nothing;
  * each organisation secret of HOMECI_ORG_SECRETS: GET /api/secrets/{ns}/{name}; missing -> POST
    /api/secrets/{ns}; present -> PATCH (Drone never returns secret values, so it cannot be compared).

Every call is retried with exponential backoff on connection errors, timeouts and 5xx answers, up to
HOMECI_ATTEMPTS attempts; 401/403 fail at once (wrong token or not an admin). The last log line says
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
"""

from __future__ import annotations

import json
import os
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
    token_source: str = "HOMECI_DRONE_TOKEN"
    attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 10.0


@dataclass
class Result:
    kind: str  # "template" | "secret"
    namespace: str
    name: str
    action: str  # "created" | "updated" | "unchanged"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.action}"


@dataclass
class DroneClient:
    """A tiny Drone API client with bounded retries."""

    server: str
    token: str
    token_source: str = "HOMECI_DRONE_TOKEN"
    attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                missing_ok: bool = False) -> tuple[int, Any]:
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
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return resp.status, _decode(resp.read())
            except urllib.error.HTTPError as err:
                text = err.read().decode(errors="replace").strip()
                if err.code in (401, 403):
                    raise AuthError(
                        f"Drone at {self.server} answered {err.code} to {method} {path}: the token from "
                        f"{self.token_source} is wrong or not an admin's; fix that Secret (the umbrella's "
                        "drone machine token) and run helm upgrade again"
                    ) from None
                if err.code == 404 and missing_ok:
                    return 404, None
                if err.code < 500:
                    raise RegistrationError(
                        f"Drone at {self.server} answered {err.code} to {method} {path}: {text[:300]}"
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
            f"Drone at {self.server} not usable after {self.attempts} attempts ({method} {path}: {last}); "
            "check that the Drone server is running and drone.server points to it"
        )


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
    return Config(
        server=need("HOMECI_DRONE_SERVER"),
        token=need("HOMECI_DRONE_TOKEN"),
        owners=owners,
        templates=templates,
        secrets=secrets,
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
        client = client_for(config, **client_overrides)
        client.log(f"registering {len(config.templates)} template(s) and {len(config.secrets)} secret(s) "
                   f"for {', '.join(config.owners)} at {config.server}")
        results = run(config, client)
    except RegistrationError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    changed = sum(r.action != "unchanged" for r in results)
    print(f"done: {len(results)} object(s), {changed} created or updated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
