"""Secrets never churn: with the CA and every credential given as existing Secrets two renders are
byte-identical (GitOps: helm template / Argo CD); generated material never leaks into workloads; nothing
secret appears literally in a pod spec or a ConfigMap."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from homeci import manifests as mf
from homeci.helm import Helm

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, UMBRELLA, containers, render_umbrella

EXISTING = UMBRELLA / "ci" / "existing-ca-values.yaml"
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|SECRETKEY|ACCESSKEY)", re.I)
# Environment variables whose names look secret but whose values are not (name -> reason).
NOT_SECRET_ENV = {
    "DRONE_GIT_ALWAYS_AUTH": "a boolean switch",
    "DRONE_SECRET_PLUGIN_ENDPOINT": "a URL (the secret itself comes from a Secret)",
    "CA_SECRET": "the name of the CA's Secret (the certificate program reads it through the API)",
    "TLS_SECRET": "the name of the serving certificate's Secret",
    "AUTH_SECRET": ("the name of the registry's credentials Secret (the rehash program reads it through "
                    "the API)"),
    "CREATE_SERVING_SECRET": "a boolean switch",
}
SECRET_TEXT = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\$2[aby]\$\d\d\$")


def _render_twice(major: int) -> tuple[str, str]:
    helm = Helm(major)
    one = helm.template(
        UMBRELLA, release=RELEASE, namespace=NAMESPACE, values_files=[EXISTING], kube_version=KUBE_VERSION
    )
    two = helm.template(
        UMBRELLA, release=RELEASE, namespace=NAMESPACE, values_files=[EXISTING], kube_version=KUBE_VERSION
    )
    return one, two


@pytest.mark.parametrize("major", [3, 4])
def test_existing_secrets_render_byte_identical(major: int) -> None:
    one, two = _render_twice(major)
    if one == two:
        return
    first = {m.ref: m.obj for m in mf.parse(one)}
    second = {m.ref: m.obj for m in mf.parse(two)}
    changed = sorted(ref for ref in first.keys() | second.keys() if first.get(ref) != second.get(ref))
    pytest.fail(
        f"Helm {major}: two renders of {EXISTING.name} differ in {changed}: every generated value "
        "must come from an existing Secret in this scenario"
    )


def test_existing_secrets_scenario_generates_nothing() -> None:
    objs = render_umbrella([EXISTING])
    generated = [
        m.ref
        for m in objs
        if m.kind == "Secret"
        and m.name in (f"{RELEASE}-admin", f"{RELEASE}-registry-auth")
    ]
    assert not generated, f"{generated} rendered although {EXISTING.name} gives them as existing Secrets"


def _without_secrets_checksum(m: mf.Manifest) -> dict[str, Any]:
    """The object without its pods' ``checksum/secrets`` annotation: the hash of the Secrets a program reads
    only at start, generated ones included, so it differs between two offline renders by design. On a real
    upgrade lookup returns the same data and so the same hash: tests/charts/test_rotation.py checks that it
    is the hash of the data the same render writes, tests/sim/test_upgrade.py that nothing rolls."""
    obj = copy.deepcopy(m.obj)
    annotations = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    annotations.pop("checksum/secrets", None)
    return obj


def test_generated_material_does_not_roll_workloads() -> None:
    """Two renders with generated secrets differ only in Secrets: pod templates (checksums of values
    included) stay the same, so a `helm upgrade` reusing the Secrets through lookup restarts nothing."""
    helm = Helm(3)

    def objects() -> dict[tuple[str, str | None, str], dict[str, object]]:
        out = helm.template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION)
        return {(m.kind, m.namespace, m.name): _without_secrets_checksum(m) for m in mf.parse(out)}

    one, two = objects(), objects()
    # No CA or certificate is rendered any more (the certificate program makes them in the cluster), so
    # everything but the generated credentials' Secrets (and the checksum of them) is the same.
    changed = sorted(f"{k[0]}/{k[1]}/{k[2]}" for k, obj in one.items()
                     if k[0] != "Secret" and two.get(k) != obj)
    assert not changed, f"{changed} change from render to render (a checksum of generated material?)"


def test_no_literal_secrets_in_pods_or_configmaps(umbrella_manifests: list[mf.Manifest]) -> None:
    problems: list[str] = []
    for w, path, c in containers(umbrella_manifests):
        for env in c.get("env") or []:
            name = str(env.get("name", ""))
            if (
                SECRET_NAME.search(name)
                and "value" in env
                and env["value"] not in ("", None)
                and name not in NOT_SECRET_ENV
                and not str(env["value"]).startswith("/")
            ):
                problems.append(f"{w.ref} {path}.env[{name}] has a literal value; use secretKeyRef")
        for arg in [*(c.get("args") or []), *(c.get("command") or [])]:
            if SECRET_TEXT.search(str(arg)):
                problems.append(f"{w.ref} {path} has key or hash material in its command line")
    for cm in mf.by_kind(umbrella_manifests, "ConfigMap"):
        for key, value in (cm.obj.get("data") or {}).items():
            if SECRET_TEXT.search(str(value)):
                problems.append(f"{cm.ref} data[{key}] contains a private key or password hash")
    assert not problems, "\n".join(problems)
