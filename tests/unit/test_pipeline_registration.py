"""The registration script of charts/drone-pipelines (files/register.py, the file the hook Job runs)
against a fake Drone API on 127.0.0.1: create, update, unchanged, 401, 5xx-then-success, unreachable.
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

from homeci import drone
from loopback import serve

TOKEN = "machine-token-for-tests"
TEMPLATE = "homeci-build-deploy.yaml"


@pytest.fixture(scope="module")
def reg() -> ModuleType:
    return drone.load_registration()


@dataclass
class FakeDrone:
    """In-memory Drone templates and organisation secrets API (the routes of handler/api/api.go)."""

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


@pytest.fixture
def fake() -> Iterator[tuple[FakeDrone, str]]:
    state = FakeDrone()

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


def test_create(
    reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, url = fake
    rec = run_main(reg, environ(url, templates_dir))
    assert rec.lines[-1] == "exit=0", capsys.readouterr().err
    text = (templates_dir / TEMPLATE).read_text()
    assert state.templates == {("homeci", TEMPLATE): text, ("team", TEMPLATE): text}
    for owner in ("homeci", "team"):
        user = state.secrets[(owner, "homeci_registry_username")]
        pw = state.secrets[(owner, "homeci_registry_password")]
        assert (user["data"], pw["data"]) == ("pusher", 's3cret:with/odd"chars')
        assert user["pull_request"] is False and pw["pull_request"] is False, (
            f"secret {owner}/*: must not be exposed to pull requests"
        )
    assert f"template homeci/{TEMPLATE}: created" in rec.lines
    assert "secret team/homeci_registry_password: created" in rec.lines
    assert rec.sleeps == []


def test_unchanged_is_a_no_op(reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path) -> None:
    state, url = fake
    assert run_main(reg, environ(url, templates_dir)).lines[-1] == "exit=0"
    state.requests.clear()
    rec = run_main(reg, environ(url, templates_dir))
    assert rec.lines[-1] == "exit=0"
    assert f"template homeci/{TEMPLATE}: unchanged" in rec.lines
    assert not [w for w in state.writes() if "/templates/" in w[1]], (
        f"an unchanged template must not be written again: {state.writes()}"
    )


def test_update(reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path) -> None:
    state, url = fake
    state.templates[("homeci", TEMPLATE)] = "kind: pipeline\n# an older version\n"
    state.secrets[("homeci", "homeci_registry_password")] = {
        "name": "x",
        "data": "old",
        "pull_request": False,
    }
    rec = run_main(reg, environ(url, templates_dir, HOMECI_OWNERS="homeci"))
    assert rec.lines[-1] == "exit=0"
    assert f"template homeci/{TEMPLATE}: updated" in rec.lines
    assert state.templates[("homeci", TEMPLATE)] == (templates_dir / TEMPLATE).read_text()
    assert ("PATCH", f"/api/templates/homeci/{TEMPLATE}") in state.requests
    assert state.secrets[("homeci", "homeci_registry_password")]["data"] == 's3cret:with/odd"chars'
    assert ("PATCH", "/api/secrets/homeci/homeci_registry_password") in state.requests


def test_wrong_token_fails_at_once(
    reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, url = fake
    rec = run_main(reg, environ(url, templates_dir, HOMECI_DRONE_TOKEN="WRONG-TOKEN-1f3a"))
    err = capsys.readouterr().err
    assert rec.lines[-1] == "exit=1"
    assert len(state.requests) == 1 and rec.sleeps == [], "401 must not be retried"
    assert "401" in err and "Secret homeci/homeci-drone-machine key token" in err, err
    assert err.startswith("ERROR: ") and err.count("\n") == 1, f"one clear line expected: {err!r}"
    assert "WRONG-TOKEN-1f3a" not in err, "the token itself must never be printed"


def test_5xx_then_success(reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path) -> None:
    state, url = fake
    state.fail_next = 2
    rec = run_main(reg, environ(url, templates_dir, HOMECI_OWNERS="homeci"))
    assert rec.lines[-1] == "exit=0"
    assert rec.sleeps == [0.5, 1.0], "exponential backoff, capped at HOMECI_MAX_BACKOFF_SECONDS"
    assert sum("HTTP 503" in ln and "retry" in ln for ln in rec.lines) == 2, rec.lines
    assert ("homeci", TEMPLATE) in state.templates


def test_5xx_until_attempts_run_out(
    reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path, capsys: pytest.CaptureFixture[str]
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


def test_rendered_job_drives_the_script(
    reg: ModuleType, fake: tuple[FakeDrone, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chart's Job (env, mounts, command) and ConfigMaps, run against the fake: what Drone stores is
    exactly the rendered templates ConfigMap, and the organisation secrets carry the chart's credentials."""
    import base64

    from homeci import manifests, rendering

    state, url = fake
    chart = drone.chart_dir()
    objs = rendering.render(
        chart,
        [chart / "ci" / "default-values.yaml"],
        release="homeci-pipelines",
        namespace="homeci",
        kube_version="1.37.0",
    )
    job = manifests.get(objs, "Job", "homeci-pipelines-register")
    ((path, container),) = list(job.containers())
    spec = job.pod_spec()
    assert spec is not None
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert container["command"][-1] == mounts["script"]["mountPath"], f"{job.ref} {path}.command"

    secrets = {m.name: m for m in manifests.by_kind(objs, "Secret") if m.namespace == "homeci"}
    env: dict[str, str] = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]["secretKeyRef"]
        if ref["name"] in secrets:
            env[e["name"]] = base64.b64decode(secrets[ref["name"]].obj["data"][ref["key"]]).decode()
        else:  # the umbrella's Secret, not part of this chart
            assert ref == {"name": "homeci-drone-machine", "key": "token"}, (
                f"{job.ref} {path}.env.{e['name']}"
            )
            env[e["name"]] = TOKEN
    env["HOMECI_DRONE_SERVER"] = url  # in the cluster: http://homeci-drone.homeci.svc:80

    templates_cm = manifests.get(objs, "ConfigMap", volumes["templates"]["configMap"]["name"])
    assert env["HOMECI_TEMPLATES_DIR"] == mounts["templates"]["mountPath"]
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for name, text in templates_cm.obj["data"].items():
        (mounted / name).write_text(text)
    env["HOMECI_TEMPLATES_DIR"] = str(mounted)

    rec = run_main(reg, env)
    assert rec.lines[-1] == "exit=0", capsys.readouterr().err
    assert state.templates == {("homeci", TEMPLATE): templates_cm.obj["data"][TEMPLATE]}
    assert state.secrets[("homeci", "homeci_registry_username")]["data"] == "homeci-push"
    assert state.secrets[("homeci", "homeci_registry_password")]["data"] == "scenario-only-not-a-secret"


def test_write_answered_404_is_an_error(reg: ModuleType, fake: tuple[FakeDrone, str], templates_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Only a GET may answer 404 (object missing); a 404 to a write means the API is not what we expect."""
    state, url = fake
    state.templates[("homeci", TEMPLATE)] = "old"
    client = reg.DroneClient(server=url, token=TOKEN, attempts=1)
    with pytest.raises(reg.RegistrationError, match=r"answered 404 to PATCH /api/templates/homeci/nope"):
        client.request("PATCH", "/api/templates/homeci/nope.yaml", {"data": "x"})
