"""homeci.manifests: parsing a helm template stream and finding objects and containers."""

from __future__ import annotations

import pytest

from homeci import manifests

STREAM = """\
---
# Source: demo/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  template:
    spec:
      initContainers:
        - name: setup
      containers:
        - name: app
          args:
            - |
              line
---
# Source: demo/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  app.ini: |
    [server]
"""


def test_parse_keeps_sources_and_block_scalars() -> None:
    objs = manifests.parse(STREAM)
    assert [(m.ref, m.source) for m in objs] == [
        ("Deployment/demo", "demo/templates/deploy.yaml"),
        ("ConfigMap/demo", "demo/templates/cm.yaml"),
    ]
    # the last block scalar of a document keeps its newline, as helm sends it
    assert objs[1].obj["data"]["app.ini"] == "[server]\n"


def test_container_by_name() -> None:
    deploy = manifests.get(manifests.parse(STREAM), "Deployment", "demo")
    assert deploy.container("app")["args"] == ["line\n"]
    with pytest.raises(AssertionError, match=r"^Deployment/demo has no container named setup$"):
        deploy.container("setup")  # init containers are not "the" container


def test_get_names_what_was_rendered() -> None:
    with pytest.raises(KeyError, match=r"Secret/demo not rendered"):
        manifests.get(manifests.parse(STREAM), "Secret", "demo")


def test_fields_finds_every_value_under_the_keys_with_its_path() -> None:
    obj = {"metadata": {"labels": {"a": "1"}}, "spec": {"items": [{"labels": {"b": "2"}}, {"other": 1}]}}
    assert list(manifests.fields(obj, ("labels",))) == [
        ("metadata.labels", {"a": "1"}), ("spec.items[0].labels", {"b": "2"})]
