"""``homeci lint`` orchestration: one job per (chart, scenario, check), run on a thread pool.

The jobs are dominated by helm subprocesses (``helm lint``, ``helm template``), which release the GIL,
so threads overlap them; Kubernetes validation runs right after each render in the same job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from homeci import manifests, rendering
from homeci.errors import HomeciError
from homeci.helm import Helm, HelmResult
from homeci.lint import kube, kubeversions, values

STATUS_ORDER = ("fail", "pass", "skip")
# helm lint renders the chart like helm template does, then applies its rules. The newest Helm major
# lints every scenario; an older one lints each chart's defaults (Chart.yaml, dependencies, values.yaml,
# the templates folder: the rules that do not depend on values), because its render of every scenario
# is already the render column (helm template, stricter than lint mode, schema included) and its
# per-object rules are the newer major's. This halves the helm processes of a run.
_LINT_ONCE = ("Helm {major} lints the chart's defaults; this scenario is linted by Helm {newest} and "
              "rendered by Helm 3 (render column)")
COLUMNS = ("helm3-lint", "helm4-lint", "schema", "render", "k8s-min", "k8s-max")


@dataclass
class CheckResult:
    chart: str
    scenario: str
    column: str           # one of COLUMNS
    check: str            # the precise name: helm3-lint, k8s-1.30, ...
    status: str           # pass | fail | skip
    messages: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class HelmCall:
    """One helm subprocess homeci lint made (for the benchmark)."""

    kind: str             # template | lint
    argv: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Job:
    """One unit of a lint run: ``helm lint`` (major, --kube-version), the values schema, or a render at
    ``kube_version`` validated against each of ``targets`` ((version, column) pairs)."""

    kind: str                 # lint | schema | render
    chart: Path
    scenario: Path | None
    major: int = 3
    kube_version: str | None = None
    targets: tuple[tuple[str, str], ...] = ()
    weight: int = 1           # relative cost, for scheduling the longest jobs first


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    known: list[CheckResult] = field(default_factory=list)       # results that need no job (skips)
    rendered: set[tuple[str, str]] = field(default_factory=set)  # (chart, scenario) rows with a render
    aliases: list[tuple[str, str, str]] = field(default_factory=list)  # (chart, scenario, same as)


@dataclass
class LintReport:
    results: list[CheckResult]
    seconds: float
    helm_calls: list[HelmCall] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _lint_messages(result_stdout: str, result_stderr: str) -> list[str]:
    """helm lint's [ERROR]/[WARNING] findings, each with its continuation lines folded into one line."""
    findings: list[str] = []
    current: list[str] | None = None
    for line in (result_stdout + "\n" + result_stderr).splitlines():
        text = line.strip()
        if text.startswith(("[ERROR]", "[WARNING]")):
            current = [text]
            findings.append("")
        elif not text or text.startswith(("[", "==>", "Error:")):
            current = None
            continue
        elif current is not None:
            current.append(text)
        else:
            continue
        findings[-1] = " ".join(current)
    if findings:
        return findings
    lines = [ln.strip() for ln in (result_stdout + "\n" + result_stderr).splitlines() if ln.strip()]
    return [ln for ln in lines if ln.startswith("Error")] or lines[-1:] or ["helm lint failed without output"]


def _one_line(exc: HomeciError) -> str:
    """A helm failure in one line, keeping helm's detail lines (HelmError.stderr) when there are any."""
    stderr = getattr(exc, "stderr", "")
    if stderr:
        return " ".join(ln.strip() for ln in stderr.splitlines() if ln.strip())
    return str(exc)


