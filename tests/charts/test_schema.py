"""values.schema.json rejects bad input with a message naming the key — checked with jsonschema directly
and by asserting that Helm 3 and Helm 4 refuse to render. Cross-field rules (`fail`) likewise."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from homeci.helm import Helm, HelmError

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, SCENARIOS, UMBRELLA, scenario_values

SUBCHARTS = ("traefik", "registry", "gogs", "drone")

# case id -> (values override, words the error must contain). Each is one user mistake.
SCHEMA_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "empty-domain": ({"global": {"domain": ""}}, ("domain",)),
    "invalid-domain": ({"global": {"domain": "Home_Lab!"}}, ("domain",)),
    "domain-with-scheme": ({"global": {"domain": "https://home.example"}}, ("domain",)),
    "invalid-host-label": ({"global": {"hosts": {"git": "git.sub"}}}, ("git",)),
    "unknown-top-level-key": ({"regsitry": {"enabled": True}}, ("regsitry",)),
    "unknown-global-key": ({"global": {"domian": "home.example"}}, ("domian",)),
    "unknown-subchart-key": ({"registry": {"persistance": {"size": "5Gi"}}}, ("persistance",)),
    "unknown-ca-mode": ({"global": {"tls": {"mode": "selfsigned"}}}, ("mode",)),
    "wrong-type-bool": ({"global": {"networkPolicy": {"enabled": "yes"}}}, ("enabled",)),
    "wrong-type-list": ({"global": {"imagePullSecrets": "regcred"}}, ("imagePullSecrets",)),
    "wrong-type-size": ({"registry": {"persistence": {"size": 10}}}, ("size",)),
    "negative-size": ({"registry": {"persistence": {"size": "-10Gi"}}}, ("size",)),
    "negative-memory": ({"traefik": {"resources": {"limits": {"memory": "-256Mi"}}}}, ("memory",)),
    "negative-validity": ({"certificates": {"servingValidityDays": -1}}, ("servingValidityDays",)),
    "unknown-service-type": ({"traefik": {"service": {"type": "Ingress"}}}, ("type",)),
    "latest-image": ({"registry": {"image": {"tag": "latest"}}}, ("tag",)),
    "bad-timeout": ({"traefik": {"entryPoints": {"readTimeout": "ten minutes"}}}, ("readTimeout",)),
    "bad-ip-address": ({"certificates": {"extraIpAddresses": ["300.1.2.3"]}}, ("extraIpAddresses",)),
    "bad-email": ({"global": {"admin": {"email": "not-an-email"}}}, ("email",)),
}

# case id -> (values override, words of the one-sentence `fail`). The schema accepts these.
RULE_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "existing-ca-without-secret": (
        {"global": {"tls": {"mode": "existingSecret"}}},
        ("global.tls.existingSecret",),
    ),
    "existing-ca-offline-without-cert": (
        {"global": {"tls": {"mode": "existingSecret", "existingSecret": "my-ca"}}},
        ("certificates.caCertificate",),
    ),
    "secret-without-mode": ({"global": {"tls": {"existingSecret": "my-ca"}}}, ("global.tls.mode",)),
    "duplicate-host-labels": ({"global": {"hosts": {"git": "code", "ci": "code"}}}, ("global.hosts",)),
    "renew-after-expiry": (
        {"certificates": {"servingValidityDays": 30, "renewBeforeDays": 30}},
        ("certificates.renewBeforeDays",),
    ),
    "no-ingress-controller": ({"traefik": {"enabled": False}}, ("global.ingressClass",)),
    "s3-without-bucket": ({"registry": {"storage": {"type": "s3"}}}, ("registry.storage.s3.bucket",)),
}


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = _merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    assert isinstance(data, dict)
    return data


def schema_errors(override: dict[str, Any]) -> list[str]:
    """Validate like Helm does: the umbrella's values against its schema, and each enabled subchart's
    section (its defaults, then the umbrella's section, then the override; plus global) against its own."""
    values = _merge(_load(UMBRELLA / "values.yaml"), override)
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in jsonschema.Draft7Validator(
            json.loads((UMBRELLA / "values.schema.json").read_text()),
            format_checker=jsonschema.FormatChecker(),
        ).iter_errors(values)
    ]
    for sub in SUBCHARTS:
        directory = UMBRELLA / "charts" / sub
        section = values.get(sub) or {}
        if not section.get("enabled", True) or not (directory / "values.schema.json").exists():
            continue
        merged = _merge(_load(directory / "values.yaml"), section)
        merged["global"] = values.get("global", {})
        schema = json.loads((directory / "values.schema.json").read_text())
        errors += [
            f"{sub}.{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in jsonschema.Draft7Validator(
                schema, format_checker=jsonschema.FormatChecker()
            ).iter_errors(merged)
        ]
    return errors


