"""homeci.chartdocs: values.schema.json generated whole from values.yaml — descriptions from the comments,
types from the defaults, the rest from ``# @schema`` annotations — with errors naming file:line; the
library's definitions copied where used; the semantic comparison that proves two schemas accept the same
values; VALUES.md."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from homeci.chartdocs import compare, generate
from homeci.chartdocs import schema as schemas
from homeci.chartdocs.comments import key_comments, key_docs
from homeci.chartdocs.valuesdoc import render
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

DEFS: dict[str, Any] = {
    "quantity": {"type": "string", "pattern": "^[0-9]+$"},
    "resources": {"type": "object", "properties": {"cpu": {"$ref": "#/definitions/quantity"}}},
    "dnsLabel": {"type": "string", "maxLength": 63},
    "unused": {"type": "string"},
}


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


ANNOTATED = """\
# Port.
# @schema minimum: 1
# @schema maximum: 65535
port: 80
# Section.
section:
  # Items, block form.
  # @schema items:
  #   type: object
  #   required: [name]
  #   properties:
  #     name: {description: The name., $ref: dnsLabel}
  list: []
"""


def test_annotation_lines_are_not_part_of_the_description() -> None:
    docs = key_docs(ANNOTATED)
    port = docs[("port",)]
    assert (port.description, port.line, port.annotation_line) == ("Port.", 4, 2)
    assert yaml.safe_load(port.annotation or "") == {"minimum": 1, "maximum": 65535}, (
        "a repeated `# @schema` continues the same annotation")
    block = docs[("section", "list")]
    assert block.description == "Items, block form."
    assert yaml.safe_load(block.annotation or "")["items"]["required"] == ["name"], (
        "lines after `# @schema` keep their YAML indentation")


def _generate(text: str, file: str = "charts/x/values.yaml") -> tuple[dict[str, Any], list[str]]:
    return generate.properties(file, text, yaml.safe_load(text) or {}, DEFS)


def _ok(text: str) -> dict[str, Any]:
    body, problems = _generate(text)
    assert not problems, problems
    return body


def test_the_default_says_the_type_and_objects_are_closed_with_every_key_required() -> None:
    body = _ok("# A.\na: x\n# B.\nb: true\n# C.\nc: 3\n# D.\nd: 0.5\n# E.\ne:\n  # F.\n  f: y\n")
    props = body["properties"]
    assert [props[k]["type"] for k in "abcd"] == ["string", "boolean", "integer", "number"]
    assert props["e"] == {"description": "E.", "type": "object", "additionalProperties": False,
                          "properties": {"f": {"description": "F.", "type": "string"}}, "required": ["f"]}
    assert body["required"] == ["a", "b", "c", "d", "e"] and body["additionalProperties"] is False


def test_annotation_adds_keywords_and_expands_references() -> None:
    props = _ok(ANNOTATED)["properties"]
    assert props["port"] == {"description": "Port.", "type": "integer", "minimum": 1, "maximum": 65535}
    items = props["section"]["properties"]["list"]["items"]
    assert props["section"]["properties"]["list"]["type"] == "array", "[] with items is an array"
    assert items["properties"]["name"] == {"description": "The name.", "$ref": "#/definitions/dnsLabel"}


def test_an_annotation_naming_the_type_is_the_whole_schema() -> None:
    text = ("# Open.\n# @schema type: object\nglobal:\n  # Not read.\n  x: 1\n"
            "# Ref.\n# @schema $ref: resources\nres:\n  # CPU.\n  cpu: '1'\n"
            "# Nullable.\n# @schema type: [integer, null]\nport: null\n")
    props = _ok(text)["properties"]
    assert props["global"] == {"description": "Open.", "type": "object"}
    assert props["res"] == {"description": "Ref.", "$ref": "#/definitions/resources"}
    assert props["port"]["type"] == ["integer", "null"], "a bare YAML null in `type` means the JSON type null"


def test_required_can_be_narrowed_or_dropped() -> None:
    text = ("# P.\n# @schema required: []\np:\n  # A.\n  a: null_is_not_here\n"
            "# Q.\n# @schema required: [a]\nq:\n  # A.\n  a: 1\n  # B.\n  b: 2\n")
    props = _ok(text)["properties"]
    assert "required" not in props["p"]
    assert props["q"]["required"] == ["a"]


def test_a_list_default_gives_its_items() -> None:
    props = _ok("# Names.\nnames: [a, b]\n# Pairs.\npairs:\n  - {name: a, create: true}\n")["properties"]
    assert props["names"] == {"description": "Names.", "type": "array", "items": {"type": "string"}}
    assert props["pairs"]["items"] == {
        "type": "object", "additionalProperties": False, "required": ["name", "create"],
        "properties": {"name": {"type": "string"}, "create": {"type": "boolean"}}}


@pytest.mark.parametrize(("text", "words"), [
    ("# L.\nl: []\n", ("values.yaml:2", "key l defaults to []", "@schema items")),
    ("# M.\nm: {}\n", ("values.yaml:2", "key m defaults to {}", "type: object")),
    ("# N.\nn: null\n", ("values.yaml:2", "key n defaults to null", "type: [string")),
    ("o: 1\n", ("values.yaml:1", "key o has no comment above it", "document it")),
    ("# P.\n# @schema minimun: 1\np: 1\n", ("values.yaml:2", "'minimun' is not a JSON Schema keyword")),
    ("# Q.\n# @schema $ref: nowhere\nq: 1\n", ("values.yaml:2", "'nowhere' is no definition",
                                               "charts/homeci-lib/schema/nowhere.json")),
    ("# R.\n# @schema pattern: [unclosed\nr: x\n", ("values.yaml:2", "@schema is not YAML")),
    ("# S.\n# @schema description: x\ns: 1\n", ("values.yaml:2", "write it as the comment above the key")),
    ("# T.\n# @schema required: [z]\nt:\n  # A.\n  a: 1\n", ("values.yaml:2", "requires z")),
    ("# U.\n# @schema type: object\nu:\n  # V.\n  # @schema minimum: 1\n  v: 1\n",
     ("values.yaml:5", "@schema below u", "whole schema")),
    ("# W.\n# @schema anyOf: {const: ''}\nw: x\n", ("values.yaml:2", "anyOf must be a list of schemas")),
])
def test_problems_name_the_file_line_and_the_fix(text: str, words: tuple[str, ...]) -> None:
    _body, problems = _generate(text)
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], f"{word!r} not in {problems[0]!r}"


def test_the_whole_file_copies_used_definitions_and_adds_the_library_section() -> None:
    body = _ok("# R.\n# @schema $ref: resources\nres:\n  # C.\n  cpu: '1'\n")
    out = schemas.whole("x values", body, DEFS, library=True)
    assert list(out) == ["$schema", "title", "type", "additionalProperties", "definitions", "properties",
                         "required"]
    assert out["definitions"] == {"quantity": DEFS["quantity"], "resources": DEFS["resources"]}, (
        "the transitive reference is kept, the unused definition left out")
    assert out["properties"]["homeci-lib"]["type"] == "object" and out["required"] == ["res"]
    assert "homeci-lib" not in schemas.whole("x values", body, DEFS, library=False)["properties"]


def test_a_reference_to_nothing_names_the_fix() -> None:
    with pytest.raises(HomeciError, match=r"add charts/homeci-lib/schema/nowhere\.json"):
        schemas.whole("x", {"properties": {"a": {"$ref": "#/definitions/nowhere"}}}, DEFS, library=False)


def _doc(props: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, **({"definitions": defs} if defs else {})}


def test_compare_resolves_references_and_ignores_order_and_prose() -> None:
    old = _doc({"a": {"$ref": "#/definitions/old"}, "b": {"type": "string", "enum": ["y", "x"],
                                                          "description": "Old."}},
               {"old": {"type": "string", "pattern": "^a$"}})
    new = _doc({"a": {"description": "A.", "type": "string", "pattern": "^a$"},
                "b": {"enum": ["x", "y"], "description": "New."}})
    assert compare.contract_differences(old, new) == [], "inline = reference; enum order; implied type"
    changes = compare.description_changes(old, new)
    assert [(c.path, c.old, c.new) for c in changes] == [("a", "", "A."), ("b", "Old.", "New.")]


def test_compare_finds_a_changed_bound_inside_a_definition() -> None:
    old = _doc({"a": {"$ref": "#/definitions/d"}}, {"d": {"type": "integer", "maximum": 5}})
    new = _doc({"a": {"$ref": "#/definitions/d"}}, {"d": {"type": "integer", "maximum": 6}})
    diffs = compare.contract_differences(old, new)
    assert [str(d) for d in diffs] == ["/properties/a/maximum: 5 -> 6"]


def test_values_md_lists_the_described_keys_of_list_items() -> None:
    """values.yaml has no list item to comment on: VALUES.md takes `extra[].<key>` rows from the keys the
    schema describes itself (a shared definition's generic text is not repeated per key)."""
    schema = {**_doc({"extra": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"description": "The name.", "$ref": "#/definitions/label"},
        "port": {"$ref": "#/definitions/label"}}}}}),
        "definitions": {"label": {"type": "string", "description": "Generic text."}}}
    text = render("x", VALUES, yaml.safe_load(VALUES), schema)
    assert "| `extra` | array |" in text
    assert "| `extra[].name` | string | — | The name. |" in text, text
    assert "extra[].port" not in text, text