class Linter:
    def __init__(self, *, majors: tuple[int, ...] = (3, 4), jobs: int | None = None,
                 record: bool = False) -> None:
        self.majors = majors
        self.jobs = jobs or min(8, (os.cpu_count() or 2) * 2)
        self.record = record
        self.helm_calls: list[HelmCall] = []

    # -- single checks ---------------------------------------------------------------------------

    def _timed(self, kind: str, argv: tuple[str, ...], fn: Callable[[], object]) -> object:
        start = time.monotonic()
        try:
            return fn()
        finally:
            if self.record:
                self.helm_calls.append(HelmCall(kind, argv, time.monotonic() - start))

    def helm_lint(self, chart: Path, scenario: Path | None, major: int,
                  kube_version: str | None = None) -> CheckResult:
        name, scen = display_path(chart), rendering.scenario_name(scenario)
        col = f"helm{major}-lint"
        files = [scenario] if scenario else []
        try:
            helm = Helm(major)
            res = self._timed("lint", ("lint", str(chart), *map(str, files)),
                              lambda: helm.lint(chart, values_files=files, strict=True,
                                                kube_version=kube_version))
        except HomeciError as exc:
            return CheckResult(name, scen, col, col, "fail", [str(exc)])
        assert isinstance(res, HelmResult)
        if res.returncode != 0:
            return CheckResult(name, scen, col, col, "fail", _lint_messages(res.stdout, res.stderr))
        return CheckResult(name, scen, col, col, "pass")

    def schema(self, chart: Path, scenario: Path | None) -> CheckResult:
        name, scen = display_path(chart), rendering.scenario_name(scenario)
        try:
            errors = values.check_scenario(chart, scenario, display=Path.cwd())
        except HomeciError as exc:
            return CheckResult(name, scen, "schema", "schema", "fail", [str(exc)])
        if errors:
            return CheckResult(name, scen, "schema", "schema", "fail", [str(e) for e in errors])
        return CheckResult(name, scen, "schema", "schema", "pass")

    def render_and_validate(self, chart: Path, scenario: Path | None, render_version: str,
                            targets: list[tuple[str, str]]) -> tuple[list[CheckResult], str | None]:
        """Render at ``render_version``; validate against each (version, column) target.

        Returns the k8s-<version> results and the render error if the render failed.
        """
        name, scen = display_path(chart), rendering.scenario_name(scenario)
        files = (scenario,) if scenario else ()
        try:
            text = self._timed(
                "template", ("template", str(chart), *map(str, files), "--kube-version", render_version),
                lambda: rendering.render_text(chart, files, major=3, kube_version=render_version))
            assert isinstance(text, str)
            objects = manifests.parse(text, shared=True)
        except HomeciError as exc:
            skipped = [CheckResult(name, scen, col, f"k8s-{_minor(v)}", "skip", note="render failed")
                       for v, col in targets]
            return skipped, f"helm3 template --kube-version {render_version}: {_one_line(exc)}"
        results = []
        for version, column in targets:
            report = kube.validate(objects, version, kube.schema_dirs(chart))
            status = "fail" if report.errors else "pass"
            results.append(CheckResult(name, scen, column, f"k8s-{_minor(version)}", status, report.errors,
                                       report.unchecked, f"{report.checked} objects"))
        return results, None

    def execute(self, job: Job) -> CheckResult | tuple[list[CheckResult], str | None]:
        if job.kind == "lint":
            return self.helm_lint(job.chart, job.scenario, job.major, job.kube_version)
        if job.kind == "schema":
            return self.schema(job.chart, job.scenario)
        assert job.kube_version is not None
        return self.render_and_validate(job.chart, job.scenario, job.kube_version, list(job.targets))

    # -- a whole run -----------------------------------------------------------------------------

    def plan(self, charts: list[Path]) -> Plan:
        """Every job of a run, heaviest first, and the results known without running anything."""
        out = Plan()
        for chart in charts:
            name = display_path(chart)
            library = _is_library(chart)
            capability_sensitive = reads_capabilities(chart)
            weight = _weight(chart)
            try:
                versions: tuple[str, ...] | None = kubeversions.validation_range(chart)
                range_error = ""
            except HomeciError as exc:
                versions, range_error = None, str(exc)
            seen_values: list[tuple[Any, str]] = []
            for scenario in [None, *rendering.scenarios(chart)]:
                scen = rendering.scenario_name(scenario)
                same = _same_values(chart, scenario, seen_values)
                if same is not None:
                    out.aliases.append((name, scen, same))
                    continue
                for major in self.majors:
                    if scenario is not None and major != max(self.majors):
                        col = f"helm{major}-lint"
                        out.known.append(CheckResult(name, scen, col, col, "skip", note=_LINT_ONCE.format(
                            major=major, newest=max(self.majors))))
                        continue
                    newest = versions[1] if versions else None
                    out.jobs.append(Job("lint", chart, scenario, major, newest, weight=weight))
                if library and not (chart / "values.schema.json").is_file():
                    out.known.append(CheckResult(name, scen, "schema", "schema", "skip",
                                                 note="library chart without values"))
                else:
                    out.jobs.append(Job("schema", chart, scenario, weight=1))
                if library:
                    for col in ("render", "k8s-min", "k8s-max"):
                        out.known.append(CheckResult(name, scen, col, col, "skip", note="library chart"))
                    continue
                out.rendered.add((name, scen))
                if versions is None:
                    for col in ("k8s-min", "k8s-max"):
                        out.known.append(CheckResult(name, scen, col, col, "fail", [range_error]))
                    continue
                todo = ((versions[0], "k8s-min"), (versions[1], "k8s-max"))
                if capability_sensitive:
                    for version, col in todo:
                        out.jobs.append(Job("render", chart, scenario, 3, version, ((version, col),),
                                            weight=weight + 1))
                else:
                    # templates never read .Capabilities: one render serves every version
                    out.jobs.append(Job("render", chart, scenario, 3, todo[-1][0], todo, weight=weight + 1))
        # Longest jobs first (the umbrella's renders and lints): the pool never ends on one long job
        # while the other cores idle. sorted() is stable, so equal weights keep the chart order.
        out.jobs.sort(key=lambda j: -j.weight)
        return out

    def run(self, charts: list[Path], progress: Callable[[int, int], None] | None = None) -> LintReport:
        start = time.monotonic()
        plan = self.plan(charts)
        results = list(plan.known)
        render_errors: dict[tuple[str, str], list[str]] = {}
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="homeci-lint") as pool:
            futures = [pool.submit(self.execute, job) for job in plan.jobs]
            total = len(futures)
            for done, fut in enumerate(as_completed(futures), start=1):
                if progress:
                    progress(done, total)
                value = fut.result()
                if isinstance(value, tuple):
                    checks, err = value
                    results.extend(checks)
                    if err:
                        render_errors.setdefault((checks[0].chart, checks[0].scenario), []).append(err)
                else:
                    results.append(value)
        for name, scen in sorted(plan.rendered):
            errs = render_errors.get((name, scen), [])
            results.append(CheckResult(name, scen, "render", "render", "fail" if errs else "pass", errs))
        for name, scen, same in plan.aliases:
            results += [replace(r, scenario=scen, note=f"same values as {same}") for r in results
                        if r.chart == name and r.scenario == same]
        order = {c: i for i, c in enumerate(COLUMNS)}
        chart_order = {display_path(c): i for i, c in enumerate(charts)}
        results.sort(key=lambda r: (chart_order.get(r.chart, 0), r.scenario != "defaults", r.scenario,
                                    order.get(r.column, 99)))
        return LintReport(results, time.monotonic() - start, list(self.helm_calls))


