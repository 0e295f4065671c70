"""The ``homeci`` command line: help, and one-line errors with the fix for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from homeci import toolchain
from homeci_testing.support import ROOT, Result, run_cli

GOOD = ROOT / "tests" / "fixtures" / "charts" / "good"


def one_line_error(proc: Result) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    assert lines[0].startswith("homeci: error: ")
    return lines[0].removeprefix("homeci: error: ")


def test_help_lists_every_command() -> None:
    proc = run_cli("--help")
    assert proc.exit_code == 0
    for name in ("lint", "render", "ca", "package", "toolchain", "cluster", "node-config"):
        assert f"  {name} " in proc.stdout, name


@pytest.mark.parametrize("group", ["ca", "lint", "render", "package"])
def test_subcommand_help(group: str) -> None:
    proc = run_cli(group, "--help")
    assert proc.exit_code == 0 and "Usage:" in proc.stdout


def test_ca_help_lists_subcommands() -> None:
    out = run_cli("ca", "--help").stdout
    assert all(f"  {c} " in out for c in ("init", "show", "verify"))


def test_unknown_chart_name() -> None:
    proc = run_cli("render", "no-such-chart")
    assert proc.exit_code == 2
    expected = "unknown chart 'no-such-chart': give a chart directory or one of: "
    assert one_line_error(proc).startswith(expected)


def test_helm_missing(tmp_path: Path) -> None:
    proc = run_cli("render", str(GOOD), env={"HOMECI_HELM3": str(tmp_path / "nothing" / "helm")})
    assert proc.exit_code == 1
    msg = one_line_error(proc)
    assert msg == (f"HOMECI_HELM3={tmp_path}/nothing/helm: not an executable file; fix the path or unset "
                   "HOMECI_HELM3")


def test_helm_missing_from_cache_names_install_command(tmp_path: Path) -> None:
    env = {"HOMECI_TOOLCHAIN": str(tmp_path / "empty"), "HOMECI_HELM4": ""}
    proc = run_cli("render", str(GOOD), "--helm", "4", env=env)
    assert proc.exit_code == 1
    version = toolchain.tool("helm4").version
    expected = f"helm4 {version} is not installed: run `homeci toolchain install helm4`"
    assert one_line_error(proc).startswith(expected)


def test_helm_wrong_version(tmp_path: Path) -> None:
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho v2.17.0+ga690bad\n")
    fake.chmod(0o755)
    proc = run_cli("render", str(GOOD), env={"HOMECI_HELM3": str(fake)})
    assert proc.exit_code == 1
    msg = one_line_error(proc)
    assert msg.startswith(f"HOMECI_HELM3: {fake}: reports 'v2.17.0+ga690bad', expected '^v3\\\\.'")
    assert msg.endswith(f"homeci pins helm3 {toolchain.tool('helm3').version}")


def test_values_file_breaking_schema_in_lint_names_file_and_path() -> None:
    bad = ROOT / "tests" / "fixtures" / "charts" / "bad-schema"
    proc = run_cli("lint", str(bad), "--helm", "3")
    assert proc.exit_code == 1
    assert "tests/fixtures/charts/bad-schema/ci/bad-values.yaml: replicas: 'three' is not of type 'integer'" \
        in proc.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["-n", "Bad NS"], "'-n' / '--namespace': 'Bad NS' is not a valid name"),
    (["--release", "Homeci_1"], "'--release': 'Homeci_1' is not a valid name"),
    (["-f", "tests"], "'-f' / '--values': File 'tests' is a directory"),
])
def test_render_refuses_bad_names_and_paths_in_one_line(args: list[str], expected: str) -> None:
    proc = run_cli("render", str(GOOD), *args)
    assert proc.exit_code == 2, f"render {args}: exit {proc.exit_code}, stdout {proc.stdout[:200]!r}"
    assert expected in one_line_error(proc)


def test_render_reads_dev_null_as_empty_values() -> None:
    proc = run_cli("render", str(GOOD), "-f", "/dev/null")
    assert proc.exit_code == 0 and "kind: Deployment" in proc.stdout, proc.stderr


@pytest.mark.parametrize("broken", ["Chart.yaml", "values.yaml", "values.schema.json"])
def test_lint_reports_a_binary_chart_file_as_a_finding(broken: str, tmp_path: Path) -> None:
    chart = tmp_path / "good"
    shutil.copytree(GOOD, chart)
    (chart / broken).write_bytes(b"\x00\xff\xfe binary " * 8)
    proc = run_cli("lint", str(chart), "--helm", "3")
    assert proc.exit_code == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "check(s) failed (listed above); fix them and run `homeci lint` again")
    assert f"{chart / broken}: not a text file (byte 1 is not UTF-8)" in proc.stdout, proc.stdout


def test_one_cluster_command_tree_for_every_provider() -> None:
    """`homeci cluster` has the same commands and flags whatever the provider; the first names (sim, local,
    kind) are hidden aliases that set --provider (and make `up` bare, as it always did)."""
    from homeci.cluster import CHOICES

    result = run_cli("cluster", "--help")
    assert result.exit_code == 0, result.stderr
    for cmd in ("up", "down", "stop", "start", "status", "kubeconfig", "images", "install"):
        assert f"  {cmd} " in result.stdout, f"homeci cluster {cmd} missing from --help"
    for alias in ("sim", "local", "kind"):
        assert f"  {alias} " not in result.stdout, f"the alias {alias} must stay hidden"
        listed = run_cli("cluster", alias, "--help")
        assert listed.exit_code == 0 and "  status " in listed.stdout, f"cluster {alias}: {listed.stderr}"
        up = run_cli("cluster", alias, "up", "--help")
        assert "--provider" not in up.stdout and "--stack" not in up.stdout, f"cluster {alias} up: fixed"
    for cmd in ("up", "down", "stop", "start", "status", "kubeconfig", "install"):
        text = run_cli("cluster", cmd, "--help").stdout
        assert "--provider" in text and "--name" in text, f"homeci cluster {cmd}: --provider and --name"
    assert set(CHOICES) == {"auto", "sim", "netns", "kind", "local"}


def test_up_says_what_to_do_next_with_the_real_urls(tmp_path: Path) -> None:
    """`nox -s up` ends with the three things a person does next (Gogs, Drone, a push), each naming this
    stack's URLs, account and CA file."""
    from homeci.commands.cluster import next_steps
    from homeci.flow.stack import Stack
    from homeci.flow.web import PublicNames

    st = Stack(release="homeci", namespace="homeci",
               hosts={"git": "git.lab.test", "ci": "ci.lab.test", "registry": "registry.lab.test"},
               ca_file=tmp_path / "ca.crt", admin_user="boss", admin_password="x", machine_token="x",
               registry_user="x", registry_password="x", web=PublicNames({"https": 8443}), https_port=8443)
    steps = next_steps(st)
    assert [s.split(".", 1)[0].strip() for s in steps] == ["1", "2", "3"], steps
    assert "https://git.lab.test:8443/" in steps[0] and "boss" in steps[0], steps[0]
    assert "https://ci.lab.test:8443/" in steps[1] and "ACTIVATE" in steps[1], steps[1]
    assert f"http.sslCAInfo={tmp_path / 'ca.crt'}" in steps[2], steps[2]
    assert "https://git.lab.test:8443/boss/sample-app.git" in steps[2], steps[2]
    assert "https://sample-app.lab.test:8443/" in steps[2], steps[2]
