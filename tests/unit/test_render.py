"""``homeci render``: manifests on stdout, values files and --set applied, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci import manifests
from homeci.lint import helmschema
from homeci_testing.support import ROOT, Result, run_cli

GOOD = ROOT / "tests" / "fixtures" / "charts" / "good"


def test_render_prints_parseable_manifests() -> None:
    proc = run_cli("render", str(GOOD))
    assert proc.exit_code == 0, proc.stderr
    objs = manifests.parse(proc.stdout)
    assert sorted(m.ref for m in objs) == ["Deployment/homeci-good", "Service/homeci-good"]
    assert manifests.get(objs, "Deployment", "homeci-good").source == "good/templates/deployment.yaml"


def test_values_files_set_release_namespace_and_kube_version() -> None:
    scenario = str(GOOD / "ci" / "two-replicas-values.yaml")
    proc = run_cli("render", str(GOOD), "-f", scenario, "--set", "port=9090",
                   "--release", "demo", "-n", "apps", "--kube-version", "1.31.0", "--helm", "4")
    assert proc.exit_code == 0, proc.stderr
    deploy = manifests.get(manifests.parse(proc.stdout), "Deployment", "demo-good")
    assert deploy.obj["spec"]["replicas"] == 2
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9090
    assert deploy.obj["spec"]["template"]["metadata"]["annotations"]["homeci.test/kube-version"] == "v1.31.0"


def test_missing_values_file_is_usage_error() -> None:
    proc = run_cli("render", str(GOOD), "-f", "nope-values.yaml")
    assert proc.exit_code == 2
    assert proc.stderr.strip() == ("homeci: error: render: Invalid value for '-f' / '--values': File "
                                   "'nope-values.yaml' does not exist. (see `homeci render --help`)")


@pytest.mark.parametrize("pair", ["justakey", "=value"])
def test_bad_set_is_usage_error(pair: str) -> None:
    proc = run_cli("render", str(GOOD), "--set", pair)
    assert proc.exit_code == 2
    assert proc.stderr.strip() == f"homeci: error: --set {pair!r}: expected KEY=VALUE"


def one_line_error(proc: Result) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.exit_code == 1 and len(lines) == 1, f"exit {proc.exit_code}, stderr {proc.stderr!r}"
    assert lines[0].startswith("homeci: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("major", ["3", "4"])
def test_values_breaking_schema_name_file_dotted_key_and_helms_reason(major: str) -> None:
    bad = ROOT / "tests" / "fixtures" / "charts" / "bad-schema"
    values = bad / "ci" / "bad-values.yaml"
    line = one_line_error(run_cli("render", str(bad), "-f", str(values), "--helm", major))
    assert line.startswith("homeci: error: chart bad-schema refuses these values (values.schema.json): ")
    # Helm's own reasons, each after the file the value came from and its full dotted key
    assert f"{values}: replicas: got string, want integer" in line
    assert f"{values}: image.tg: additional properties 'tg' not allowed" in line


def test_subchart_refusals_name_the_umbrella_key_and_each_source(tmp_path: Path) -> None:
    umbrella = ROOT / "tests" / "fixtures" / "charts" / "umbrella"
    mine = tmp_path / "mine-values.yaml"
    mine.write_text("sub:\n  colour: red\n")
    line = one_line_error(run_cli("render", str(umbrella), "-f", str(mine), "--set", "global.domain=2",
                                  "--set", "sub.enabled=3"))
    # the subchart's schema refuses sub.colour (from the file) and sub.enabled (from --set), the
    # umbrella's refuses global.domain (from --set)
    assert f"{mine}: sub.colour: additional properties 'colour' not allowed" in line
    assert "--set sub.enabled=3: sub.enabled: got number, want boolean" in line
    assert "--set global.domain=2: global.domain: got number, want string" in line


OLD_HELM = """Error: values don't meet the specifications of the schema(s) in the following chart(s):
sub:
- message: Invalid type. Expected: string, given: integer
- (root): Additional property colour is not allowed
"""


def test_helmschema_reads_both_helm_formats_and_escaped_pointers() -> None:
    new = ("walk.go:74: found symbolic link\nError: values don't meet the specifications of the schema(s) "
           "in the following chart(s):\numbrella:\n- at '/a~1b/list/1': got number, want string\n")
    assert helmschema.parse(new) == [
        helmschema.Refusal("umbrella", ("a/b", "list", "1"), "got number, want string")]
    assert helmschema.parse(OLD_HELM) == [
        helmschema.Refusal("sub", ("message",), "Invalid type. Expected: string, given: integer"),
        helmschema.Refusal("sub", (), "Additional property colour is not allowed"),
    ]
    assert helmschema.parse("Error: template: x.yaml:1: nil pointer") == []


def test_helmschema_maps_list_indices_and_set_escapes(tmp_path: Path) -> None:
    umbrella = ROOT / "tests" / "fixtures" / "charts" / "umbrella"
    values = tmp_path / "v.yaml"
    values.write_text("sub:\n  items: [a, b]\n")
    stderr = ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
              "sub:\n- at '/items/1': got string, want integer\n"
              "- at '/a.b': got string, want integer\n")
    errors = helmschema.explain(umbrella, [values], ["sub.a\\.b=x"], stderr)
    assert [str(e) for e in errors] == [
        f"{values}: sub.items[1]: got string, want integer",
        "--set sub.a\\.b=x: sub.a.b: got string, want integer",
    ]


@pytest.mark.parametrize("major", ["3", "4"])
def test_a_pattern_refusal_says_what_the_value_must_be(major: str) -> None:
    """Helm prints the raw regular expression; the schema's description of it is what a user can act on."""
    proc = run_cli("render", "homeci-umbrella", "--helm", major, "--set", "gogs.persistence.size=0Gi")
    assert proc.exit_code != 0
    wanted = "gogs.persistence.size: '0Gi' is not accepted: A Kubernetes resource quantity above zero"
    assert wanted in proc.stderr, proc.stderr
    assert "does not match pattern" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("source", ["set", "file"])
def test_a_decimal_for_an_integer_says_so(source: str, tmp_path: Path) -> None:
    """Helm says 'got string, want integer' for --set port=2.5 (--set keeps decimals as text)."""
    if source == "set":
        args = ["--set", "gogs.ssh.port=2.5"]
    else:
        values = tmp_path / "v.yaml"
        values.write_text("gogs:\n  ssh:\n    port: 2.5\n")
        args = ["-f", str(values)]
    proc = run_cli("render", "homeci-umbrella", *args)
    assert proc.exit_code != 0
    assert "gogs.ssh.port: 2.5 is not a whole number: give an integer" in proc.stderr, proc.stderr
