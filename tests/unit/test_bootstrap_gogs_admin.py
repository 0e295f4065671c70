"""Gogs admin creation (charts/.../gogs/files/create-admin.sh and start.sh) with a fake `gogs` command
and a fake Gogs HTTP API on 127.0.0.1: the admin is created once, a second run changes nothing,
failures end with exit 1 and one line saying why, and start.sh stops Gogs when the admin step fails."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.loopback import serve
from homeci_testing.support import ROOT

FILES = ROOT / "charts" / "homeci-umbrella" / "charts" / "gogs" / "files"
USER, PASSWORD, EMAIL = "homeci", "s3cret-admin-password", "admin@homeci.localhost"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None, reason="create-admin.sh needs curl (as in the image)"
)

FAKE_GOGS = """#!/bin/sh
# fake gogs: records every call; `admin create-user` creates $FAKE_STATE/user; `web` idles until TERM
echo "$*" >> "$FAKE_STATE/calls"
case "$1 $2" in
  "admin create-user")
    if [ -n "${FAKE_CREATE_FAILS:-}" ]; then echo "2026/01/01 create-user: database is locked" >&2; exit 1; fi
    if [ -f "$FAKE_STATE/user" ]; then echo "user already exists [name: $4]" >&2; exit 1; fi
    touch "$FAKE_STATE/user"; echo "New user '$4' has been successfully created!"; exit 0 ;;
  web*)
    trap 'echo web-stopped >> "$FAKE_STATE/calls"; exit 0' TERM INT
    while :; do sleep 0.05; done ;;
esac
exit 3
"""


@dataclass
class Api:
    state: Path
    healthy_after: int = 0  # /healthcheck answers 503 this many times
    users_404_always: bool = False  # simulate a concurrent creator: API says missing, create says exists
    health_calls: int = 0


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Api]]:
    state = tmp_path / "state"
    state.mkdir()
    gogs = tmp_path / "gogs"
    gogs.write_text(FAKE_GOGS)
    gogs.chmod(0o755)
    api = Api(state)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/healthcheck":
                api.health_calls += 1
                ok = api.health_calls > api.healthy_after
                self.send_response(200 if ok else 503)
            elif self.path == f"/api/v1/users/{USER}":
                exists = (state / "user").exists() and not api.users_404_always
                self.send_response(200 if exists else 404)
            else:
                self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serve(Handler) as port:
        yield _env(tmp_path, state, gogs, port), api


def _env(tmp_path: Path, state: Path, gogs: Path, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "FAKE_STATE": str(state),
        "GOGS_BIN": str(gogs),
        "GOGS_CONFIG": str(tmp_path / "app.ini"),
        "GOGS_URL": f"http://127.0.0.1:{port}",
        "GOGS_ADMIN_USERNAME": USER,
        "GOGS_ADMIN_PASSWORD": PASSWORD,
        "GOGS_ADMIN_EMAIL": EMAIL,
        "GOGS_ADMIN_WAIT_ATTEMPTS": "20",
        "GOGS_ADMIN_WAIT_INTERVAL": "0.05",
    }


def create_admin(e: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(FILES / "create-admin.sh")], env=e, capture_output=True, text=True, timeout=30
    )


def calls(api: Api) -> list[str]:
    path = api.state / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_creates_the_admin_once(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    first = create_admin(e)
    assert first.returncode == 0, first.stderr
    assert "created admin 'homeci'" in first.stderr
    creates = [c for c in calls(api) if c.startswith("admin create-user")]
    assert creates == [
        f"admin create-user --name {USER} --password {PASSWORD} --email {EMAIL} --admin "
        f"--config {e['GOGS_CONFIG']}"
    ]
    second = create_admin(e)
    assert second.returncode == 0, second.stderr
    assert "already exists; nothing to do" in second.stderr
    assert len([c for c in calls(api) if c.startswith("admin create-user")]) == 1, (
        "second run called create-user"
    )


def test_waits_for_migrations(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    api.healthy_after = 3
    result = create_admin(e)
    assert result.returncode == 0, result.stderr
    assert api.health_calls == 4


def test_unhealthy_gogs_is_bounded_and_loud(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    api.healthy_after = 10_000
    e["GOGS_ADMIN_WAIT_ATTEMPTS"] = "3"
    result = create_admin(e)
    assert result.returncode == 1
    assert "did not become healthy" in result.stderr and "after 3 tries" in result.stderr
    assert not [c for c in calls(api) if c.startswith("admin")], "create-user ran before Gogs was healthy"


def test_create_user_failure_is_loud(env: tuple[dict[str, str], Api]) -> None:
    e, _ = env
    e["FAKE_CREATE_FAILS"] = "1"
    result = create_admin(e)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("database is locked")
    assert PASSWORD not in result.stderr


def test_concurrent_creation_counts_as_success(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    (api.state / "user").touch()
    api.users_404_always = True
    result = create_admin(e)
    assert result.returncode == 0, result.stderr
    assert "created concurrently" in result.stderr


def test_missing_admin_secret_keys(env: tuple[dict[str, str], Api]) -> None:
    e, _ = env
    del e["GOGS_ADMIN_PASSWORD"]
    result = create_admin(e)
    assert result.returncode != 0 and "GOGS_ADMIN_PASSWORD is not set" in result.stderr


def _start(e: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sh", str(FILES / "start.sh")], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_start_runs_gogs_and_forwards_term(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    proc = _start(e)
    try:
        deadline = time.monotonic() + 15
        while not (api.state / "user").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (api.state / "user").exists(), "start.sh did not create the admin"
        assert proc.poll() is None, "start.sh must keep running while Gogs runs"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"web --config {e['GOGS_CONFIG']}" in calls(api)
    assert "web-stopped" in calls(api), "SIGTERM was not forwarded to gogs web"


def test_start_stops_gogs_when_the_admin_fails(env: tuple[dict[str, str], Api]) -> None:
    e, api = env
    e["FAKE_CREATE_FAILS"] = "1"
    proc = _start(e)
    try:
        assert proc.wait(timeout=15) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert "stopping Gogs" in err
    assert "web-stopped" in calls(api), "Gogs kept running although the admin could not be ensured"


def test_admin_identity_from_secret_files(env: tuple[dict[str, str], Api], tmp_path: Path) -> None:
    """The chart mounts the admin Secret as files in HOMECI_SECRETS_DIR (no admin variable in the pod)."""
    e, api = env
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("GOGS_ADMIN_USERNAME", "GOGS_ADMIN_PASSWORD", "GOGS_ADMIN_EMAIL"):
        (secrets / name).write_text(e.pop(name) + "\n")
    result = create_admin({**e, "HOMECI_SECRETS_DIR": str(secrets)})
    assert result.returncode == 0, result.stderr
    assert [c for c in calls(api) if c.startswith("admin create-user")] == [
        f"admin create-user --name {USER} --password {PASSWORD} --email {EMAIL} --admin "
        f"--config {e['GOGS_CONFIG']}"
    ]
