"""values.schema.json rejects bad input with a message naming the key — checked with jsonschema directly
and by asserting that Helm 3 and Helm 4 refuse to render. Rules the schema cannot state readably (`fail`)
refuse in one sentence that names the key, what is wrong and the fix; never a Go template crash."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from homeci.helm import Helm, HelmError

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, ROOT, SCENARIOS, UMBRELLA, scenario_values
from .refusals import GO_CRASH, SCHEMA_REFUSAL, fail_sentence, sentence_problems, text_of

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
    "bad-timeout": ({"traefik": {"entryPoints": {"readTimeout": "ten minutes"}}}, ("readTimeout",)),
    "bad-ip-address": ({"certificates": {"extraIpAddresses": ["300.1.2.3"]}}, ("extraIpAddresses",)),
    "bad-email": ({"global": {"admin": {"email": "not-an-email"}}}, ("email",)),
    # issue 12: one quantity rule everywhere (Kubernetes' grammar, above zero)
    "zero-size": ({"gogs": {"persistence": {"size": "0Gi"}}}, ("size",)),
    "zero-drone-size": ({"drone": {"server": {"persistence": {"size": "0Mi"}}}}, ("size",)),
    "zero-memory": ({"registry": {"resources": {"requests": {"memory": "0"}}}}, ("memory",)),
    "quantity-unknown-suffix": ({"traefik": {"resources": {"limits": {"memory": "10foo"}}}}, ("memory",)),
    "quantity-two-points": ({"drone": {"server": {"resources": {"limits": {"cpu": "1.5.5"}}}}}, ("cpu",)),
    "quantity-upper-k": ({"nodeTrust": {"resources": {"limits": {"memory": "48K"}}}}, ("memory",)),
    "quantity-negative-number": ({"tests": {"resources": {"limits": {"cpu": -1}}}}, ("cpu",)),
    # image digests and tags
    "digest-too-short": ({"registry": {"image": {"digest": "sha256:abc"}}}, ("digest",)),
    "digest-without-algorithm": ({"gogs": {"image": {"digest": "0" * 64}}}, ("digest",)),
    "digest-upper-case": ({"nodeTrust": {"image": {"digest": "sha256:" + "A" * 64}}}, ("digest",)),
    "tag-with-space": ({"drone": {"server": {"image": {"tag": "2.28 beta"}}}}, ("tag",)),
    "tag-as-number": ({"drone": {"runner": {"placeholderImage": {"tag": 1}}}}, ("tag",)),
    "image-as-string": ({"drone": {"runner": {"cloneImage": "drone/git:1.2.1"}}}, ("cloneImage",)),
    "repository-with-tag": ({"tests": {"image": {"repository": "python:3.13"}}}, ("repository",)),
    # types and nulls (a null removes the key in Helm: the schema requires every key values.yaml has)
    "float-for-integer": ({"certificates": {"caValidityDays": 3650.5}}, ("caValidityDays",)),
    "null-section": ({"global": {"tls": None}}, ("tls",)),
    "null-subchart-section": ({"drone": {"server": None}}, ("server",)),
    "null-value": ({"global": {"domain": None}}, ("domain",)),
    "null-image": ({"nodeTrust": {"image": None}}, ("image",)),
    "privileged-bridge-port": ({"drone": {"server": {"bridge": {"ports": {"hooks": 80}}}}}, ("hooks",)),
    "unknown-bridge-key": ({"drone": {"server": {"bridge": {"enabled": False}}}}, ("enabled",)),
    "renewal-schedule-word": ({"certificates": {"renewal": {"schedule": "daily"}}}, ("schedule",)),
    "renewal-unknown-key": ({"certificates": {"renewal": {"enabled": False}}}, ("renewal",)),
}

# A CERTIFICATE block around base64 that is no DER certificate ("hello").
NOT_DER = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----"

# case id -> (values override, words of the one-sentence `fail`). The schema accepts these.
RULE_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "existing-ca-without-secret": (
        {"global": {"tls": {"mode": "existingSecret"}}},
        ("global.tls.existingSecret",),
    ),
    "secret-without-mode": ({"global": {"tls": {"existingSecret": "my-ca"}}}, ("global.tls.mode",)),
    "duplicate-host-labels": ({"global": {"hosts": {"git": "code", "ci": "code"}}}, ("global.hosts",)),
    "renew-after-expiry": (
        {"certificates": {"servingValidityDays": 30, "renewBeforeDays": 30}},
        ("certificates.renewBeforeDays",),
    ),
    "no-ingress-controller": ({"traefik": {"enabled": False}}, ("global.ingressClass",)),
    "s3-without-bucket": ({"registry": {"storage": {"type": "s3"}}}, ("registry.storage.s3.bucket",)),
    # issue 12: what the schema would only refuse with "'not' failed" or a bare pattern
    "ip-address-domain": ({"global": {"domain": "192.168.1.10"}}, ("global.domain", "192-168-1-10.sslip.io")),
    "numeric-top-level-domain": ({"global": {"domain": "lab.42"}}, ("global.domain", "all-numeric")),
    "moving-tag-mixed-case": ({"registry": {"image": {"tag": "Latest"}}}, ("registry.image.tag", "moving")),
    "moving-tag-lower-case": ({"traefik": {"image": {"tag": "latest"}}}, ("traefik.image.tag", "moving")),
    "moving-tag-gogs-edge": ({"gogs": {"image": {"tag": "edge"}}}, ("gogs.image.tag", "moving")),
    "moving-tag-placeholder": (
        {"drone": {"runner": {"placeholderImage": {"tag": "LATEST"}}}},
        ("drone.runner.placeholderImage.tag", "moving"),
    ),
    "moving-tag-clone": (
        {"drone": {"runner": {"cloneImage": {"tag": "latest"}}}},
        ("drone.runner.cloneImage.tag",),
    ),
    "moving-tag-bootstrap": (
        {"drone": {"bootstrap": {"image": {"tag": "latest"}}}},
        ("drone.bootstrap.image.tag",),
    ),
    "moving-tag-bridge": (
        {"drone": {"server": {"bridge": {"image": {"tag": "latest"}}}}},
        ("drone.server.bridge.image.tag",),
    ),
    "bridge-port-is-drones": (
        {"drone": {"server": {"bridge": {"ports": {"hooks": 8080}}}}},
        ("drone.server.bridge.ports.gogs", "8080"),
    ),
    "bridge-ports-equal": (
        {"drone": {"server": {"bridge": {"ports": {"gogs": 9000, "hooks": 9000}}}}},
        ("drone.server.bridge.ports.gogs", "9000"),
    ),
    "moving-tag-node-trust": ({"nodeTrust": {"image": {"tag": "latest"}}}, ("nodeTrust.image.tag", "moving")),
    "moving-tag-helm-test": ({"tests": {"image": {"tag": "Latest"}}}, ("tests.image.tag", "moving")),
    "bad-default-branch": (
        {"gogs": {"config": {"defaultBranch": "release..2"}}},
        ("gogs.config.defaultBranch",),
    ),
    "ca-certificate-in-generate-mode": (
        {"certificates": {"caCertificate": "<certificate>"}},
        ("certificates.caCertificate", "without its key", "global.tls.mode=existingSecret"),
    ),
    "ca-certificate-garbage": (
        {"certificates": {"caCertificate": "my CA"}},
        ("certificates.caCertificate", "not a PEM certificate"),
    ),
    "ca-certificate-not-der": (
        {"certificates": {"caCertificate": NOT_DER}},
        ("certificates.caCertificate", "not a certificate"),
    ),
    "ca-certificate-is-a-key": (
        {"certificates": {"caCertificate": "<key>"}},
        ("certificates.caCertificate", "private key but no certificate"),
    ),
    "ca-certificate-with-its-key": (
        {"certificates": {"caCertificate": "<key><certificate>"}},
        ("certificates.caCertificate", "contains a private key", "ConfigMap"),
    ),
}

# Offline existingSecret mode, where certificates.caCertificate is read (the CA cases above add to it,
# except the one about generate mode).
EXISTING_CA = {
    "global": {"tls": {"mode": "existingSecret", "existingSecret": "my-ca"}},
    "certificates": {"createServingSecret": False},
}


def _fixture_certificate() -> str:
    text = str(scenario_values(UMBRELLA / "ci" / "existing-ca-values.yaml")["certificates"]["caCertificate"])
    assert "BEGIN CERTIFICATE" in text
    return text


def _private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def rule_override(case: str) -> dict[str, Any]:
    """RULE_CASES[case]'s override with the certificate/key placeholders filled in."""
    override = copy.deepcopy(RULE_CASES[case][0])
    pem = (override.get("certificates") or {}).get("caCertificate")
    if isinstance(pem, str):
        pem = pem.replace("<certificate>", _fixture_certificate()).replace("<key>", _private_key_pem())
        override["certificates"]["caCertificate"] = pem
        if case != "ca-certificate-in-generate-mode":
            override = _merge(EXISTING_CA, override)
    return override




