"""The registration script of charts/drone-pipelines (files/register.py, the file the hook Job runs)
under injected faults, against a fault-injecting stand-in for Drone's API on 127.0.0.1: 5xx then
success, 5xx until the attempts run out, unreachable, a 404 to a write, missing configuration; and its
namespace labelling against a stand-in Kubernetes API (idempotence, 403, missing namespace). The real
API server's RBAC for that Job is exercised in tests/sim/test_pipeline_policies.py.

Create, update, unchanged and a wrong token run against the real Drone 2.28.2 in
tests/realprog/test_drone_program.py (the rendered Job, its env and mounts included).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from homeci_testing import drone
from homeci_testing.loopback import json_handler, serve

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

    def handle(method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        return state.handle(method, path, headers.get("Authorization", ""), body)

    with serve(json_handler(handle)) as port:
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


# -- target namespaces: Pod Security labels through the Kubernetes API ---------------------------------

KUBE_TOKEN = "job-serviceaccount-token"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


@dataclass
class FakeKube:
    """Namespaces of a Kubernetes API: GET and merge PATCH of the ones in ``allowed`` (403 otherwise)."""

    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def handle(self, method: str, path: str, auth: str, ctype: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if auth != f"Bearer {KUBE_TOKEN}":
            return 401, {"kind": "Status", "message": "Unauthorized"}
        name = path.removeprefix("/api/v1/namespaces/")
        if name not in self.allowed:
            return 403, {"kind": "Status", "message": f'namespaces "{name}" is forbidden'}
        if name not in self.namespaces:
            return 404, {"kind": "Status", "message": f'namespaces "{name}" not found'}
        meta = self.namespaces[name]["metadata"]
        if method == "PATCH":
            assert ctype == "application/merge-patch+json", ctype
            for section, changes in body["metadata"].items():
                current = meta.setdefault(section, {})
                for key, value in changes.items():
                    if value is None:
                        current.pop(key, None)
                    else:
                        current[key] = value
        return 200, self.namespaces[name]

    def patches(self) -> list[Any]:
        return [b for m, _, b in self.requests if m == "PATCH"]


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeKube, dict[str, str]]]:
    state = FakeKube()

    def handle(method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        auth, ctype = headers.get("Authorization", ""), headers.get("Content-Type", "")
        return state.handle(method, path, auth, ctype, body)

    token = tmp_path / "token"
    token.write_text(KUBE_TOKEN + "\n")
    with serve(json_handler(handle, ("GET", "PATCH"))) as port:
        yield state, {"HOMECI_KUBE_SERVER": f"http://127.0.0.1:{port}", "HOMECI_KUBE_TOKEN_FILE": str(token)}


def _wanted(**extra: Any) -> dict[str, Any]:
    return {"apps": {"labels": RESTRICTED, "annotations": {"homeci.dev/pod-security-reason": None}},
            "legacy": {"labels": {**RESTRICTED, "pod-security.kubernetes.io/enforce": "baseline"},
                       "annotations": {"homeci.dev/pod-security-reason": "binds port 80"}}, **extra}


def test_namespaces_are_labelled_once_then_left_alone(reg: ModuleType, fake: Faulty, templates_dir: Path,
                                                      kube: tuple[FakeKube, dict[str, str]]) -> None:
    """Before Drone: each target gets its Pod Security labels (and reason) in one merge PATCH carrying
    only what differs; a rerun reads, finds them equal and writes nothing."""
    api, kube_env = kube
    api.allowed = {"apps", "legacy"}
    api.namespaces = {
        "apps": {"metadata": {"name": "apps",
                              "labels": {"team": "a", "pod-security.kubernetes.io/warn": "restricted"},
                              "annotations": {"homeci.dev/pod-security-reason": "stale"}}},
        "legacy": {"metadata": {"name": "legacy"}},
    }
    _, url = fake
    env = environ(url, templates_dir, HOMECI_NAMESPACES=json.dumps(_wanted()), **kube_env)
    first = run_main(reg, env)
    assert first.lines[-1] == "exit=0", first.lines
    assert api.patches() == [
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                 "pod-security.kubernetes.io/audit": "restricted"},
                      "annotations": {"homeci.dev/pod-security-reason": None}}},
        {"metadata": {"labels": {**RESTRICTED, "pod-security.kubernetes.io/enforce": "baseline"},
                      "annotations": {"homeci.dev/pod-security-reason": "binds port 80"}}},
    ]
    assert api.namespaces["apps"]["metadata"]["labels"] == {"team": "a", **RESTRICTED}
    assert "namespace apps/audit=restricted,enforce=restricted,warn=restricted: updated" in first.lines
    before = len(api.requests)
    second = run_main(reg, env)
    assert second.lines[-1] == "exit=0" and len(api.patches()) == 2, "a rerun must not patch again"
    assert [m for m, _, _ in api.requests[before:]] == ["GET", "GET"]
    assert "namespace legacy/audit=restricted,enforce=baseline,warn=restricted: unchanged" in second.lines


@pytest.mark.parametrize(("allowed", "present", "needle"), [
    (set(), {"apps"}, "answered 403 to GET /api/v1/namespaces/apps: the Job's ServiceAccount may get and "
                      "patch only the target namespaces"),
    ({"apps"}, set(), "namespace apps does not exist: create it"),
])
def test_namespace_refusals_fail_the_job_before_drone(
    reg: ModuleType, fake: Faulty, templates_dir: Path, kube: tuple[FakeKube, dict[str, str]],
    capsys: pytest.CaptureFixture[str], allowed: set[str], present: set[str], needle: str,
) -> None:
    api, kube_env = kube
    api.allowed = allowed
    api.namespaces = {n: {"metadata": {"name": n}} for n in present}
    state, url = fake
    env = environ(url, templates_dir, HOMECI_NAMESPACES=json.dumps({"apps": _wanted()["apps"]}), **kube_env)
    rec = run_main(reg, env)
    err = capsys.readouterr().err
    assert rec.lines[-1] == "exit=1" and needle in err, err
    assert len(api.requests) == 1 and not rec.sleeps, "4xx is not retried"
    assert not state.requests, "Drone is not called when a namespace cannot be labelled"


def test_in_cluster_settings_are_required(reg: ModuleType, templates_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    env = environ("http://127.0.0.1:9", templates_dir, HOMECI_NAMESPACES=json.dumps(_wanted()))
    assert reg.main(env) == 1
    assert "KUBERNETES_SERVICE_HOST is not set" in capsys.readouterr().err
