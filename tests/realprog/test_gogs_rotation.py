"""Admin password rotation with the real Gogs 0.14.3: the rendered Deployment's entrypoint (start.sh, which
keeps create-admin.sh watching the admin Secret's files) and a Secret volume laid out and updated the way
the kubelet does it (atomic ``..data`` switch). A changed password is accepted, and the old one refused,
within the watch interval, without restarting Gogs; the e-mail follows; an install without the
maintenance token says what to do in one line."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci import manifests
from homeci_testing.realprog_harness import LoopbackGogs, binary, render
from homeci_testing.volumes import AtomicVolume

SECRETS = "/run/secrets/homeci"
INTERVAL = "1"  # seconds between two looks at the files (the chart's default is 10)
NEW_PASSWORD = 'rotated "pass\\word" 2'


def _status(url: str, user: str, password: str) -> int:
    """Basic-auth GET (the token list needs a working password, as Drone's login does)."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


class Rotating:
    """The Gogs pod on loopback with its admin Secret volume as the kubelet lays it out."""

    def __init__(self, gogs: LoopbackGogs, identity: dict[str, str]) -> None:
        self.gogs = gogs
        self.identity = dict(identity)
        self.volume = AtomicVolume(gogs.pod.host_path(SECRETS))
        self.files = {p.name: p.read_text() for p in self.volume.folder.iterdir() if p.is_file()}

    def set(self, **identity: str) -> None:
        self.identity.update(identity)
        keys = {"username": "GOGS_ADMIN_USERNAME", "password": "GOGS_ADMIN_PASSWORD",
                "email": "GOGS_ADMIN_EMAIL"}
        self.volume.write({**self.files, **{keys[k]: v for k, v in self.identity.items()}})

    def accepts(self, password: str) -> bool:
        user = self.identity["username"]
        return _status(f"{self.gogs.url}/api/v1/users/{user}/tokens", user, password) == 200

    @property
    def log(self) -> str:
        return self.gogs.program.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotating]:
    objects = render("default")
    secret = manifests.get(objects, "Secret", "homeci-admin").obj["data"]
    identity = {k: base64.b64decode(v).decode() for k, v in secret.items()}
    gogs = LoopbackGogs(objects, tmp_path_factory.mktemp("gogs-rotation"), binary("gogs"))
    # Rewritten: the watch interval (rendered 10 s) -> 1 s, so the test waits seconds, not minutes.
    assert gogs.env.get("HOMECI_ADMIN_SYNC") == "true", "the chart renders admin.sync.enabled: true"
    gogs.env["HOMECI_ADMIN_SYNC_INTERVAL"] = INTERVAL
    gogs.program.env["HOMECI_ADMIN_SYNC_INTERVAL"] = INTERVAL
    state = gogs.env["HOMECI_STATE_DIR"]
    assert Path(state).is_relative_to(gogs.pod.host_path("/data")), f"HOMECI_STATE_DIR {state} not on /data"
    rotating = Rotating(gogs, identity)
    rotating.set()  # the same files, now in the kubelet's layout
    with gogs:
        _wait("the maintenance token", lambda: "kept maintenance token" in rotating.log, 90)
        yield rotating


def test_maintenance_token_kept_on_the_data_volume(rotating: Rotating) -> None:
    token = Path(rotating.gogs.env["HOMECI_STATE_DIR"]) / "maintenance-token"
    assert token.is_file(), f"{token} missing; log: {rotating.gogs.program.log_tail()}"
    assert token.stat().st_mode & 0o777 == 0o600, f"{token} has mode {token.stat().st_mode & 0o777:o}"
    req = urllib.request.Request(f"{rotating.gogs.url}/api/v1/user",
                                 headers={"Authorization": f"token {token.read_text()}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.load(resp)["login"] == rotating.identity["username"], "the token is not the admin's"


def test_changed_password_applies_without_restart(rotating: Rotating) -> None:
    old = rotating.identity["password"]
    assert rotating.accepts(old), "the rendered password does not work before the rotation"
    pid = rotating.gogs.program.proc.pid if rotating.gogs.program.proc else None
    rotating.set(password=NEW_PASSWORD)
    started = time.monotonic()
    _wait("Gogs to accept the new password", lambda: rotating.accepts(NEW_PASSWORD),
          10 * float(INTERVAL) + 10)
    took = time.monotonic() - started
    assert not rotating.accepts(old), "the old password still works after the rotation"
    assert rotating.gogs.program.running and rotating.gogs.program.proc is not None
    assert rotating.gogs.program.proc.pid == pid, "Gogs was restarted"
    assert rotating.log.count("created admin") == 1
    # The script writes its line after its own Basic-auth proof, a moment after Gogs took the password.
    _wait("the rotation's log line", lambda: "applied the admin Secret's new password" in rotating.log, 10)
    lines = [ln for ln in rotating.log.splitlines() if "applied the admin Secret's new password" in ln]
    assert len(lines) == 1, f"expected one line for the rotation, got {lines}"
    for secret in (old, NEW_PASSWORD):
        assert secret not in rotating.log, "a password appears in Gogs' log"
    print(f"new password accepted {took:.1f}s after the volume update (interval {INTERVAL}s)")


def test_changed_email_follows(rotating: Rotating) -> None:
    user = rotating.identity["username"]
    rotating.set(email="Rotated.Admin@Example.org")

    def email() -> str:
        basic = base64.b64encode(f"{user}:{rotating.identity['password']}".encode()).decode()
        req = urllib.request.Request(f"{rotating.gogs.url}/api/v1/users/{user}",
                                     headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.load(resp)["email"])

    _wait("the new e-mail in Gogs", lambda: email() == "rotated.admin@example.org",
          10 * float(INTERVAL) + 10)
    assert rotating.accepts(rotating.identity["password"]), "an e-mail change broke the password"


def test_install_without_token_logs_what_to_do(rotating: Rotating, tmp_path: Path) -> None:
    """An install from before password sync: no token file, and the Secret's password is not Gogs' one."""
    script = rotating.gogs.pod.host_path("/opt/homeci/create-admin.sh")
    env = {k: v for k, v in rotating.gogs.env.items() if not k.startswith("GOGS_ADMIN_")}
    env.update(HOMECI_STATE_DIR=str(tmp_path / "no-token"), GOGS_ADMIN_PASSWORD="not-the-password-gogs-has")
    proc = subprocess.run(["/bin/sh", str(script)], env={**env, "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"a missing token must not fail: {proc.stderr}"
    lines = [ln for ln in proc.stderr.splitlines() if "no maintenance token" in ln]
    assert len(lines) == 1 and "put the password Gogs knows back into the Secret" in lines[0], proc.stderr
    assert rotating.accepts(rotating.identity["password"]), "the token-less run changed the password"
