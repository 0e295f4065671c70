"""The security scan: checkov over the rendered manifests of every scenario of both charts.

Every target (a chart rendered with no values file, and with each ``ci/*-values.yaml``) is written to
a file and scanned by the pinned checkov (``toolchain/toolchain.toml`` [checkov]) in ONE Python process of its
own virtualenv: checkov's start-up costs ~10 s, but one ``checkov -d`` over all files would build one
graph in which a NetworkPolicy of one scenario "covers" the pods of every other (its graph checks join
objects by labels, not by file), so :data:`DRIVER` runs checkov's Kubernetes runner once per file.
Findings are compared with the allow-list ``toolchain/checkov-allowed.yaml`` (check id, ``Kind/name``
patterns, the reason): a finding no entry covers is *unexplained*; an entry pattern that matches no finding in
any target is *stale* (the list cannot rot).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import contract, manifests, rendering, toolchain
from homeci.errors import HomeciError
from homeci.lint import kubeversions
from homeci.paths import charts_dir, repo_root

ALLOW_LIST = Path("toolchain") / "checkov-allowed.yaml"
# Release names the charts are rendered with (as the README installs them and the tests render them).
RELEASES = {contract.UMBRELLA: rendering.DEFAULT_RELEASE, contract.PIPELINES: contract.PIPELINES_RELEASE}
NAMESPACE = contract.NAMESPACE
# Offline and quiet: no Prisma Cloud download, no PyPI version check, no telemetry mapping.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
# Run by checkov's own interpreter: argv = [report.json, file...]; one Runner (one graph) per file, the
# same Kubernetes runner and checks `checkov --framework kubernetes` uses (verified equal counts).
DRIVER = """
import json, sys
from checkov.kubernetes.runner import Runner
from checkov.runner_filter import RunnerFilter
out = {}
for path in sys.argv[2:]:
    only = RunnerFilter(framework=["kubernetes"])
    report = Runner().run(root_folder=None, files=[path], runner_filter=only)
    out[path] = {"passed": len(report.passed_checks), "errors": sorted(report.parsing_errors),
                 "failed": [[r.check_id, r.check_name, r.resource] for r in report.failed_checks]}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
