"""Gogs admin creation and password/e-mail sync (charts/.../gogs/files/create-admin.sh and start.sh) with a
fake `gogs` command and a fake Gogs HTTP API on 127.0.0.1 that behaves like Gogs 0.14.3 where the script
depends on it (Basic auth on the token list, tokens shown once, the admin API setting every form field,
e-mails stored lower case). Every test runs under each shell the images have (busybox ash in the upstream
Alpine image, dash in the local node's Debian image) when it is installed here.

The real-program counterpart (real Gogs, real rotation) is tests/realprog/test_gogs_program.py."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.loopback import serve
from homeci_testing.support import ROOT
from homeci_testing.volumes import AtomicVolume

FILES = ROOT / "charts" / "homeci-umbrella" / "charts" / "gogs" / "files"
USER, PASSWORD, EMAIL = "homeci", "s3cret-admin-password", "admin@homeci.localhost"
NEW_PASSWORD = 'n3w "pass\\word'  # a quote and a backslash: JSON and curl-config escaping are exercised
FULL_NAME = 'The "Admin" \\ <x>'

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None, reason="create-admin.sh needs curl (as in the image)"
)

SHELLS = [pytest.param(["dash"], id="dash"), pytest.param(["busybox", "sh"], id="busybox")]

FAKE_GOGS = """#!/bin/sh
# fake gogs: records every call; `admin create-user` writes $FAKE_STATE/created (name, password, email);
# `web` idles until TERM
echo "$1 $2" >> "$FAKE_STATE/calls"
case "$1 $2" in
  "admin create-user")
    if [ -n "${FAKE_CREATE_FAILS:-}" ]; then echo "2026/01/01 create-user: database is locked" >&2; exit 1; fi
    if [ -f "$FAKE_STATE/created" ]; then echo "user already exists [name: $4]" >&2; exit 1; fi
    printf '%s\\n%s\\n%s\\n' "$4" "$6" "$8" > "$FAKE_STATE/created"
    echo "New user '$4' has been successfully created!"; exit 0 ;;
  web*)
    trap 'echo web-stopped >> "$FAKE_STATE/calls"; exit 0' TERM INT
    while :; do sleep 0.05; done ;;
esac
exit 3
"""

# Records curl's command line, then runs the real curl: no secret may appear there.
CURL_SPY = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_STATE/curl-argv"
exec {real} "$@"
"""


@dataclass
class User:
    password: str
    email: str
    full_name: str = FULL_NAME
    website: str = "https://example.org"
    admin: bool = True


@dataclass
class FakeGogs:
    """The state behind the fake API; ``requests`` records (method, path, auth kind, JSON body)."""

    state: Path
    healthy_after: int = 0  # /healthcheck answers 503 this many times
    users_404_always: bool = False  # simulate a concurrent creator: API says missing, create says exists
    health_calls: int = 0
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # value -> (user, name)
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync_cli(self) -> None:
        created = self.state / "created"
        if created.exists():
            name, password, email = created.read_text().splitlines()[:3]
            self.users.setdefault(name, User(password, email.lower(), full_name=""))

    def authenticate(self, header: str) -> tuple[str, str | None]:
        """(kind, user): kind basic/token/none/bad; user None unless the credential is valid."""
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            user = self.users.get(name)
            return ("basic", name) if user and user.password == password else ("bad", None)
        if header.startswith("token "):
            owner = self.tokens.get(header[6:])
            return ("token", owner[0]) if owner else ("bad", None)
        return ("none", None)

    def patch(self, name: str, form: dict[str, Any]) -> tuple[int, Any]:
        user = self.users[name]
        if user.email != form["email"] and any(
                u.email == form["email"].lower() for n, u in self.users.items()):
            return 422, {"message": f"email has been used: map[email:{form['email']}]"}
        if form.get("password"):
            user.password = form["password"]
        user.email = form["email"]
        user.full_name = form["full_name"]
        user.website = form["website"]
        return 200, self.info(name)

    def info(self, name: str) -> dict[str, Any]:
        u = self.users[name]
        return {"id": 1, "username": name, "login": name, "full_name": u.full_name, "email": u.email,
                "avatar_url": ""}


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv: list[str] = request.param
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed here (apt-get install {argv[0]})")
    return argv


