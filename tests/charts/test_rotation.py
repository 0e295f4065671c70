"""Rotation wiring in the rendered manifests (the live behaviour is tested in tests/sim/test_rotation.py and
tests/realprog/test_*_rotation.py): the checksum of a generated Secret is the hash of the very data the
Secret holds in the same render (so install and the next upgrade agree), Secrets a program follows by
itself are in no checksum, Gogs gets its admin-sync settings, and the registry's htpasswd carries the
fingerprint of what it was made from."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from homeci import manifests as mf

from .conftest import RELEASE, render_umbrella


def _checksum(objs: list[mf.Manifest], deployment: str) -> str:
    dep = mf.get(objs, "Deployment", deployment)
    annotations = (dep.obj["spec"]["template"]["metadata"].get("annotations") or {})
    assert "checksum/secrets" in annotations, f"{dep.ref} pod template has no checksum/secrets annotation"
    return str(annotations["checksum/secrets"])


def _expected(data: dict[str, dict[str, str]]) -> str:
    """homeci-lib.secretsChecksum: sha256 of the JSON of Secret -> key -> base64 value (sorted keys)."""
    return hashlib.sha256(json.dumps(data, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def _data(objs: list[mf.Manifest], secret: str, *keys: str) -> dict[str, str]:
    data: dict[str, str] = mf.get(objs, "Secret", secret).obj["data"]
    return {k: data[k] for k in keys}


@pytest.mark.parametrize("major", [3, 4])
def test_generated_secrets_checksum_is_their_rendered_data(major: int) -> None:
    """One random value per render, shared by the Secret and the checksum (homeci-lib.keptSecretData)."""
    objs = render_umbrella(major=major)
    gogs = {f"{RELEASE}-gogs": _data(objs, f"{RELEASE}-gogs", "secret-key")}
    assert _checksum(objs, f"{RELEASE}-gogs") == _expected(gogs), (
        f"Helm {major}: Deployment/{RELEASE}-gogs checksum/secrets is not the hash of Secret/{RELEASE}-gogs "
        "as rendered: the first install and the next upgrade would disagree (a needless restart)")
    registry = {f"{RELEASE}-registry-config": _data(objs, f"{RELEASE}-registry-config", "http-secret")}
    assert _checksum(objs, f"{RELEASE}-registry") == _expected(registry), (
        f"Helm {major}: Deployment/{RELEASE}-registry checksum/secrets is not the hash of "
        f"Secret/{RELEASE}-registry-config's http-secret as rendered")


def test_followed_secrets_are_in_no_checksum() -> None:
    """The admin Secret (Gogs follows it) and the registry htpasswd (re-read) never roll a pod."""
    sets = ("gogs.secretKey.existingSecret=gogs-key", "registry.httpSecret.existingSecret=http-secret")
    one = render_umbrella(sets=sets)
    two = render_umbrella(sets=(*sets, "global.admin.email=other@example.org",
                                "registry.auth.username=pusher"))
    for name in (f"{RELEASE}-gogs", f"{RELEASE}-registry"):
        assert _checksum(one, name) == _checksum(two, name), (
            f"Deployment/{name} checksum/secrets changed with the admin e-mail or the registry user")
    config = [mf.get(objs, "Deployment", f"{RELEASE}-registry").obj["spec"]["template"]["metadata"]
              ["annotations"]["checksum/config"] for objs in (one, two)]
    assert config[0] == config[1], f"Deployment/{RELEASE}-registry checksum/config covers registry.auth"


def _gogs_env(objs: list[mf.Manifest]) -> dict[str, Any]:
    c = mf.get(objs, "Deployment", f"{RELEASE}-gogs").container("gogs")
    return {e["name"]: e.get("value") for e in c.get("env") or []}


@pytest.mark.parametrize(("sets", "enabled", "interval"), [
    ((), "true", "10"),
    (("gogs.admin.sync.enabled=false", "gogs.admin.sync.intervalSeconds=30"), "false", "30"),
])
def test_gogs_admin_sync_settings(sets: tuple[str, ...], enabled: str, interval: str) -> None:
    objs = render_umbrella(sets=sets)
    env = _gogs_env(objs)
    got = (env.get("HOMECI_ADMIN_SYNC"), env.get("HOMECI_ADMIN_SYNC_INTERVAL"))
    assert got == (enabled, interval), (
        f"Deployment/{RELEASE}-gogs env HOMECI_ADMIN_SYNC/_INTERVAL are {got}, "
        f"expected {(enabled, interval)}")
    dep = mf.get(objs, "Deployment", f"{RELEASE}-gogs")
    mounts = [m["mountPath"] for m in dep.container("gogs").get("volumeMounts") or [] if m["name"] == "data"]
    assert env.get("HOMECI_STATE_DIR", "").startswith(f"{mounts[0]}/"), (
        f"Deployment/{RELEASE}-gogs env HOMECI_STATE_DIR {env.get('HOMECI_STATE_DIR')} is not on the data "
        f"volume ({mounts}): the maintenance token would not survive a restart")


def test_registry_htpasswd_carries_its_fingerprint() -> None:
    secret = mf.get(render_umbrella(), "Secret", f"{RELEASE}-registry-auth").obj
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    expected = "sha256:" + hashlib.sha256(
        f"{data['htpasswd']}\n{data['username']}:{data['password']}".encode()).hexdigest()
    got = secret["metadata"]["annotations"].get("homeci.dev/htpasswd-of")
    assert got == expected, f"Secret/{RELEASE}-registry-auth annotation homeci.dev/htpasswd-of is {got!r}"
    assert data["password"] not in json.dumps(secret["metadata"]), "the password is in the Secret's metadata"