"""


@dataclass(frozen=True)
class Target:
    """One render to scan: ``chart`` with ``values`` (None: the chart's defaults, no -f)."""

    chart: Path
    values: Path | None

    @property
    def name(self) -> str:
        """``<chart>/<scenario>``, e.g. ``homeci-umbrella/kind`` (``defaults``: no values file)."""
        return f"{self.chart.name}/{rendering.scenario_name(self.values)}"

    @property
    def file_name(self) -> str:
        return self.name.replace("/", "__") + ".yaml"

    def render(self) -> str:
        return rendering.render_text(
            self.chart, [self.values] if self.values else [], release=RELEASES[self.chart.name],
            namespace=NAMESPACE, kube_version=kubeversions.validation_range(self.chart)[1])


def targets(root: Path | None = None) -> list[Target]:
    """Every scenario of both charts, plus each chart's defaults."""
    base = root or charts_dir()
    out: list[Target] = []
    for chart_name in RELEASES:
        chart = base / chart_name
        out.append(Target(chart, None))
        out.extend(Target(chart, v) for v in rendering.scenarios(chart))
    return out


@dataclass(frozen=True)
class Finding:
    check: str  # CKV_K8S_43
    title: str  # "Image should use digest"
    obj: str  # Deployment/homeci-drone
    target: str  # homeci-umbrella/default

    def __str__(self) -> str:
        return f"{self.target}: {self.check} {self.obj} ({self.title})"


@dataclass(frozen=True)
class Allowed:
    """One allow-list entry: ``check`` may fail on objects matching ``objects`` (``Kind/name`` globs)."""

    check: str
    objects: tuple[str, ...]
    reason: str

    def pattern_for(self, finding: Finding) -> str | None:
        if finding.check != self.check:
            return None
        return next((p for p in self.objects if fnmatch.fnmatchcase(finding.obj, p)), None)


@dataclass
class TargetResult:
    target: str
    passed: int = 0
    failed: list[Finding] = field(default_factory=list)


@dataclass
class Report:
    results: dict[str, TargetResult]
    allowed: tuple[Allowed, ...]

    def explained(self, finding: Finding) -> Allowed | None:
        return next((a for a in self.allowed if a.pattern_for(finding)), None)

    def unexplained(self) -> list[Finding]:
        return [f for r in self.results.values() for f in r.failed if self.explained(f) is None]

    def stale(self) -> list[tuple[Allowed, str]]:
        """(entry, pattern) pairs that match no finding of any target."""
        used = {(a.check, p) for r in self.results.values() for f in r.failed
                for a in self.allowed if (p := a.pattern_for(f) or "")}
        return [(a, p) for a in self.allowed for p in a.objects if (a.check, p) not in used]


def load_allowed(path: Path | None = None) -> tuple[Allowed, ...]:
    """The allow-list, checked: each entry has a check id, at least one ``Kind/name`` pattern, a reason."""
    file = path or repo_root() / ALLOW_LIST
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise HomeciError(f"{file}: the security-scan allow-list is missing; restore it from git") from None
    entries = (data or {}).get("allowed") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise HomeciError(f"{file}: expected a mapping with a list `allowed:`")
    out: list[Allowed] = []
    for i, e in enumerate(entries):
        where = f"{file}: allowed[{i}]"
        if not isinstance(e, dict) or set(e) != {"check", "objects", "reason"}:
            raise HomeciError(f"{where}: needs exactly the keys check, objects, reason")
        objects = e["objects"]
        if not (isinstance(objects, list) and objects
                and all(isinstance(o, str) and "/" in o for o in objects)):
            raise HomeciError(f"{where} ({e['check']}): objects must be a list of Kind/name patterns")
        if not isinstance(e["reason"], str) or len(e["reason"].split()) < 8:
            raise HomeciError(f"{where} ({e['check']}): the reason must say why, in a sentence")
        out.append(Allowed(str(e["check"]), tuple(objects), " ".join(e["reason"].split())))
    return tuple(out)


def checkov_binary() -> Path:
    """The pinned checkov (a HomeciError naming `homeci toolchain install checkov` when absent)."""
    return toolchain.resolve("checkov")


def _object_names(text: str) -> list[str]:
    return sorted({m.name for m in manifests.parse(text) if m.name}, key=len, reverse=True)


def _object_of(resource: str, names: list[str]) -> str:
    """``Deployment.homeci.homeci-drone`` -> ``Deployment/homeci-drone``. checkov names a pod it derives
    from a workload's template ``Pod.<ns>.<name>.<labels...>``: the longest rendered name that the rest
    starts with is the object's name."""
    kind, _, rest = resource.partition(".")
    _ns, _, rest = rest.partition(".")
    for name in names:
        if rest == name or rest.startswith(name + "."):
            return f"{kind}/{name}"
    return f"{kind}/{rest}"


def interpreter(checkov: Path) -> Path:
    """The Python that runs ``checkov`` (its entry point's ``#!`` line): the driver imports checkov."""
    try:
        first = checkov.resolve().read_bytes()[:512].split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        first = ""
    if not first.startswith("#!") or not Path(first[2:].strip()).is_file():
        raise HomeciError(f"{checkov}: not checkov's Python entry point (no #! line naming its Python); "
                          "run `homeci toolchain install checkov` or point HOMECI_CHECKOV at one")
    return Path(first[2:].strip())


def run(scan: Iterable[Target], *, workdir: Path | None = None,
        allowed: tuple[Allowed, ...] | None = None) -> Report:
    """Render every target to a file, scan each with checkov (one graph per file), attribute the findings."""
    python = interpreter(checkov_binary())
    chosen = list(scan)
    with tempfile.TemporaryDirectory(prefix="homeci-scan-") as tmp:
        folder = (workdir or Path(tmp)) / "renders"
        folder.mkdir(parents=True, exist_ok=True)
        names: dict[str, list[str]] = {}
        files: dict[str, Target] = {}
        for t in chosen:
            text = t.render()
            path = folder / t.file_name
            path.write_text(text)
            names[str(path)] = _object_names(text)
            files[str(path)] = t
        out = folder.parent / "checkov.json"
        proc = subprocess.run([str(python), "-c", DRIVER, str(out), *files], capture_output=True, text=True,
                              cwd=folder, check=False, timeout=900, env={**os.environ, **CHECKOV_ENV})
        if proc.returncode != 0 or not out.is_file():
            raise HomeciError(f"checkov ({python}) failed with exit {proc.returncode}: "
                              f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        raw: dict[str, Any] = json.loads(out.read_text())
    results: dict[str, TargetResult] = {}
    for file, t in files.items():
        scanned = raw.get(file)
        if not isinstance(scanned, dict):
            raise HomeciError(f"checkov reported nothing for {t.name}")
        if scanned["errors"]:
            raise HomeciError(f"checkov could not parse the render of {t.name}: {scanned['errors']}")
        result = TargetResult(t.name, passed=int(scanned["passed"]))
        for check, title, resource in scanned["failed"]:
            result.failed.append(Finding(str(check), str(title), _object_of(str(resource), names[file]),
                                         t.name))
        results[t.name] = result
    return Report(results, load_allowed() if allowed is None else allowed)