@pytest.fixture
def env(tmp_path: Path, shell: list[str]) -> Iterator[tuple[dict[str, str], FakeGogs]]:
    state = tmp_path / "state"
    state.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    gogs = bindir / "gogs"
    gogs.write_text(FAKE_GOGS)
    gogs.chmod(0o755)
    curl = bindir / "curl"
    curl.write_text(CURL_SPY.format(real=shutil.which("curl")))
    curl.chmod(0o755)
    # `sh` inside start.sh is the shell under test
    sh = bindir / "sh"
    sh.write_text(f'#!/bin/sh\nexec {" ".join(shell)} "$@"\n')
    sh.chmod(0o755)
    api = FakeGogs(state)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: Any = None) -> None:
            data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with api.lock:
                api.sync_cli()
                kind, who = api.authenticate(self.headers.get("Authorization", ""))
                api.requests.append((method, self.path, kind, body))
                self.route(method, kind, who, body)

        def route(self, method: str, kind: str, who: str | None, body: Any) -> None:
            path = self.path
            if path == "/healthcheck":
                api.health_calls += 1
                self.answer(200 if api.health_calls > api.healthy_after else 503)
            elif path.endswith("/tokens") and path.startswith("/api/v1/users/"):
                if kind != "basic" or who is None:
                    self.answer(401)
                elif method == "GET":
                    mine = [n for u, n in api.tokens.values() if u == who]
                    self.answer(200, [{"name": n, "sha1": "hashed"} for n in mine])
                elif any(u == who and n == body["name"] for u, n in api.tokens.values()):
                    self.answer(422, {"message": "access token already exist"})
                else:
                    value = secrets.token_hex(20)
                    api.tokens[value] = (who, body["name"])
                    self.answer(201, {"name": body["name"], "sha1": value})
            elif path.startswith("/api/v1/users/") and method == "GET":
                name = path.rsplit("/", 1)[1]
                if name not in api.users or api.users_404_always:
                    self.answer(404)
                else:
                    info = api.info(name)
                    if who is None:
                        info["email"] = ""
                    self.answer(200, info)
            elif path.startswith("/api/v1/admin/users/") and method == "PATCH":
                if who is None or not api.users[who].admin:
                    self.answer(403)
                else:
                    self.answer(*api.patch(path.rsplit("/", 1)[1], body))
            else:
                self.answer(404)

        def do_GET(self) -> None:
            self.handle_any("GET")

        def do_POST(self) -> None:
            self.handle_any("POST")

        def do_PATCH(self) -> None:
            self.handle_any("PATCH")

    with serve(Handler) as port:
        yield _env(tmp_path, state, bindir, port), api


def _env(tmp_path: Path, state: Path, bindir: Path, port: int) -> dict[str, str]:
    return {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_STATE": str(state),
        "GOGS_BIN": str(bindir / "gogs"),
        "GOGS_CONFIG": str(tmp_path / "app.ini"),
        "GOGS_URL": f"http://127.0.0.1:{port}",
        "GOGS_ADMIN_USERNAME": USER,
        "GOGS_ADMIN_PASSWORD": PASSWORD,
        "GOGS_ADMIN_EMAIL": EMAIL,
        "GOGS_ADMIN_WAIT_ATTEMPTS": "20",
        "GOGS_ADMIN_WAIT_INTERVAL": "0.05",
        "HOMECI_ADMIN_SYNC": "true",
        "HOMECI_ADMIN_SYNC_INTERVAL": "0.1",
        "HOMECI_STATE_DIR": str(tmp_path / "data" / "homeci"),
    }


def with_files(e: dict[str, str], folder: Path, **over: str) -> tuple[dict[str, str], AtomicVolume]:
    """``e`` with the admin identity as the chart mounts it: files of an atomically updated volume."""
    volume = AtomicVolume(folder)
    identity = {"GOGS_ADMIN_USERNAME": USER, "GOGS_ADMIN_PASSWORD": PASSWORD, "GOGS_ADMIN_EMAIL": EMAIL}
    volume.write({k: v + "\n" for k, v in {**identity, **over}.items()})
    env = {k: v for k, v in e.items() if k not in identity}
    return {**env, "HOMECI_SECRETS_DIR": str(folder)}, volume


