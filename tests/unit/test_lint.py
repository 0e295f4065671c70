"""``homeci lint`` end to end on the fixture charts: the summary table, the exit code, the messages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from homeci.lint.runner import COLUMNS, CheckResult, Linter, LintReport
from homeci_testing.support import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "charts"
ALL = [FIXTURES / n for n in ("good", "bad-schema", "bad-k8s", "with-crd", "umbrella")] + [
    FIXTURES / "umbrella" / "charts" / "sub"]


def homeci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def report() -> LintReport:
    return Linter(jobs=4).run(ALL)


def cell(report: LintReport, chart: str, scenario: str, column: str) -> CheckResult:
    for r in report.results:
        if r.chart.endswith(f"fixtures/charts/{chart}") and r.scenario == scenario and r.column == column:
            return r
    raise AssertionError(f"no result for {chart} › {scenario} › {column}")


def test_every_chart_and_scenario_gets_every_check(report: LintReport) -> None:
    rows = {(r.chart, r.scenario) for r in report.results}
    assert len(rows) == 2 + 2 + 2 + 2 + 3 + 1  # defaults + each ci/*-values.yaml
    for chart, scenario in rows:
        have = sorted(r.column for r in report.results if (r.chart, r.scenario) == (chart, scenario))
        assert have == sorted(COLUMNS), f"{chart} › {scenario}: {have}"


def expected(scenario: str, column: str) -> str:
    """A passing cell's status: Helm 3 lints each chart's defaults only (Helm 4 lints every scenario)."""
    return "skip" if column == "helm3-lint" and scenario != "defaults" else "pass"


def test_good_chart_passes_everything(report: LintReport) -> None:
    for scenario in ("defaults", "two-replicas"):
        for col in COLUMNS:
            r = cell(report, "good", scenario, col)
            assert r.status == expected(scenario, col), f"good › {scenario} › {col}: {r.messages}"
    assert cell(report, "good", "defaults", "k8s-min").check == "k8s-1.30"
    assert cell(report, "good", "defaults", "k8s-max").check == "k8s-1.37"


def test_schema_violation_caught_by_schema_and_helm_lint(report: LintReport) -> None:
    schema = cell(report, "bad-schema", "bad", "schema")
    assert schema.status == "fail"
    assert any(m.endswith("bad-schema/ci/bad-values.yaml: replicas: 'three' is not of type 'integer'")
               for m in schema.messages), schema.messages
    lint = cell(report, "bad-schema", "bad", "helm4-lint")
    assert lint.status == "fail"
    assert any("additional properties 'tg' not allowed" in m for m in lint.messages), lint.messages
    # Helm 3 renders the scenario (and refuses it for the same key) instead of linting it again
    helm3 = cell(report, "bad-schema", "bad", "helm3-lint")
    assert helm3.status == "skip" and "render column" in helm3.note, helm3
    render = cell(report, "bad-schema", "bad", "render")
    assert render.status == "fail" and any("tg" in m for m in render.messages), render.messages
    assert cell(report, "bad-schema", "bad", "k8s-min").status == "skip"
    assert cell(report, "bad-schema", "defaults", "schema").status == "pass"


def test_kubernetes_validation_failures(report: LintReport) -> None:
    for col in ("k8s-min", "k8s-max"):
        r = cell(report, "bad-k8s", "defaults", col)
        assert r.status == "fail"
        assert any("Deployment/homeci-bad: spec.replicas" in m for m in r.messages)
    assert cell(report, "bad-k8s", "defaults", "schema").status == "pass"
    newest = cell(report, "bad-k8s", "old-api", "k8s-max")
    assert newest.check == "k8s-1.37"
    assert any("HorizontalPodAutoscaler does not exist in Kubernetes 1.37" in m for m in newest.messages)


def test_custom_resources(report: LintReport) -> None:
    ok = cell(report, "with-crd", "defaults", "k8s-min")
    assert ok.status == "pass" and ok.check == "k8s-1.28"
    assert ok.unchecked == ["Gadget/homeci-gadget (gadgets.example.org/v1): no CRD or crd-schemas/ schema"]
    bad = cell(report, "with-crd", "bad-widget", "k8s-max")
    assert bad.status == "fail" and bad.check == "k8s-1.35"
    assert any("Widget/homeci-widget: spec.size" in m for m in bad.messages)


def test_umbrella_subchart_values(report: LintReport) -> None:
    bad = cell(report, "umbrella", "bad-sub", "schema")
    assert any(m.endswith("umbrella/ci/bad-sub-values.yaml: sub.message: 42 is not of type 'string'")
               for m in bad.messages), bad.messages
    for col in COLUMNS:
        assert cell(report, "umbrella", "sub-off", col).status == expected("sub-off", col), col
        assert cell(report, "umbrella/charts/sub", "defaults", col).status == "pass", col


def test_serial_and_parallel_runs_agree(report: LintReport) -> None:
    serial = Linter(jobs=1).run([FIXTURES / "bad-k8s", FIXTURES / "good"])
    key = lambda rs: sorted((r.chart, r.scenario, r.check, r.status, tuple(r.messages)) for r in rs)  # noqa: E731
    subset = [r for r in report.results if r.chart.endswith(("/bad-k8s", "/good"))]
    assert key(serial.results) == key(subset)


def test_cli_good_chart_exits_zero_with_table() -> None:
    proc = homeci("lint", str(FIXTURES / "good"))
    assert proc.returncode == 0, proc.stderr
    assert "helm3-lint" in proc.stdout and "k8s-max" in proc.stdout
    assert "homeci lint passed" in proc.stdout


def test_cli_failures_exit_nonzero_with_messages() -> None:
    proc = homeci("lint", str(FIXTURES / "bad-schema"), "--helm", "3")
    assert proc.returncode == 1
    assert "bad-schema › bad › schema" in proc.stdout
    assert "bad-schema/ci/bad-values.yaml: image.tg: unknown key 'tg'" in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("homeci: error: ") and "check(s) failed" in last and "fix them" in last


def test_cli_unknown_chart_name() -> None:
    proc = homeci("lint", "no-such-chart")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    expected = "homeci: error: unknown chart 'no-such-chart': give a chart directory or one of:"
    assert lines[0].startswith(expected)


def test_cli_lint_with_broken_helm_reports_it_in_every_helm_cell(tmp_path: Path) -> None:
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho v2.17.0\n")
    fake.chmod(0o755)
    proc = homeci("lint", str(FIXTURES / "good"), "--helm", "3", env={"HOMECI_HELM3": str(fake)})
    assert proc.returncode == 1
    assert "HOMECI_HELM3" in proc.stdout and "expected '^v3\\\\.'" in proc.stdout


def test_one_render_per_scenario_unless_templates_read_capabilities() -> None:
    from homeci.lint.runner import reads_capabilities

    assert reads_capabilities(FIXTURES / "good")          # annotates the pod with .Capabilities.KubeVersion
    assert not reads_capabilities(FIXTURES / "bad-k8s")
    linter = Linter(jobs=2, record=True)
    linter.run([FIXTURES / "good", FIXTURES / "bad-k8s"])
    templates = sorted(c.argv for c in linter.helm_calls if c.kind == "template")
    good = [a for a in templates if a[1].endswith("/good")]
    bad = [a for a in templates if a[1].endswith("/bad-k8s")]
    assert len(good) == 4, good   # 2 scenarios x (1.30, 1.37)
    assert len(bad) == 2, bad     # 2 scenarios x one render at 1.37, validated against 1.25 and 1.37
    assert all(a[-1] == "1.37.0" for a in bad)


def test_library_chart_is_linted_but_not_rendered(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "templates").mkdir(parents=True)
    (lib / "Chart.yaml").write_text("apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n")
    (lib / "templates" / "_names.tpl").write_text('{{- define "lib.name" -}}{{ .Release.Name }}{{- end -}}\n')
    results = {r.column: r for r in Linter(jobs=2).run([lib]).results}
    assert results["helm3-lint"].status == "pass" and results["helm4-lint"].status == "pass"
    for col in ("schema", "render", "k8s-min", "k8s-max"):
        assert results[col].status == "skip", col


def test_helm3_lints_defaults_helm4_every_scenario() -> None:
    linter = Linter(jobs=2, record=True)
    linter.run([FIXTURES / "good"])
    lints = sorted((c.argv[1].rsplit("/", 1)[-1], len(c.argv)) for c in linter.helm_calls if c.kind == "lint")
    jobs = Linter().plan([FIXTURES / "good"]).jobs
    majors = sorted((j.major, rendering_name(j.scenario)) for j in jobs if j.kind == "lint")
    assert majors == [(3, "defaults"), (4, "defaults"), (4, "two-replicas")], majors
    assert len(lints) == 3, lints
    # with Helm 3 alone, Helm 3 lints every scenario
    only3 = Linter(majors=(3,)).plan([FIXTURES / "good"]).jobs
    linted = sorted(rendering_name(j.scenario) for j in only3 if j.kind == "lint")
    assert linted == ["defaults", "two-replicas"], linted


def rendering_name(scenario: Path | None) -> str:
    return "defaults" if scenario is None else scenario.name.removesuffix("-values.yaml")


def test_scenario_with_the_same_values_reuses_results(tmp_path: Path) -> None:
    chart = tmp_path / "good"
    shutil.copytree(FIXTURES / "good", chart)
    (chart / "ci" / "empty-values.yaml").write_text("# no overrides\n")
    (chart / "ci" / "copy-values.yaml").write_text((chart / "ci" / "two-replicas-values.yaml").read_text())
    plan = Linter().plan([chart])
    aliases = sorted(a[1:] for a in plan.aliases)
    assert aliases == [("empty", "defaults"), ("two-replicas", "copy")], aliases
    assert not [j for j in plan.jobs if j.scenario is not None and j.scenario.name == "empty-values.yaml"]
    results = Linter(jobs=2).run([chart]).results
    for scen, same in (("empty", "defaults"), ("two-replicas", "copy")):
        mine = {r.column: r.status for r in results if r.scenario == scen}
        theirs = {r.column: r.status for r in results if r.scenario == same}
        assert mine == theirs and len(mine) == len(COLUMNS), (scen, mine, theirs)
        assert all(r.note == f"same values as {same}" for r in results if r.scenario == scen)


def test_plan_runs_the_heaviest_jobs_first() -> None:
    small, big = ROOT / "charts" / "drone-pipelines", ROOT / "charts" / "homeci-umbrella"
    jobs = Linter().plan([small, big]).jobs   # listed small first; planning runs no helm
    weights = [j.weight for j in jobs]
    assert weights == sorted(weights, reverse=True), weights
    assert jobs[0].chart == big and jobs[0].kind == "render", jobs[0]
    assert jobs[-1].kind == "schema", jobs[-1]
