"""The release NOTES: URLs, how to get the CA and the registry credentials, login examples, and a
warning for each misconfiguration detectable at render time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import RELEASE, UMBRELLA, dig, render_notes


def _host(values: dict[str, Any], component: str) -> str:
    label = dig(values, f"global.hosts.{component}", component)
    return f"{label}.{dig(values, 'global.domain', 'homeci.localhost')}"


def test_notes_tell_urls_ca_and_logins(notes: str, values: dict[str, Any]) -> None:
    registry = _host(values, "registry")
    for want in (
        f"https://{registry}",
        f"get configmap {RELEASE}-ca",
        "update-ca-certificates",
        "add-trusted-cert",
        f"docker login {registry}",
        f"helm registry login {registry}",
        f"/etc/docker/certs.d/{registry}/ca.crt",
    ):
        assert want in notes, f"NOTES lack {want!r}"
    secret = dig(values, "registry.auth.existingSecret") or f"{RELEASE}-registry-auth"
    assert f"get secret {secret} " in notes, (
        f"NOTES do not say how to read the registry password from {secret}"
    )
    if dig(values, "gogs.enabled", True):
        assert f"https://{_host(values, 'git')}" in notes, "NOTES lack the Gogs URL"
    if dig(values, "drone.enabled", True):
        assert f"https://{_host(values, 'ci')}" in notes, "NOTES lack the Drone URL"
    if not dig(values, "global.admin.existingSecret"):
        assert f"get secret {RELEASE}-admin" in notes, "NOTES do not say where the admin password is"


def test_default_install_has_no_warnings() -> None:
    assert "WARNINGS" not in render_notes(), "the default install should not warn"


def _warnings(values: list[Path] | tuple[Path, ...] = (), sets: tuple[str, ...] = ()) -> str:
    notes = render_notes(values, sets)
    assert "WARNINGS" in notes, f"no WARNINGS section for {values} {sets}"
    return notes.split("WARNINGS", 1)[1]


def test_warns_without_persistence() -> None:
    assert "registry.persistence.enabled=false" in _warnings([UMBRELLA / "ci" / "no-persistence-values.yaml"])


def test_warns_about_k3s_traefik_timeouts() -> None:
    text = _warnings([UMBRELLA / "ci" / "k3s-traefik-values.yaml"])
    assert "traefik.enabled=false" in text and "readTimeout" in text


def test_warns_when_localhost_cannot_be_reached() -> None:
    text = _warnings(sets=("traefik.service.type=NodePort",))
    assert "homeci.localhost resolves to 127.0.0.1" in text


def test_warns_about_read_only_and_dry_run_gc() -> None:
    text = _warnings(sets=("registry.garbageCollect.enabled=true",))
    assert "--dry-run" in text
    assert "refuses pushes" in _warnings(sets=("registry.maintenance.readOnly=true",))


def test_warns_when_serving_secret_is_external() -> None:
    text = _warnings([UMBRELLA / "ci" / "existing-ca-values.yaml"])
    assert f"create Secret {RELEASE}-tls" in text
