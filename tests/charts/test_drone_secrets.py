"""No secret reaches a pod spec or a ConfigMap literally; the Gogs/Drone secrets are generated once
and kept; no Service is named `drone-server` (Drone refuses to start next to one)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from homeci import manifests as mf

from .conftest import RELEASE, dig, workloads

# Keys of rendered Secrets whose values are identities or public material, not secrets.
NOT_SECRET_KEYS = {"username", "email", "ca.crt", "tls.crt", "app.ini"}
SENSITIVE_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|DATASOURCE|USER_CREATE)", re.IGNORECASE)
# generated Secret -> (values key that replaces it with an existing Secret, keys)
KEPT = {
    f"{RELEASE}-drone": ("drone.server.existingSecret", ("rpc-secret", "database-secret", "cookie-secret")),
    f"{RELEASE}-drone-machine": ("drone.machine.existingSecret", ("token",)),
    f"{RELEASE}-gogs": ("gogs.secretKey.existingSecret", ("secret-key",)),
}


def secret_values(objs: list[mf.Manifest]) -> dict[str, str]:
    """value -> "Secret/name key" for every secret-looking value of every rendered Secret."""
    out: dict[str, str] = {}
    for s in mf.by_kind(objs, "Secret"):
        items = {
            k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (s.obj.get("data") or {}).items()
        }
        items.update(s.obj.get("stringData") or {})
        for key, value in items.items():
            if key in NOT_SECRET_KEYS or len(value) < 8:
                continue
            out[value] = f"{s.ref} key {key}"
            for line in value.splitlines():  # e.g. htpasswd lines, config files
                if len(line.strip()) >= 16:
                    out[line.strip()] = f"{s.ref} key {key}"
    return out


def test_no_secret_literal_in_pod_specs_or_configmaps(umbrella_manifests: list[mf.Manifest]) -> None:
    secrets = secret_values(umbrella_manifests)
    if not secrets:
        pytest.skip("every secret comes from an existing Secret in this scenario: nothing rendered to leak")
    haystacks = [(w.ref + " pod spec", json.dumps(w.pod_spec())) for w in workloads(umbrella_manifests)]
    haystacks += [
        (c.ref, json.dumps(c.obj.get("data") or {})) for c in mf.by_kind(umbrella_manifests, "ConfigMap")
    ]
    leaks = [
        f"{where} contains the value of {origin}"
        for where, text in haystacks
        for value, origin in secrets.items()
        if json.dumps(value)[1:-1] in text
    ]
    assert not leaks, "\n".join(leaks)


def test_sensitive_env_comes_from_secrets(umbrella_manifests: list[mf.Manifest]) -> None:
    problems = []
    for w in workloads(umbrella_manifests):
        if not w.name.startswith((f"{RELEASE}-gogs", f"{RELEASE}-drone")):
            continue
        for path, c in w.containers():
            for e in c.get("env") or []:
                if not SENSITIVE_ENV.search(e["name"]) or e["name"] == "DRONE_COOKIE_SECURE":
                    continue
                if "valueFrom" in e:
                    if "secretKeyRef" not in e["valueFrom"]:
                        problems.append(f"{w.ref} {path}.env[{e['name']}] must use secretKeyRef")
                    continue
                # A literal is only allowed when every secret part is a $(VAR) reference (or, for a
                # SQLite data source, a file path).
                value = str(e.get("value", ""))
                if "$(" not in value and not value.startswith("/"):
                    problems.append(f"{w.ref} {path}.env[{e['name']}] = {value!r} is a literal")
    assert not problems, "\n".join(problems)


def test_generated_secrets_are_kept(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    rendered = {m.name for m in mf.by_kind(umbrella_manifests, "Secret")}
    for name, (existing_key, keys) in KEPT.items():
        if dig(values, existing_key):
            assert name not in rendered, (
                f"Secret/{name} rendered although {existing_key} names an existing Secret"
            )
            continue
        s = mf.get(umbrella_manifests, "Secret", name)
        assert s.annotations.get("helm.sh/resource-policy") == "keep", (
            f"{s.ref} metadata.annotations[helm.sh/resource-policy] must be keep (generated once)"
        )
        for key in keys:
            assert (s.obj.get("data") or {}).get(key), f"{s.ref} data.{key} is empty"
    if dig(values, "drone.server.existingSecret"):
        return
    db = base64.b64decode(
        mf.get(umbrella_manifests, "Secret", f"{RELEASE}-drone").obj["data"]["database-secret"]
    )
    assert len(db) == 32, (
        f"Secret/{RELEASE}-drone data.database-secret must be 32 bytes (AES-256), is {len(db)}"
    )


def test_no_service_named_drone_server(umbrella_manifests: list[mf.Manifest]) -> None:
    names = [m.name for m in mf.by_kind(umbrella_manifests, "Service")]
    assert "drone-server" not in names, "Service/drone-server breaks Drone (DRONE_SERVER_PORT=tcp://...)"


@pytest.mark.parametrize("name", [f"{RELEASE}-gogs", f"{RELEASE}-drone", f"{RELEASE}-drone-runner"])
def test_service_links_off(umbrella_manifests: list[mf.Manifest], name: str) -> None:
    spec: dict[str, Any] = mf.get(umbrella_manifests, "Deployment", name).pod_spec() or {}
    assert spec.get("enableServiceLinks") is False, f"Deployment/{name} spec.template.spec.enableServiceLinks"
