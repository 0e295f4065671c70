"""Gogs' app.ini (Secret <release>-gogs-config) parses as INI and carries exactly the settings Gogs 0.14
reads: no `[server] ROOT_URL` (ignored since 0.13) and no `[service]` section (ignored since 0.12)."""

from __future__ import annotations

import base64
import configparser
from pathlib import Path
from typing import Any

import pytest

from homeci import contract
from homeci import manifests as mf

from .conftest import NAMESPACE, RELEASE, dig, secret_source

GOGS_CONFIG = f"{RELEASE}-gogs-config"


def app_ini_text(objs: list[mf.Manifest]) -> str:
    secret = mf.get(objs, "Secret", GOGS_CONFIG)
    if "stringData" in secret.obj and "app.ini" in secret.obj["stringData"]:
        return str(secret.obj["stringData"]["app.ini"])
    return base64.b64decode(secret.obj["data"]["app.ini"]).decode()


def parse_ini(text: str) -> configparser.RawConfigParser:
    # Gogs' top-level keys (RUN_USER, RUN_MODE) precede any section: give them one for configparser.
    cp = configparser.RawConfigParser(strict=True, delimiters=("=",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep Gogs' upper-case keys
    cp.read_string("[__top__]\n" + text, source=f"Secret/{GOGS_CONFIG} app.ini")
    return cp


@pytest.fixture
def ini(umbrella_manifests: list[mf.Manifest]) -> configparser.RawConfigParser:
    return parse_ini(app_ini_text(umbrella_manifests))


def expect(ini: configparser.RawConfigParser, section: str, key: str, value: str) -> None:
    got = ini.get(section, key, fallback=None)
    where = f"Secret/{GOGS_CONFIG} app.ini [{section}] {key}"
    assert got is not None, f"{where} is missing"
    assert got == value, f"{where} = {got!r}, expected {value!r}"


def test_no_root_url_and_no_service_section(ini: configparser.RawConfigParser) -> None:
    assert not ini.has_option("server", "ROOT_URL"), f"Secret/{GOGS_CONFIG} app.ini sets [server] ROOT_URL"
    assert not ini.has_section("service"), f"Secret/{GOGS_CONFIG} app.ini has a [service] section"
    for section in ini.sections():
        assert "ROOT_URL" not in ini.options(section), f"app.ini [{section}] sets ROOT_URL"


def test_required_settings(ini: configparser.RawConfigParser, values: dict[str, Any]) -> None:
    host = contract.host("git", values)
    expect(ini, "__top__", "RUN_MODE", "prod")
    expect(ini, "__top__", "RUN_USER", "git")
    expect(ini, "security", "INSTALL_LOCK", "true")
    expect(ini, "server", "EXTERNAL_URL", f"https://{host}/")
    expect(ini, "server", "DOMAIN", host)
    expect(ini, "auth", "DISABLE_REGISTRATION", "true")
    expect(ini, "webhook", "SKIP_TLS_VERIFY", "false")
    expect(ini, "security", "LOCAL_NETWORK_ALLOWLIST", f"{RELEASE}-drone.{NAMESPACE}.svc")
    # The pipeline template deploys the repository's default branch: new repositories default to main.
    expect(ini, "repository", "DEFAULT_BRANCH", dig(values, "gogs.config.defaultBranch", "main"))


def test_secret_key_comes_from_the_environment(
    ini: configparser.RawConfigParser, umbrella_manifests: list[mf.Manifest]
) -> None:
    expect(ini, "security", "SECRET_KEY", "${GOGS_SECRET_KEY}")
    dep = mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-gogs")
    ref = secret_source(dep, "gogs", "GOGS_SECRET_KEY")
    assert ref and ref[1] == "secret-key", (
        f"{dep.ref} containers[gogs]: GOGS_SECRET_KEY must come from a Secret (key secret-key), got {ref}"
    )
    if ref[0] == f"{RELEASE}-gogs":  # generated (else gogs.secretKey.existingSecret names the user's)
        mf.get(umbrella_manifests, "Secret", ref[0])


def test_database(
    ini: configparser.RawConfigParser, values: dict[str, Any], umbrella_manifests: list[mf.Manifest]
) -> None:
    if dig(values, "gogs.database.type", "sqlite3") == "postgres":
        pg = dig(values, "gogs.database.postgres")
        expect(ini, "database", "TYPE", "postgres")
        expect(ini, "database", "HOST", f"{pg['host']}:{pg.get('port', 5432)}")
        expect(ini, "database", "PASSWORD", "${GOGS_DATABASE_PASSWORD}")
        dep = mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-gogs")
        ref = secret_source(dep, "gogs", "GOGS_DATABASE_PASSWORD")
        assert ref == (pg["existingSecret"], pg.get("passwordKey", "password")), (
            f"{dep.ref} containers[gogs]: GOGS_DATABASE_PASSWORD must read Secret {pg['existingSecret']}, "
            f"got {ref}"
        )
    else:
        expect(ini, "database", "TYPE", "sqlite3")
        path = ini.get("database", "PATH")
        assert path.startswith("/data/"), f"app.ini [database] PATH {path!r} must be on the /data volume"


def test_ssh(ini: configparser.RawConfigParser, values: dict[str, Any]) -> None:
    if dig(values, "gogs.ssh.enabled", False):
        expect(ini, "server", "START_SSH_SERVER", "true")
        expect(ini, "server", "SSH_LISTEN_PORT", "2222")
    else:
        expect(ini, "server", "DISABLE_SSH", "true")


def test_every_path_is_on_a_writable_volume(ini: configparser.RawConfigParser) -> None:
    # The root filesystem is read-only: anything Gogs writes must live under /data (the volume).
    for section in ini.sections():
        for key, value in ini.items(section):
            if key.endswith(("PATH", "ROOT", "ROOT_PATH")) and value.startswith("/"):
                assert value.startswith(("/data/", "/tmp/")), (
                    f"app.ini [{section}] {key} = {value!r} is not on /data"
                )


def test_standalone_render_parses(tmp_path: Path) -> None:
    """The subchart alone (its own defaults, no umbrella) renders a valid app.ini too."""
    from homeci.rendering import render

    from .conftest import KUBE_VERSION, UMBRELLA

    objs = render(
        UMBRELLA / "charts" / "gogs", release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    ini = parse_ini(app_ini_text(objs))
    expect(ini, "server", "EXTERNAL_URL", "https://git.homeci.localhost/")
    dep = mf.get(objs, "Deployment", f"{RELEASE}-gogs")
    mounts = [m["mountPath"] for _, c in dep.containers() for m in c.get("volumeMounts", [])]
    assert "/etc/ssl/certs/homeci-ca.crt" not in mounts, "standalone Gogs must not mount the umbrella CA"
