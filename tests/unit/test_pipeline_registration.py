"""The registration script of charts/drone-pipelines (files/register.py, the file the hook Job runs)
under injected faults, against a fault-injecting stand-in for Drone's API on 127.0.0.1: 5xx then
success, 5xx until the attempts run out, unreachable, a 404 to a write, missing configuration.

Create, update, unchanged and a wrong token run against the real Drone 2.28.2 in
tests/realprog/test_drone_program.py (the rendered Job, its env and mounts included).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from homeci_testing import drone
from homeci_testing.loopback import serve

TOKEN = "machine-token-for-tests"
TEMPLATE = "homeci-build-deploy.yaml"


@pytest.fixture(scope="module")
def reg() -> ModuleType:
    return drone.load_registration()


@dataclass
class FaultInjectingDrone:
    """In-memory Drone templates and organisation secrets API that fails on demand (``fail_next``)."""

    token: str = TOKEN
    templates: dict[tuple[str, str], str] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fail_next: int = 0  # answer this many requests with 503 first
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, path: str, auth: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {"message": "database is locked"}
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "templates"] and len(parts) in (3, 4):
            return self._templates(method, parts[2:], body)
        if parts[:2] == ["api", "secrets"] and len(parts) in (3, 4):
            return self._secrets(method, parts[2:], body)
        return 404, {"message": "Not Found"}

    def _templates(self, method: str, parts: list[str], body: dict[str, Any] | None) -> tuple[int, Any]:
        ns = parts[0]
        if len(parts) == 1 and method == "POST" and body:
            self.templates[(ns, body["name"])] = body["data"]
            return 200, {"name": body["name"], "namespace": ns, "data": body["data"]}
        key = (ns, parts[1]) if len(parts) == 2 else None
        if key is None or key not in self.templates:
            return 404, {"message": "sql: no rows in result set"}
        if method == "GET":
            return 200, {"id": 1, "name": key[1], "namespace": ns, "data": self.templates[key]}
        if method in ("PATCH", "PUT") and body and "data" in body:
            self.templates[key] = body["data"]
            return 200, {"name": key[1], "namespace": ns, "data": body["data"]}
        return 405, {"message": "Method Not Allowed"}

    def _secrets(self, method: str, parts: list[str], body: dict[str, Any] | None) -> tuple[int, Any]:
        ns = parts[0]
        if len(parts) == 1 and method == "POST" and body:
            self.secrets[(ns, body["name"])] = dict(body)
            return 200, {"name": body["name"], "namespace": ns}
        key = (ns, parts[1]) if len(parts) == 2 else None
        if key is None or key not in self.secrets:
            return 404, {"message": "sql: no rows in result set"}
        if method == "GET":  # Drone never returns the secret value
            return 200, {"name": key[1], "namespace": ns, "pull_request": self.secrets[key]["pull_request"]}
        if method == "PATCH" and body:
            self.secrets[key].update(body)
            return 200, {"name": key[1], "namespace": ns}
        return 405, {"message": "Method Not Allowed"}

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]


Faulty = tuple[FaultInjectingDrone, str]  # the stand-in and its base URL


@pytest.fixture
def fake() -> Iterator[Faulty]:
    state = FaultInjectingDrone()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = state.handle(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve(Handler) as port:
        yield state, f"http://127.0.0.1:{port}"


@pytest.fixture
def templates_dir(tmp_path: Path) -> Path:
    """A folder laid out like a mounted ConfigMap (..data symlinks, hidden timestamped folder)."""
    folder = tmp_path / "templates"
    stamp = folder / "..2026_11_27_12_00_00.000000001"
    stamp.mkdir(parents=True)
    text = drone.template_files()[TEMPLATE].read_text()
    (stamp / TEMPLATE).write_text(text)
    (folder / "..data").symlink_to(stamp.name)
    (folder / TEMPLATE).symlink_to(f"..data/{TEMPLATE}")
    return folder


def environ(server: str, templates_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "HOMECI_DRONE_SERVER": server,
        "HOMECI_DRONE_TOKEN": TOKEN,
        "HOMECI_DRONE_TOKEN_SOURCE": "Secret homeci/homeci-drone-machine key token",
        "HOMECI_OWNERS": "homeci,team",
        "HOMECI_TEMPLATES_DIR": str(templates_dir),
        "HOMECI_ORG_SECRETS": json.dumps(
            {"homeci_registry_username": "REGISTRY_USERNAME", "homeci_registry_password": "REGISTRY_PASSWORD"}
        ),
        "REGISTRY_USERNAME": "pusher",
        "REGISTRY_PASSWORD": 's3cret:with/odd"chars',
        "HOMECI_ATTEMPTS": "4",
        "HOMECI_BACKOFF_SECONDS": "0.5",
        "HOMECI_MAX_BACKOFF_SECONDS": "1",
        "HOMECI_REQUEST_TIMEOUT_SECONDS": "5",
    }
    env.update(extra)
    return env


@dataclass
class Recorder:
    sleeps: list[float] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def log(self, line: str) -> None:
        self.lines.append(line)


def run_main(reg: ModuleType, env: dict[str, str]) -> Recorder:
    rec = Recorder()
    rec.lines.append(f"exit={reg.main(env, sleep=rec.sleep, log=rec.log)}")
    return rec


def test_5xx_then_success(reg: ModuleType, fake: Faulty, templates_dir: Path) -> None:
    state, url = fake
    state.fail_next = 2
    rec = run_main(reg, environ(url, templates_dir, HOMECI_OWNERS="homeci"))
    assert rec.lines[-1] == "exit=0"
    assert rec.sleeps == [0.5, 1.0], "exponential backoff, capped at HOMECI_MAX_BACKOFF_SECONDS"
    assert sum("HTTP 503" in ln and "retry" in ln for ln in rec.lines) == 2, rec.lines
    assert ("homeci", TEMPLATE) in state.templates


def test_5xx_until_attempts_run_out(
    reg: ModuleType, fake: Faulty, templates_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, url = fake
    state.fail_next = 100
    rec = run_main(reg, environ(url, templates_dir, HOMECI_ATTEMPTS="3"))
    err = capsys.readouterr().err
    assert rec.lines[-1] == "exit=1"
    assert len(state.requests) == 3 and len(rec.sleeps) == 2
    assert "after 3 attempts" in err and "HTTP 503" in err, err


def test_unreachable(reg: ModuleType, templates_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"  # nothing listens there any more
    rec = run_main(reg, environ(url, templates_dir, HOMECI_ATTEMPTS="3"))
    err = capsys.readouterr().err
    assert rec.lines[-1] == "exit=1"
    assert rec.sleeps == [0.5, 1.0]
    assert f"Drone at {url} not usable after 3 attempts" in err and "Connection" in err, err


def test_missing_configuration_is_named(
    reg: ModuleType, templates_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environ("http://127.0.0.1:9", templates_dir)
    del env["REGISTRY_PASSWORD"]
    assert reg.main(env) == 1
    assert "REGISTRY_PASSWORD is empty" in capsys.readouterr().err


def test_script_is_stdlib_only() -> None:
    """The Job runs it on a bare python image: no third-party import."""
    import ast
    import sys

    tree = ast.parse(drone.registration_script().read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_write_answered_404_is_an_error(reg: ModuleType, fake: Faulty, templates_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Only a GET may answer 404 (object missing); a 404 to a write means the API is not what we expect."""
    state, url = fake
    state.templates[("homeci", TEMPLATE)] = "old"
    client = reg.DroneClient(server=url, token=TOKEN, attempts=1)
    with pytest.raises(reg.RegistrationError, match=r"answered 404 to PATCH /api/templates/homeci/nope"):
        client.request("PATCH", "/api/templates/homeci/nope.yaml", {"data": "x"})


def test_credentials_from_secret_files(reg: ModuleType, templates_dir: Path, tmp_path: Path) -> None:
    """The Job mounts the token and the registry credentials as files in HOMECI_SECRETS_DIR (none of them
    is in the pod's environment); the file's trailing newline is not part of the value."""
    env = environ("http://127.0.0.1:9", templates_dir)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("HOMECI_DRONE_TOKEN", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
        (secrets / name).write_text(env.pop(name) + "\n")
    config = reg.load_config({**env, "HOMECI_SECRETS_DIR": str(secrets)})
    assert config.token == TOKEN
    assert config.secrets == {"homeci_registry_username": "pusher",
                              "homeci_registry_password": 's3cret:with/odd"chars'}
