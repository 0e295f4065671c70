"""Registry password rotation with the real registry v3.1.2: the htpasswd file of Secret
<release>-registry-auth, mounted as the kubelet mounts a Secret volume, is replaced the way the kubelet
updates it (atomic ``..data`` switch). The registry re-reads the file when its modification time changes:
the new password is accepted and the old one refused without restarting the registry.

Both bcrypt lines come from the chart itself: two offline renders generate two different passwords and
lines, as an upgrade after `kubectl edit` of the password does (tests/sim/test_rotation.py proves that
part against a real API server)."""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from homeci import manifests
from homeci_testing.realprog_harness import LoopbackRegistry, binary, render
from homeci_testing.support import CHARTS
from homeci_testing.volumes import AtomicVolume

AUTH = "/auth"


def _credentials(objects: list[manifests.Manifest]) -> dict[str, str]:
    data = manifests.get(objects, "Secret", "homeci-registry-auth").obj["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _status(registry: LoopbackRegistry, user: str, password: str) -> int:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"{registry.url}/v2/", headers={"Authorization": f"Basic {basic}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackRegistry]:
    with LoopbackRegistry(render("default"), tmp_path_factory.mktemp("registry-rotation"),
                          binary("registry")) as server:
        yield server


def test_new_htpasswd_applies_without_restart(registry: LoopbackRegistry) -> None:
    before = _credentials(registry.pod.objects)
    # A second offline render (another cache key): a new random password and bcrypt line.
    after = _credentials(render("default", "registry.podAnnotations.homeci-test/render=second"))
    assert before["password"] != after["password"] and before["htpasswd"] != after["htpasswd"]
    volume = AtomicVolume(registry.pod.host_path(AUTH))
    volume.write({"htpasswd": before["htpasswd"]})  # the kubelet's layout, same content
    assert _status(registry, before["username"], before["password"]) == 200, (
        "the rendered credentials do not work before the rotation")
    pid = registry.program.proc.pid if registry.program.proc else None

    volume.write({"htpasswd": after["htpasswd"]})

    assert _status(registry, after["username"], after["password"]) == 200, (
        "the registry did not re-read the replaced htpasswd (new password refused)")
    assert _status(registry, before["username"], before["password"]) == 401, "the old password still works"
    assert registry.program.running and registry.program.proc is not None
    assert registry.program.proc.pid == pid, "the registry was restarted"


def test_a_rehashed_line_is_accepted(registry: LoopbackRegistry) -> None:
    """The registry chart's rehash program (files/htpasswd.py, its own bcrypt) makes a line the real
    registry (Go's bcrypt) accepts, at the chart's default cost."""
    creds = _credentials(registry.pod.objects)
    program = CHARTS / "homeci-umbrella" / "charts" / "registry" / "files" / "htpasswd.py"
    line = subprocess.run([sys.executable, str(program), "--hash", creds["username"], creds["password"], "5"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert line.startswith(f"{creds['username']}:$2b$05$"), line
    AtomicVolume(registry.pod.host_path(AUTH)).write({"htpasswd": line})
    assert _status(registry, creds["username"], creds["password"]) == 200, "the rehashed line was refused"
    assert _status(registry, creds["username"], creds["password"] + "x") == 401, "a wrong password passed"
