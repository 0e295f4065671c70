#!/usr/bin/env python3
"""homeci Drone bootstrap (Helm post-install/post-upgrade hook).

Drone creates the admin from DRONE_USER_CREATE, but that user has no Gogs token until it logs in
through the form: Drone then gets a Gogs token for it (through the Gogs bridge in Drone's pod, which
lets every later login reuse that token). This script performs that login and then a repository sync,
so repositories in Gogs show up in Drone without anyone clicking anything.

Idempotent: every run logs in (reusing the admin's Gogs token) and syncs.
Loud: every failure ends with one line `bootstrap: error: ...` and exit status 1; waiting and
retrying are bounded by BOOTSTRAP_TIMEOUT seconds.

Environment: DRONE_URL, GOGS_URL, ADMIN_USERNAME, ADMIN_PASSWORD, DRONE_TOKEN (the admin's API
token from the machine Secret), BOOTSTRAP_TIMEOUT (default 480), BOOTSTRAP_INTERVAL (default 5).
The three secrets may instead be files named like them in HOMECI_SECRETS_DIR: the hook Job mounts its
Secrets there, so no secret is in the pod's environment (a variable that is set wins).
Only the Python standard library is used.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
SESSION_COOKIE = "_session_"


class BootstrapError(Exception):
    """Fatal: retrying will not help (wrong token, not an admin, unexpected answer)."""


class RetryableError(Exception):
    """Transient: the service is not up yet, or Gogs does not know the admin yet."""


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as exc:
            raise BootstrapError(f"expected JSON, got {self.body[:120]!r}") from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Http:
    timeout: float = 10.0
    _opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(_NoRedirect())
    )

    def request(self, method: str, url: str, *, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetryableError(f"{method} {url}: {reason}") from exc


@dataclass
class Config:
    drone_url: str
    gogs_url: str
    username: str
    password: str
    token: str
    timeout: float = 480.0
    interval: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Config:
        keys = ("DRONE_URL", "GOGS_URL", *SECRETS)
        values = {k: setting(env, k) for k in keys}
        missing = [k for k in keys if not values[k]]
        if missing:
            where = f" or files in {env['HOMECI_SECRETS_DIR']}" if env.get("HOMECI_SECRETS_DIR") else ""
            raise BootstrapError(f"missing environment: {', '.join(missing)} (set by the hook Job{where})")
        return cls(
            drone_url=values["DRONE_URL"].rstrip("/"),
            gogs_url=values["GOGS_URL"].rstrip("/"),
            username=values["ADMIN_USERNAME"],
            password=values["ADMIN_PASSWORD"],
            token=values["DRONE_TOKEN"],
            timeout=float(env.get("BOOTSTRAP_TIMEOUT", "480")),
            interval=float(env.get("BOOTSTRAP_INTERVAL", "5")),
        )


SECRETS = ("ADMIN_USERNAME", "ADMIN_PASSWORD", "DRONE_TOKEN")


def setting(env: dict[str, str], key: str) -> str:
    """``env[key]``; for a secret that is not set, the file ``$HOMECI_SECRETS_DIR/<key>`` (or "")."""
    value = env.get(key, "")
    folder = env.get("HOMECI_SECRETS_DIR", "")
    if not value and folder and key in SECRETS:
        try:
            value = (Path(folder) / key).read_text()
        except FileNotFoundError:
            value = ""
    return value


def log(msg: str) -> None:
    print(f"bootstrap: {msg}", flush=True)


def retry(what: str, fn: Callable[[], T], deadline: float, interval: float,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call fn until it returns; RetryableError is retried until the deadline, anything else is fatal."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except RetryableError as exc:
            if clock() + interval > deadline:
                raise BootstrapError(f"{what}: still failing after {attempt} attempts: {exc}") from exc
            log(f"{what}: not yet ({exc}); retrying in {interval:g}s")
            sleep(interval)


def wait_healthy(http: Http, url: str) -> None:
    resp = http.request("GET", url)
    if resp.status != 200:
        raise RetryableError(f"GET {url} answered HTTP {resp.status}")


def check_token(http: Http, cfg: Config) -> None:
    """The machine token must belong to the admin: Drone created it from DRONE_USER_CREATE."""
    url = f"{cfg.drone_url}/api/user"
    resp = http.request("GET", url, headers={"Authorization": f"Bearer {cfg.token}"})
    if resp.status in (401, 403):
        raise BootstrapError(
            f"Drone rejects the machine token (HTTP {resp.status} from {url}): the token in the machine "
            "Secret differs from DRONE_USER_CREATE; restart the Drone server pod after changing the Secret"
        )
    if resp.status >= 500:
        raise RetryableError(f"GET {url} answered HTTP {resp.status}")
    if resp.status != 200:
        raise BootstrapError(f"GET {url} answered HTTP {resp.status}: {resp.body[:200]!r}")
    user = resp.json()
    if user.get("login") != cfg.username:
        raise BootstrapError(
            f"the machine token belongs to Drone user {user.get('login')!r}, not the admin {cfg.username!r}"
        )
    if not user.get("admin"):
        raise BootstrapError(f"Drone user {cfg.username!r} is not an admin (check DRONE_USER_CREATE)")


def form_login(http: Http, cfg: Config) -> None:
    """POST /login with the Gogs credentials; success sets Drone's session cookie."""
    url = f"{cfg.drone_url}/login"
    body = urllib.parse.urlencode({"username": cfg.username, "password": cfg.password}).encode()
    resp = http.request("POST", url, data=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookies = resp.headers.get_all("Set-Cookie") or []
    if any(c.startswith(f"{SESSION_COOKIE}=") and not c.startswith(f"{SESSION_COOKIE}=;") for c in cookies):
        return
    where = resp.headers.get("Location") or resp.body[:200].decode("utf-8", "replace").strip()
    if resp.status in (404, 405):
        raise BootstrapError(f"POST {url} answered HTTP {resp.status}: is DRONE_URL a Drone server?")
    # Typically Gogs has not created the admin yet (the Gogs pod does that after migrating), or Gogs
    # is still starting: retried until the deadline, then reported with Drone's last answer (the
    # gogs-bridge container of the Drone pod logs the cause of each refused login).
    raise RetryableError(f"login not accepted (HTTP {resp.status}, {where or 'no detail'}); the "
                         "gogs-bridge container of the Drone pod logs why")


def sync_repos(http: Http, cfg: Config) -> list[str] | None:
    """Drone's repository sync for the admin; None when Drone holds no working Gogs token for it
    (Drone passes Gogs' 401 on as HTTP 500 "Unauthorized")."""
    url = f"{cfg.drone_url}/api/user/repos"
    resp = http.request("POST", url, headers={"Authorization": f"Bearer {cfg.token}"})
    if resp.status == 500 and b"Unauthorized" in resp.body:
        return None
    if resp.status >= 500:
        raise RetryableError(f"POST {url} answered HTTP {resp.status}: {resp.body[:200]!r}")
    if resp.status != 200:
        raise BootstrapError(f"POST {url} answered HTTP {resp.status}: {resp.body[:200]!r}")
    repos = resp.json()
    if not isinstance(repos, list):
        raise BootstrapError(f"POST {url}: expected a list of repositories, got {type(repos).__name__}")
    return [str(r.get("slug", "?")) for r in repos if isinstance(r, dict)]


def run(cfg: Config, http: Http | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep) -> list[str]:
    http = http or Http()
    deadline = clock() + cfg.timeout

    def again(what: str, fn: Callable[[], T]) -> T:
        return retry(what, fn, deadline, cfg.interval, clock, sleep)

    again("Drone health", lambda: wait_healthy(http, f"{cfg.drone_url}/healthz"))
    again("Gogs health", lambda: wait_healthy(http, f"{cfg.gogs_url}/healthcheck"))
    again("machine token", lambda: check_token(http, cfg))
    again("form login", lambda: form_login(http, cfg))
    log(f"logged in as {cfg.username!r}: Drone holds a Gogs token for the admin")
    repos = again("repository sync", lambda: sync_repos(http, cfg))
    if repos is None:
        raise BootstrapError(f"Gogs rejects the token Drone got at login for {cfg.username!r}: see the "
                             "gogs-bridge container's log in the Drone pod")
    log(f"synced {len(repos)} repositories" + (f": {', '.join(repos)}" if repos else ""))
    return repos


def main(argv: list[str] | None = None) -> int:
    try:
        run(Config.from_env(dict(os.environ)))
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