def helm_error(major: int, override: dict[str, Any], tmp_path: Path) -> str:
    f = tmp_path / f"values-helm{major}.yaml"
    f.write_text(yaml.safe_dump(override))
    with pytest.raises(HelmError) as info:
        Helm(major).template(
            UMBRELLA, release=RELEASE, namespace=NAMESPACE, values_files=[f], kube_version=KUBE_VERSION
        )
    return f"{info.value} {info.value.stderr}"


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_rejects_with_jsonschema(case: str) -> None:
    override, words = SCHEMA_CASES[case]
    errors = schema_errors(override)
    assert errors, f"{case}: values.schema.json accepts {override}"
    text = "\n".join(errors)
    for word in words:
        assert word in text, f"{case}: schema error does not name {word!r}: {text}"


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_helm_refuses_bad_values(case: str, major: int, tmp_path: Path) -> None:
    override, words = SCHEMA_CASES[case]
    message = helm_error(major, override, tmp_path)
    for word in words:
        assert word in message, f"{case}: Helm {major} error does not name {word!r}: {message}"


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_cross_field_rules_fail_in_one_sentence(case: str, major: int, tmp_path: Path) -> None:
    override, words = RULE_CASES[case]
    assert not schema_errors(override), (
        f"{case}: expected the schema to accept it (a template rule rejects it)"
    )
    message = helm_error(major, override, tmp_path)
    for word in words:
        assert word in message, f"{case}: Helm {major} error does not name {word!r}: {message}"


def test_defaults_are_valid() -> None:
    assert schema_errors({}) == []


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenarios_are_valid(path: Path) -> None:
    errors = schema_errors(scenario_values(path))
    assert not errors, f"{path.name}: " + "; ".join(errors)


def test_every_schema_declares_global() -> None:
    for sub in SUBCHARTS:
        schema = json.loads((UMBRELLA / "charts" / sub / "values.schema.json").read_text())
        assert schema.get("properties", {}).get("global", {}).get("type") == "object", (
            f"charts/{sub}/values.schema.json must declare properties.global (type object)"
        )
        assert schema.get("$schema", "").startswith("http://json-schema.org/draft-07/"), (
            f"charts/{sub}/values.schema.json must be draft-07 (Helm 3 validates with a draft-07 library)"
        )


KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<item>- )?(?P<key>[A-Za-z0-9_.-]+):(\s|$)")


def undocumented_keys(path: Path) -> list[str]:
    """Keys in a values.yaml without a comment line right above them (list entries and keys inside
    block scalars or flow collections are exempt: they are data, documented by their parent key)."""
    problems: list[str] = []
    lines = path.read_text().splitlines()
    block_indent: int | None = None
    list_indent: int | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if stripped and indent <= block_indent:
                block_indent = None
            else:
                continue
        if list_indent is not None:
            if stripped and indent <= list_indent and not stripped.startswith("- "):
                list_indent = None
            else:
                continue
        match = KEY_LINE.match(line)
        if not match or stripped.startswith("#"):
            continue
        if match.group("item"):
            list_indent = indent
            continue
        previous = next((ln for ln in reversed(lines[: number - 1]) if ln.strip()), "")
        if not previous.strip().startswith("#"):
            problems.append(f"{path.relative_to(UMBRELLA.parent)}:{number} {match.group('key')}")
        if re.search(r":\s*[|>][-+]?\s*$", line):
            block_indent = indent
    return problems


@pytest.mark.parametrize("chart", ["homeci-umbrella", "traefik", "registry"])
def test_every_value_is_documented(chart: str) -> None:
    directory = UMBRELLA if chart == "homeci-umbrella" else UMBRELLA / "charts" / chart
    missing = undocumented_keys(directory / "values.yaml")
    assert not missing, "values keys without a comment right above them: " + ", ".join(missing)
