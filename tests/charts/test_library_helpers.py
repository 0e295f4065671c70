"""The library chart's helpers check their arguments: a tiny test chart that depends on charts/homeci-lib
calls each helper wrongly (an argument missing, of the wrong kind, unknown, or the root context where a
dict belongs and back) and the render fails with one sentence naming the helper and the argument. The
same chart checks what the NetworkPolicy peer and the registry host helpers render."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci.helm import Helm, HelmError

from .conftest import KUBE_VERSION, NAMESPACE, RELEASE, ROOT
from .refusals import GO_CRASH, fail_sentence, text_of

LIBRARY = ROOT / "charts" / "homeci-lib"

# case -> (the call, the argument the sentence must name, words it must contain)
CASES: dict[str, tuple[str, str, str]] = {
    "fullname-without-component": ('include "homeci-lib.fullname" (dict "ctx" .)', "component", "is missing"),
    "fullname-empty-component": ('include "homeci-lib.fullname" (dict "ctx" . "component" "")', "component",
                                 "but it is an empty string"),
    "fullname-component-list": ('include "homeci-lib.fullname" (dict "ctx" . "component" (list "a"))',
                                "component", "but it is a list"),
    "fullname-without-ctx": ('include "homeci-lib.fullname" (dict "component" "gogs")', "ctx", "is missing"),
    "fullname-ctx-values": ('include "homeci-lib.fullname" (dict "ctx" .Values "component" "gogs")', "ctx",
                            "the chart's root context"),
    "fullname-release-number": ('include "homeci-lib.fullname" (dict "ctx" . "component" "x" "release" 3)',
                                "release", "to be a string"),
    "fullname-unknown-argument": ('include "homeci-lib.fullname" (dict "ctx" . "component" "x" "compnent" 1)',
                                  "compnent", "has no argument"),
    "fullname-root-context": ('include "homeci-lib.fullname" .', "fullname", "got the chart's root context"),
    "fullname-string": ('include "homeci-lib.fullname" "gogs"', "fullname", "got a string"),
    "podDisruptionBudget-without-labels": (
        'include "homeci-lib.podDisruptionBudget" (dict "ctx" . "pdb" (dict) "component" "gogs")', "labels",
        "is missing"),
    "serviceHost-without-component": ('include "homeci-lib.serviceHost" (dict "ctx" .)', "component",
                                      "is missing"),
    "checkDomain-without-key": ('include "homeci-lib.checkDomain" (dict "domain" "home.lan")', "key",
                                "is missing"),
    "host-without-component": ('include "homeci-lib.host" (dict "ctx" .)', "component", "is missing"),
    "hostName-without-domain": ('include "homeci-lib.hostName" (dict "label" "git")', "domain", "is missing"),
    "registryHost-label-alone": ('include "homeci-lib.registryHost" (dict "ctx" . "label" "r")', "domain",
                                 "needs both"),
    "registryHost-host-map": ('include "homeci-lib.registryHost" (dict "ctx" . "host" (dict))', "host",
                              "but it is a dict"),
    "ingressClass-without-ctx": ('include "homeci-lib.ingressClass" (dict "className" "x")', "ctx",
                                 "is missing"),
    "image-without-key": ('include "homeci-lib.image" (dict "ctx" . "image" .Values.image)', "key",
                          "is missing"),
    "image-string": ('include "homeci-lib.image" (dict "ctx" . "image" "gogs:1" "key" "image")', "image",
                     "to be a dict"),
    "selectorLabels-name-number": ('include "homeci-lib.selectorLabels" (dict "ctx" . "name" 1)', "name",
                                   "to be a string"),
    "labels-version-list": ('include "homeci-lib.labels" (dict "ctx" . "version" (list 1))', "version",
                            "a string or a number"),
    "servingSecret-alone-list": ('include "homeci-lib.servingSecret" (dict "ctx" . "alone" (list))', "alone",
                                 "to be a string"),
    "adminSecret-without-ctx": ('include "homeci-lib.adminSecret" (dict "existingSecret" "")', "ctx",
                                "is missing"),
    "podSecurityContext-without-uid": ('include "homeci-lib.podSecurityContext" (dict "fsGroup" true)', "uid",
                                       "is missing"),
    "podSecurityContext-uid-string": ('include "homeci-lib.podSecurityContext" (dict "uid" "1000")', "uid",
                                      "to be a number"),
    "containerSecurityContext-flag-string": (
        'include "homeci-lib.containerSecurityContext" (dict "uid" 1 "readOnlyRootFilesystem" "yes")',
        "readOnlyRootFilesystem", "true or false"),
    "storageClass-persistence-string": ('include "homeci-lib.storageClass" (dict "ctx" . "persistence" "x")',
                                        "persistence", "to be a dict"),
    "nodeCADir-without-hostDir": ('include "homeci-lib.nodeCADir" (dict "ctx" .)', "hostDir", "is missing"),
    "keptSecretData-generate-list": (
        'include "homeci-lib.keptSecretData" (dict "ctx" . "name" "s" "generate" (list))', "generate",
        "to be a dict"),
    "secretsChecksum-secrets-dict": ('include "homeci-lib.secretsChecksum" (dict "ctx" . "secrets" (dict))',
                                     "secrets", "to be a list"),
    "adminUsernameEntry-existingSecret-number": (
        'include "homeci-lib.adminUsernameEntry" (dict "ctx" . "existingSecret" 5)', "existingSecret",
        "to be a string"),
    "podPeer-without-components": ('include "homeci-lib.podPeer" (dict "ctx" .)', "components", "is missing"),
    "podPeer-unknown-component": ('include "homeci-lib.podPeer" (dict "ctx" . "components" (list "gti"))',
                                  "gti", "no homeci pod has"),
    "podPeer-no-component": ('include "homeci-lib.podPeer" (dict "ctx" . "components" (list))', "component",
                             "at least one"),
    **{f"{name}-dict": (f'include "homeci-lib.{name}" (dict "ctx" .)', name, "takes the chart's root context")
       for name in ("domain", "imagePullSecrets", "caConfigMap", "buildNamespace", "tlsSecret", "umbrella",
                    "valuesPrefix", "online", "networkPolicy", "ingressPeer")},
}

PROBES: dict[str, str] = {
    "podPeer-one": 'include "homeci-lib.podPeer" (dict "ctx" . "components" (list "git"))',
    "podPeer-several": 'include "homeci-lib.podPeer" (dict "ctx" . "components" (list "ci-server" "git"))',
    "registryHost-global": 'include "homeci-lib.registryHost" (dict "ctx" .)',
    "registryHost-stack": 'include "homeci-lib.registryHost" (dict "ctx" . "label" "images" "domain" "lab")',
    "registryHost-explicit": 'include "homeci-lib.registryHost" (dict "ctx" . "host" "r.example" "label" "x" '
                             '"domain" "y")',
    "fullname-ok": 'include "homeci-lib.fullname" (dict "ctx" . "component" "gogs")',
}

VALUES = {"case": "", "global": {"domain": "home.lan", "hosts": {"registry": "registry"}},
          "image": {"registry": "docker.io", "repository": "library/python", "tag": "3.13", "digest": ""}}


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("probe") / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "charts").mkdir()
    (chart / "charts" / "homeci-lib").symlink_to(os.path.relpath(LIBRARY, chart / "charts"))
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "probe", "version": "0.1.0",
        "dependencies": [{"name": "homeci-lib", "version": "0.1.0",
                          "repository": f"file://{os.path.relpath(LIBRARY, chart)}"}]}))
    (chart / "values.yaml").write_text(yaml.safe_dump(VALUES))
    calls = {**{case: spec[0] for case, spec in CASES.items()}, **PROBES}
    body = "".join(f'    {{{{- if eq .Values.case "{case}" }}}}\n    {{{{- {call} | nindent 4 }}}}\n'
                   f"    {{{{- end }}}}\n" for case, call in calls.items())
    (chart / "templates" / "probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n  out: |\n" + body)
    return chart


def _render(chart: Path, case: str, major: int = 3) -> str:
    return Helm(major).template(chart, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION,
                                set_values=[f"case={case}"])


def _out(chart: Path, case: str) -> Any:
    docs = [d for d in yaml.safe_load_all(_render(chart, case)) if d]
    return docs[0]["data"]["out"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrong_call_fails_naming_helper_and_argument(probe_chart: Path, case: str) -> None:
    call, argument, words = CASES[case]
    helper = re.search(r'"(homeci-lib\.[A-Za-z]+)"', call)
    assert helper
    with pytest.raises(HelmError) as info:
        _render(probe_chart, case)
    message = text_of(info.value)
    assert not GO_CRASH.search(message), f"{case}: a template crash instead of a sentence: {message}"
    sentence = fail_sentence(message)
    assert sentence.startswith(f"{helper.group(1)} "), f"{case}: does not name the helper: {sentence}"
    assert argument in sentence and words in sentence, f"{case}: {argument!r}/{words!r} not in {sentence!r}"
    assert "\n" not in sentence, f"{case}: more than one line: {sentence!r}"
    assert any(fix in sentence for fix in ("call it as", "use one of", "pass one")), (
        f"{case}: the sentence does not say how to call it: {sentence}")


def test_helm_4_fails_the_same_way(probe_chart: Path) -> None:
    with pytest.raises(HelmError) as info:
        _render(probe_chart, "fullname-without-component", major=4)
    sentence = fail_sentence(text_of(info.value))
    assert sentence.startswith('homeci-lib.fullname needs argument "component"'), sentence


def test_right_calls_render(probe_chart: Path) -> None:
    assert _out(probe_chart, "fullname-ok").strip() == f"{RELEASE}-gogs"
    assert _out(probe_chart, "registryHost-global").strip() == "registry.home.lan"
    assert _out(probe_chart, "registryHost-stack").strip() == "images.lab"
    assert _out(probe_chart, "registryHost-explicit").strip() == "r.example"
    assert yaml.safe_load(_out(probe_chart, "podPeer-one")) == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "git"}}}]
    assert yaml.safe_load(_out(probe_chart, "podPeer-several")) == [{"podSelector": {
        "matchLabels": {"app.kubernetes.io/instance": RELEASE},
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                              "values": ["ci-server", "git"]}]}}]


def test_every_helper_checks_its_arguments() -> None:
    """Each helper of the library starts with homeci-lib.args under its own name (the three checking
    helpers themselves aside), and the test above calls every one of them wrongly."""
    unchecked, untested = [], []
    called = {re.search(r'"(homeci-lib\.[A-Za-z]+)"', call).group(1)  # type: ignore[union-attr]
              for call, _arg, _words in CASES.values()}
    for path in sorted((LIBRARY / "templates").glob("*.tpl")):
        text = path.read_text()
        for match in re.finditer(r'\{\{- define "(homeci-lib\.[A-Za-z]+)" -\}\}\n(.*)', text):
            name, first = match.group(1), match.group(2)
            if name in ("homeci-lib.args", "homeci-lib.isContext", "homeci-lib.kindName"):
                continue
            if not first.startswith(f'{{{{- include "homeci-lib.args" (list "{name}" . '):
                unchecked.append(f"{path.name}: {name}")
            if name not in called:
                untested.append(name)
    assert not unchecked, f"helpers that do not check their arguments first: {unchecked}"
    assert not untested, f"helpers no case of CASES calls wrongly: {untested}"