def create_admin(e: dict[str, str], shell: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*shell, str(FILES / "create-admin.sh"), *args], env=e, capture_output=True, text=True, timeout=30
    )


def calls(api: FakeGogs) -> list[str]:
    path = api.state / "calls"
    return path.read_text().splitlines() if path.exists() else []


def patches(api: FakeGogs) -> list[tuple[str, Any]]:
    return [(kind, body) for method, _, kind, body in api.requests if method == "PATCH"]


def assert_no_secret_leaks(api: FakeGogs, *outputs: str) -> None:
    argv = (api.state / "curl-argv").read_text() if (api.state / "curl-argv").exists() else ""
    values = [PASSWORD, NEW_PASSWORD, *(t for t in api.tokens)]
    for text, where in [(argv, "curl's command line"), *((o, "the script's output") for o in outputs)]:
        leaked = [v for v in values if v in text]
        assert not leaked, f"a password or token appears in {where}"


# -- creating the admin --------------------------------------------------------------------------------

def test_creates_the_admin_once(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    first = create_admin(e, shell)
    assert first.returncode == 0, first.stderr
    assert "created admin 'homeci'" in first.stderr
    assert [c for c in calls(api) if c.startswith("admin")] == ["admin create-user"]
    assert api.users[USER].password == PASSWORD and api.users[USER].email == EMAIL
    second = create_admin(e, shell)
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stderr
    assert len([c for c in calls(api) if c.startswith("admin")]) == 1, "second run called create-user"
    assert not patches(api), f"nothing changed, yet the script sent {patches(api)}"
    assert_no_secret_leaks(api, first.stderr, second.stderr)


def test_waits_for_migrations(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    api.healthy_after = 3
    result = create_admin(e, shell)
    assert result.returncode == 0, result.stderr
    assert api.health_calls == 4


def test_unhealthy_gogs_is_bounded_and_loud(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    api.healthy_after = 10_000
    e["GOGS_ADMIN_WAIT_ATTEMPTS"] = "3"
    result = create_admin(e, shell)
    assert result.returncode == 1
    assert "did not become healthy" in result.stderr and "after 3 tries" in result.stderr
    assert not [c for c in calls(api) if c.startswith("admin")], "create-user ran before Gogs was healthy"


def test_create_user_failure_is_loud(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    e["FAKE_CREATE_FAILS"] = "1"
    result = create_admin(e, shell, "--watch")
    assert result.returncode == 1, "the watch must exit 1 when the first pass cannot create the admin"
    assert result.stderr.strip().splitlines()[-1].endswith("database is locked")
    assert_no_secret_leaks(api, result.stderr)


def test_concurrent_creation_counts_as_success(env: tuple[dict[str, str], FakeGogs],
                                               shell: list[str]) -> None:
    e, api = env
    (api.state / "created").write_text(f"{USER}\n{PASSWORD}\n{EMAIL}\n")
    api.users_404_always = True
    result = create_admin(e, shell)
    assert result.returncode == 0, result.stderr
    assert "created concurrently" in result.stderr


def test_missing_admin_secret_keys(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, _ = env
    del e["GOGS_ADMIN_PASSWORD"]
    result = create_admin(e, shell)
    assert result.returncode != 0 and "GOGS_ADMIN_PASSWORD is not set" in result.stderr


def test_admin_identity_from_secret_files(env: tuple[dict[str, str], FakeGogs], shell: list[str],
                                          tmp_path: Path) -> None:
    """The chart mounts the admin Secret as files in HOMECI_SECRETS_DIR (no admin variable in the pod)."""
    e, api = env
    files_env, _ = with_files(e, tmp_path / "secrets")
    result = create_admin(files_env, shell)
    assert result.returncode == 0, result.stderr
    assert api.users[USER].password == PASSWORD, "the password from the file (trailing newline dropped)"


# -- the maintenance token and the sync ----------------------------------------------------------------

def test_keeps_a_maintenance_token_once(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    first = create_admin(e, shell)
    assert first.returncode == 0, first.stderr
    token_file = Path(e["HOMECI_STATE_DIR"]) / "maintenance-token"
    assert token_file.is_file(), f"no maintenance token at {token_file}: {first.stderr}"
    assert token_file.stat().st_mode & 0o777 == 0o600, f"{token_file} mode {token_file.stat().st_mode:o}"
    assert api.tokens.get(token_file.read_text()) == (USER, "homeci-maintenance")
    assert "kept maintenance token 'homeci-maintenance'" in first.stderr
    second = create_admin(e, shell)
    assert len(api.tokens) == 1, f"a second run created another token: {list(api.tokens.values())}"
    assert "maintenance token" not in second.stderr
    assert_no_secret_leaks(api, first.stderr, second.stderr)


def test_token_name_taken_uses_another_name(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    """A token named homeci-maintenance exists in Gogs but its value is lost (a new data volume over an
    external database): Gogs never shows a token again, so a second name is used."""
    e, api = env
    assert create_admin({**e, "HOMECI_ADMIN_SYNC": "false"}, shell).returncode == 0
    api.tokens["lost"] = (USER, "homeci-maintenance")
    result = create_admin(e, shell)
    names = sorted(n for _, n in api.tokens.values())
    assert len(names) == 2 and names[1].startswith("homeci-maintenance-"), (names, result.stderr)


def test_changed_password_is_applied_with_the_token(env: tuple[dict[str, str], FakeGogs], shell: list[str],
                                                    tmp_path: Path) -> None:
    e, api = env
    files_env, volume = with_files(e, tmp_path / "secrets")
    assert create_admin(files_env, shell).returncode == 0
    api.users[USER].full_name = FULL_NAME
    volume.write({"GOGS_ADMIN_USERNAME": USER, "GOGS_ADMIN_PASSWORD": NEW_PASSWORD,
                  "GOGS_ADMIN_EMAIL": EMAIL})
    result = create_admin(files_env, shell)
    assert result.returncode == 0, result.stderr
    assert api.users[USER].password == NEW_PASSWORD, f"password not applied: {result.stderr}"
    sent = patches(api)
    assert [kind for kind, _ in sent] == ["token"], f"PATCH auth kinds {sent}: expected one, by token"
    form = sent[0][1]
    assert form["full_name"] == FULL_NAME, "the admin's full name must be sent back unchanged"
    assert form["email"] == EMAIL and form["source_id"] == 0 and form["login_name"] == ""
    assert "applied the admin Secret's new password to 'homeci'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2, f"one line per outcome: {result.stderr}"
    assert_no_secret_leaks(api, result.stderr)


def test_changed_email_follows(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    assert create_admin(e, shell).returncode == 0
    result = create_admin({**e, "GOGS_ADMIN_EMAIL": "New.Admin@Example.org"}, shell)
    assert result.returncode == 0, result.stderr
    assert api.users[USER].email == "new.admin@example.org"
    assert [kind for kind, _ in patches(api)] == ["basic"], "the password works: no token needed"
    assert patches(api)[0][1]["password"] == "", "an e-mail change must not send a password"
    assert "applied the admin Secret's e-mail to 'homeci'" in result.stderr


def test_email_case_is_not_a_change(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    """Gogs stores e-mails lower case and refuses to set an e-mail a user already has (HTTP 422)."""
    e, api = env
    assert create_admin({**e, "GOGS_ADMIN_EMAIL": "Admin@HomeCI.localhost"}, shell).returncode == 0
    result = create_admin({**e, "GOGS_ADMIN_EMAIL": "Admin@HomeCI.localhost"}, shell)
    assert result.returncode == 0 and not patches(api), (patches(api), result.stderr)


def test_install_without_token_says_what_to_do(env: tuple[dict[str, str], FakeGogs],
                                               shell: list[str]) -> None:
    """An install from before password sync: the admin exists, the Secret's password changed, no token."""
    e, api = env
    api.users[USER] = User("the-old-password", EMAIL)
    result = create_admin(e, shell)
    assert result.returncode == 0, "a missing token must not stop Gogs"
    lines = [ln for ln in result.stderr.splitlines() if "maintenance token" in ln]
    assert len(lines) == 1 and "put the password Gogs knows back into the Secret" in lines[0], result.stderr
    assert not patches(api) and api.users[USER].password == "the-old-password"
    # The operator puts the old password back: the token is kept; the new one then applies.
    assert create_admin({**e, "GOGS_ADMIN_PASSWORD": "the-old-password"}, shell).returncode == 0
    assert len(api.tokens) == 1
    create_admin(e, shell)
    assert api.users[USER].password == PASSWORD


def test_deleted_token_is_reported(env: tuple[dict[str, str], FakeGogs], shell: list[str]) -> None:
    e, api = env
    assert create_admin(e, shell).returncode == 0
    api.tokens.clear()  # deleted in Gogs' settings
    result = create_admin({**e, "GOGS_ADMIN_PASSWORD": NEW_PASSWORD}, shell)
    assert result.returncode == 0
    assert "Gogs refuses the maintenance token" in result.stderr, result.stderr
    assert_no_secret_leaks(api, result.stderr)


def test_sync_off_keeps_no_token_and_changes_nothing(env: tuple[dict[str, str], FakeGogs],
                                                     shell: list[str]) -> None:
    e, api = env
    e["HOMECI_ADMIN_SYNC"] = "false"
    assert create_admin(e, shell).returncode == 0
    result = create_admin({**e, "GOGS_ADMIN_PASSWORD": NEW_PASSWORD}, shell, "--watch")
    assert result.returncode == 0, "with sync off the watch ends after its first pass"
    assert not api.tokens and not patches(api) and api.users[USER].password == PASSWORD


def test_watch_applies_a_changed_secret_within_the_interval(env: tuple[dict[str, str], FakeGogs],
                                                            shell: list[str], tmp_path: Path) -> None:
    e, api = env
    gogs = subprocess.Popen(["sleep", "60"])
    files_env, volume = with_files(e, tmp_path / "secrets")
    watch = subprocess.Popen([*shell, str(FILES / "create-admin.sh"), "--watch"],
                             env={**files_env, "GOGS_PID": str(gogs.pid)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not api.tokens and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.tokens, "the watch did not keep a maintenance token"
        time.sleep(0.3)  # the first pass ends
        requests_before = len(api.requests)
        time.sleep(0.5)  # five intervals with nothing changed
        assert len(api.requests) == requests_before, (
            f"unchanged files, yet {api.requests[requests_before:]}: the watch must only compare a hash")
        volume.write({"GOGS_ADMIN_USERNAME": USER, "GOGS_ADMIN_PASSWORD": NEW_PASSWORD,
                      "GOGS_ADMIN_EMAIL": EMAIL})
        deadline = time.monotonic() + 5
        while api.users[USER].password != NEW_PASSWORD and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.users[USER].password == NEW_PASSWORD, "the watch did not apply the new password"
        gogs.send_signal(signal.SIGTERM)
        gogs.wait(5)
        assert watch.wait(timeout=5) == 0, "the watch must end (0) once Gogs is gone"
    finally:
        for proc in (gogs, watch):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    _, err = watch.communicate()
    assert "applied the admin Secret's new password" in err, err
    assert_no_secret_leaks(api, err)


# -- start.sh ------------------------------------------------------------------------------------------

def _start(e: dict[str, str], shell: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*shell, str(FILES / "start.sh")], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_start_runs_gogs_and_the_watch_and_forwards_term(env: tuple[dict[str, str], FakeGogs],
                                                         shell: list[str]) -> None:
    e, api = env
    proc = _start(e, shell)
    try:
        deadline = time.monotonic() + 15
        while not api.tokens and time.monotonic() < deadline:
            time.sleep(0.05)
        assert USER in api.users, "start.sh did not create the admin"
        assert api.tokens, "start.sh's create-admin did not keep the maintenance token"
        time.sleep(0.3)
        assert proc.poll() is None, "start.sh must keep running while Gogs runs"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert "stopping Gogs" not in err, f"a TERM is not an admin failure: {err}"
    assert "web --config" in calls(api)
    assert "web-stopped" in calls(api), "SIGTERM was not forwarded to gogs web"


def test_start_stops_gogs_when_the_admin_fails(env: tuple[dict[str, str], FakeGogs],
                                               shell: list[str]) -> None:
    e, api = env
    e["FAKE_CREATE_FAILS"] = "1"
    proc = _start(e, shell)
    try:
        assert proc.wait(timeout=15) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert "stopping Gogs" in err
    assert "web-stopped" in calls(api), "Gogs kept running although the admin could not be ensured"
