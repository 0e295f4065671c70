"""The Drone bootstrap hook script (charts/.../drone/files/bootstrap.py) under injected faults, against a
fault-injecting stand-in for Drone + Gogs on 127.0.0.1: Gogs not having the admin yet, Drone not
healthy yet, 5xx and 4xx answers, an unreachable server, a token Gogs rejects after the login, missing env.

The normal flow (form login through the Gogs bridge, sync, a second run that logs in again and reuses
the token, wrong machine token) runs against the real Drone 2.28.2, the Gogs bridge and Gogs 0.14.3 in
tests/realprog/test_drone_program.py. The stand-in behaves as those did there: a sync before any login
answers 500 "Unauthorized".
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.loopback import serve
from homeci_testing.support import ROOT, load_script

SCRIPT = ROOT / "charts" / "homeci-umbrella" / "charts" / "drone" / "files" / "bootstrap.py"
TOKEN = "machine-token-0123456789abcdef"
USER, PASSWORD = "homeci", "s3cret-admin-password"




bootstrap = load_script(SCRIPT, "homeci_drone_bootstrap")


@dataclass
class FaultState:
    """Drone (+ the Gogs it logs into) as seen by the script, with the faults a test injects."""

    gogs_admin_after: int = 0  # login attempts that fail before Gogs "has" the admin
    drone_unhealthy: int = 0  # /healthz answers 503 this many times
    sync_status: list[int] = field(default_factory=list)  # statuses to answer before 200
    login_attempts: int = 0
    gogs_tokens: list[str] = field(default_factory=list)  # tokens Drone created in Gogs
    scm_token: bool = False  # the admin has a Gogs token in Drone
    token_rejected: bool = False  # Gogs rejects the token Drone got (a sync after the login still fails)
    syncs: int = 0
    repos: list[str] = field(default_factory=lambda: ["homeci/app", "homeci/site"])
    requests: list[str] = field(default_factory=list)


class FaultInjectingDrone(BaseHTTPRequestHandler):
    state: FaultState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authed(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def do_GET(self) -> None:
        s = self.state
        s.requests.append(f"GET {self.path}")
        if self.path == "/healthz":
            if s.drone_unhealthy > 0:
                s.drone_unhealthy -= 1
                return self._send(503, b"starting")
            return self._send(200, b"OK")
        if self.path == "/healthcheck":
            return self._send(200, b"OK")
        if self.path == "/api/user":
            if not self._authed():
                return self._send(401, {"message": "Unauthorized"})
            return self._send(200, {"login": USER, "admin": True, "machine": False})
        self._send(404, b"not found")

    def do_POST(self) -> None:
        s = self.state
        s.requests.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path == "/login":
            s.login_attempts += 1
            form = urllib.parse.parse_qs(body)
            ok = form.get("username") == [USER] and form.get("password") == [PASSWORD]
            if not ok or s.login_attempts <= s.gogs_admin_after:
                return self._send(303, b"", {"Location": "/login/error?message=Unauthorized"})
            if "drone" not in s.gogs_tokens:  # the Gogs bridge lets later logins reuse it
                s.gogs_tokens.append("drone")
            s.scm_token = not s.token_rejected
            return self._send(303, b"", {"Location": "/", "Set-Cookie": "_session_=abc123; Path=/; HttpOnly"})
        if self.path == "/api/user/repos":
            if not self._authed():
                return self._send(401, {"message": "Unauthorized"})
            if s.sync_status:
                return self._send(s.sync_status.pop(0), {"message": "scripted failure"})
            if not s.scm_token:  # Drone passes Gogs' 401 on as a 500
                return self._send(500, {"message": "Unauthorized"})
            s.syncs += 1
            return self._send(200, [{"slug": r} for r in s.repos])
        self._send(404, b"not found")


@pytest.fixture
def fake() -> Iterator[tuple[FaultState, str]]:
    state = FaultState()
    handler = type("BoundHandler", (FaultInjectingDrone,), {"state": state})
    with serve(handler) as port:
        yield state, f"http://127.0.0.1:{port}"


def config(url: str, **over: Any) -> Any:
    base = dict(
        drone_url=url, gogs_url=url, username=USER, password=PASSWORD, token=TOKEN, timeout=5.0, interval=0.01
    )
    base.update(over)
    return bootstrap.Config(**base)


def test_waits_for_gogs_to_have_the_admin(fake: tuple[FaultState, str]) -> None:
    state, url = fake
    state.gogs_admin_after = 3
    state.drone_unhealthy = 2
    bootstrap.run(config(url))
    assert state.login_attempts == 4 and state.syncs == 1


def test_every_run_logs_in_then_syncs(fake: tuple[FaultState, str]) -> None:
    """No sync-first probing: each run logs in (the Gogs bridge makes that repeatable), then syncs."""
    state, url = fake
    assert bootstrap.run(config(url)) == ["homeci/app", "homeci/site"]
    bootstrap.run(config(url))
    assert (state.login_attempts, state.syncs, state.gogs_tokens) == (2, 2, ["drone"])
    logins = [i for i, r in enumerate(state.requests) if r == "POST /login"]
    syncs = [i for i, r in enumerate(state.requests) if r == "POST /api/user/repos"]
    assert all(login < sync for login, sync in zip(logins, syncs, strict=True)), state.requests


def test_retries_a_transient_sync_failure(fake: tuple[FaultState, str]) -> None:
    state, url = fake
    state.sync_status = [502]
    assert bootstrap.run(config(url))
    assert state.syncs == 1


def test_login_never_accepted_is_bounded(fake: tuple[FaultState, str]) -> None:
    state, url = fake
    with pytest.raises(bootstrap.BootstrapError,
                       match=r"form login: still failing after \d+ attempts.*gogs-bridge container"):
        bootstrap.run(config(url, password="wrong", timeout=0.3, interval=0.05))
    assert 2 <= state.login_attempts <= 10
    assert state.syncs == 0


def test_sync_client_error_is_fatal(fake: tuple[FaultState, str]) -> None:
    state, url = fake
    state.sync_status = [400]
    with pytest.raises(bootstrap.BootstrapError, match="HTTP 400"):
        bootstrap.run(config(url))


def test_drone_unreachable_is_bounded() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(bootstrap.BootstrapError, match="Drone health: still failing"):
        bootstrap.run(config(f"http://127.0.0.1:{port}", timeout=0.2, interval=0.05))


def test_main_reports_one_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DRONE_URL", "GOGS_URL", "ADMIN_USERNAME", "ADMIN_PASSWORD", "DRONE_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert bootstrap.main() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bootstrap: error: missing environment: DRONE_URL")


def test_token_rejected_after_login_names_where_to_look(fake: tuple[FaultState, str]) -> None:
    """The login is accepted but Gogs rejects the token Drone got: fatal at once, naming the bridge's log."""
    state, url = fake
    state.token_rejected = True
    with pytest.raises(bootstrap.BootstrapError, match=r"Gogs rejects the token .*gogs-bridge container"):
        bootstrap.run(config(url, timeout=5, interval=0.05))
    assert state.login_attempts == 1 and state.syncs == 0


def test_secrets_are_read_from_files_and_a_set_variable_wins(tmp_path: Path) -> None:
    """The hook Job mounts ADMIN_USERNAME, ADMIN_PASSWORD and DRONE_TOKEN as files in HOMECI_SECRETS_DIR
    (no secret in the pod's environment); a variable that is set takes precedence."""
    for name, value in (("ADMIN_USERNAME", USER), ("ADMIN_PASSWORD", PASSWORD), ("DRONE_TOKEN", TOKEN)):
        (tmp_path / name).write_text(value)
    env = {"DRONE_URL": "http://drone", "GOGS_URL": "http://gogs", "HOMECI_SECRETS_DIR": str(tmp_path)}
    cfg = bootstrap.Config.from_env(env)
    assert (cfg.username, cfg.password, cfg.token) == (USER, PASSWORD, TOKEN)
    assert bootstrap.Config.from_env({**env, "DRONE_TOKEN": "from-env"}).token == "from-env"
    (tmp_path / "DRONE_TOKEN").unlink()
    missing = f"missing environment: DRONE_TOKEN .*files in {tmp_path}"
    with pytest.raises(bootstrap.BootstrapError, match=missing):
        bootstrap.Config.from_env(env)