def _same_values(chart: Path, scenario: Path | None, seen: list[tuple[Any, str]]) -> str | None:
    """The earlier scenario of ``chart`` whose values equal this one's (an empty file equals the
    defaults), else None; records this scenario's values in ``seen``. Equal values render the same
    objects and meet the same checks, so the later scenario reuses the earlier one's results."""
    if scenario is None:
        data: Any = {}
    else:
        try:
            data = values.load_yaml(scenario)
        except HomeciError:
            return None  # the checks report the unreadable file
    for earlier, name in seen:
        if earlier == data:
            return name
    seen.append((data, rendering.scenario_name(scenario)))
    return None


def _weight(chart: Path) -> int:
    """A chart's relative render cost: the number of template files it renders (subcharts included)."""
    return 1 + sum(1 for p in chart.rglob("*") if "templates" in p.parts and p.is_file())


def _is_library(chart: Path) -> bool:
    try:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):  # helm lint reports the broken Chart.yaml
        return False
    return isinstance(meta, dict) and meta.get("type") == "library"


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def reads_capabilities(chart: Path) -> bool:
    """True if any template of the chart tree mentions ``.Capabilities`` (output may vary by version)."""
    for path in chart.rglob("*"):
        if path.is_file() and "templates" in path.relative_to(chart).parts:
            try:
                if "Capabilities" in path.read_text(errors="replace"):
                    return True
            except OSError:
                return True
    return False