def _merge(base: Any, override: Any) -> Any:
    """Helm's coalescing: maps merge, anything else replaces, and a null removes the key."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            if v is None:
                out.pop(k, None)
            else:
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
        # layer by layer, so a null in the override also removes the subchart's own default
        merged = _merge(_load(directory / "values.yaml"), _load(UMBRELLA / "values.yaml").get(sub) or {})
        merged = _merge(merged, override.get(sub) or {})
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
    return text_of(info.value)


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
    override = rule_override(case)
    words = RULE_CASES[case][1]
    assert not schema_errors(override), (
        f"{case}: expected the schema to accept it (a template rule rejects it)"
    )
    message = helm_error(major, override, tmp_path)
    assert not GO_CRASH.search(message), f"{case}: Helm {major} shows a template crash: {message}"
    sentence = fail_sentence(message)
    for word in words:
        assert word in sentence, f"{case}: Helm {major} fail does not name {word!r}: {sentence}"
    problems = sentence_problems(sentence)
    assert not problems, f"{case}: Helm {major} fail {sentence!r} " + ", ".join(problems)


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_refusals_are_not_crashes(case: str, major: int, tmp_path: Path) -> None:
    """Every schema case is refused by values validation, before any template runs."""
    message = helm_error(major, SCHEMA_CASES[case][0], tmp_path)
    assert SCHEMA_REFUSAL in message, f"{case}: Helm {major} refused it after values validation: {message}"
    assert not GO_CRASH.search(message), f"{case}: Helm {major} shows a template crash: {message}"


@pytest.mark.parametrize("major", [3, 4])
def test_set_float_for_integer_names_the_key(major: int) -> None:
    """`--set key=1.5` reaches the schema as a string (Helm's --set types only integers): still refused
    by values validation, naming the key."""
    with pytest.raises(HelmError) as info:
        Helm(major).template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION,
                             set_values=["certificates.caValidityDays=3650.5"])
    message = f"{info.value} {info.value.stderr}"
    assert "caValidityDays" in message and "schema" in message, message


SUBCHART_SECTIONS = {"traefik": "image", "registry": "image", "gogs": "image", "drone": "server.image"}


@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("sub", sorted(SUBCHART_SECTIONS))
def test_subchart_alone_names_its_own_key(sub: str, major: int) -> None:
    """Installed on its own, a subchart's sentence names the key as that chart's values know it."""
    key = SUBCHART_SECTIONS[sub]
    with pytest.raises(HelmError) as info:
        Helm(major).template(UMBRELLA / "charts" / sub, release=RELEASE, namespace=NAMESPACE,
                             kube_version=KUBE_VERSION, set_values=[f"{key}.tag=Latest"])
    sentence = fail_sentence(text_of(info.value))
    assert sentence.startswith(f'{key}.tag "Latest" is a moving tag'), f"{sub} alone: {sentence}"


def _value_paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if value is not None and key != "global":
                yield (*prefix, key)
                yield from _value_paths(value, (*prefix, key))


def _nulled(path: tuple[str, ...]) -> dict[str, Any]:
    override: dict[str, Any] = {path[-1]: None}
    for key in reversed(path[:-1]):
        override = {key: override}
    return override


CHART_DIRS = {
    "homeci-umbrella": UMBRELLA,
    **{sub: UMBRELLA / "charts" / sub for sub in SUBCHARTS},
    "drone-pipelines": ROOT / "charts" / "drone-pipelines",
}


@pytest.mark.parametrize("chart", sorted(CHART_DIRS))
def test_null_for_any_value_is_refused_by_the_schema(chart: str) -> None:
    """`--set a.b=null` removes a.b (and its defaults): the schema must refuse that for every key the
    chart's values.yaml has, or templates would hit a nil pointer."""
    directory = CHART_DIRS[chart]
    defaults = _load(directory / "values.yaml")
    validator = jsonschema.Draft7Validator(json.loads((directory / "values.schema.json").read_text()))
    accepted = []
    for path in _value_paths(defaults):
        if chart == "homeci-umbrella":  # the umbrella's subchart sections reach the subcharts' schemas too
            messages = schema_errors(_nulled(path))
        else:
            messages = [e.message for e in validator.iter_errors(_merge(defaults, _nulled(path)))]
        if not any(path[-1] in m for m in messages):
            accepted.append(".".join(path))
    assert not accepted, f"charts/{chart}: values.schema.json accepts null for: " + ", ".join(accepted)


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
