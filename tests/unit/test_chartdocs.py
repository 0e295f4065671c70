"""homeci.chartdocs: values.yaml comments become schema descriptions and VALUES.md; shared schema fragments
replace each chart's copy."""

from __future__ import annotations

import pytest

from homeci.chartdocs.comments import key_comments
from homeci.chartdocs.schema import assemble
from homeci.errors import HomeciError

VALUES = """\
# Header of the file: not about any key.

# Deploy it.
enabled: true

# Container image.
image:
  # Repository.
  repository: gogs/gogs
  tag: "1"
# Extra names,
# on two lines.
extra:
  - name: a
    # not a key of the chart: inside a sequence item
    port: 1
script: |
  looks: like a key
  # and a comment
after: 1
"""


def test_comments_by_dotted_path() -> None:
    found = key_comments(VALUES)
    assert found[("enabled",)] == "Deploy it."
    assert found[("image",)] == "Container image."
    assert found[("image", "repository")] == "Repository."
    assert found[("image", "tag")] == "", "a key without a comment maps to ''"
    assert found[("extra",)] == "Extra names, on two lines."
    assert ("extra", "port") not in found and ("port",) not in found, "sequence items are values"
    assert ("looks",) not in found and ("script", "looks") not in found, "block scalars are values"
    assert found[("after",)] == ""
    assert ("Header",) not in found


def _schema(**props: object) -> dict[str, object]:
    return {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": props}


def test_descriptions_come_from_comments_and_missing_ones_are_reported() -> None:
    schema = _schema(enabled={"type": "boolean"},
                     image={"type": "object", "properties": {"repository": {"type": "string"},
                                                             "tag": {"type": "string"}}})
    out = assemble(schema, {}, VALUES)
    props = out.schema["properties"]
    assert props["enabled"]["description"] == "Deploy it."
    assert props["image"]["properties"]["repository"]["description"] == "Repository."
    assert out.undocumented == ["image.tag"]


def test_an_explicit_description_wins() -> None:
    out = assemble(_schema(enabled={"type": "boolean", "description": "Mine."}), {}, VALUES)
    assert out.schema["properties"]["enabled"]["description"] == "Mine."


def test_shared_fragments_replace_local_copies_and_unused_definitions_go() -> None:
    fragments = {"quantity": {"type": "string", "pattern": "^shared$"},
                 "resources": {"type": "object", "properties": {"cpu": {"$ref": "#/definitions/quantity"}}}}
    schema = {**_schema(enabled={"$ref": "#/definitions/resources"}),
              "definitions": {"quantity": {"type": "string", "pattern": "^local copy$"},
                              "unused": {"type": "string"}}}
    out = assemble(schema, fragments, VALUES).schema
    assert out["definitions"] == {"quantity": fragments["quantity"], "resources": fragments["resources"]}, (
        "the fragment replaces the chart's copy, the transitive reference is kept, the unused one dropped")


def test_a_reference_to_nothing_names_the_fix() -> None:
    with pytest.raises(HomeciError, match=r"add charts/homeci-lib/schema/nowhere\.json"):
        assemble(_schema(enabled={"$ref": "#/definitions/nowhere"}), {}, VALUES)


def test_values_md_lists_the_described_keys_of_list_items() -> None:
    """values.yaml has no list item to comment on: VALUES.md takes `extra[].<key>` rows from the keys the
    schema describes itself (a shared definition's generic text is not repeated per key)."""
    import yaml

    from homeci.chartdocs.valuesdoc import render

    schema = {**_schema(extra={"type": "array", "items": {"type": "object", "properties": {
        "name": {"description": "The name.", "$ref": "#/definitions/label"},
        "port": {"$ref": "#/definitions/label"}}}}),
        "definitions": {"label": {"type": "string", "description": "Generic text."}}}
    text = render("x", VALUES, yaml.safe_load(VALUES), schema)
    assert "| `extra` | array |" in text
    assert "| `extra[].name` | string | — | The name. |" in text, text
    assert "extra[].port" not in text, text
