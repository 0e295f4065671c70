"""The security scan: the pinned checkov over every scenario of both charts (and each chart's defaults)
finds nothing that toolchain/checkov-allowed.yaml does not explain, and every allow-list object still occurs.

checkov is a toolchain entry of its own (a virtualenv in the toolchain cache): without it the scan is
skipped with the install command, except under CI (`CI` set), where a missing scanner fails."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from homeci import rendering, scan
from homeci.errors import HomeciError

from .conftest import ROOT

TARGETS = scan.targets()
README = ROOT / "charts" / "homeci-umbrella" / "README.md"
TABLE_TITLE = "Security scan findings"


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> scan.Report:
    try:
        scan.checkov_binary()
    except HomeciError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the security scan, but: {exc}")
        pytest.skip(str(exc))
    return scan.run(TARGETS, workdir=tmp_path_factory.mktemp("checkov"))


@pytest.mark.parametrize("target", [t.name for t in TARGETS])
def test_no_unexplained_findings(report: scan.Report, target: str) -> None:
    result = report.results[target]
    assert result.passed > 0 or not result.failed, f"{target}: checkov ran no check"
    bad = [f for f in result.failed if report.explained(f) is None]
    assert not bad, (
        f"checkov findings in {target} that {scan.ALLOW_LIST} does not explain (fix the chart, or add the "
        "check, object and reason there and to the umbrella README's table):\n"
        + "\n".join(f"  {f.check} {f.obj}: {f.title}" for f in bad)
    )


def test_every_allowed_finding_still_occurs(report: scan.Report) -> None:
    stale = report.stale()
    assert not stale, (
        f"{scan.ALLOW_LIST} allows findings no render produces any more (remove them there and in the "
        "README table):\n" + "\n".join(f"  {a.check} {pattern}" for a, pattern in stale)
    )


def test_the_scan_covers_every_scenario() -> None:
    names = {t.name for t in TARGETS}
    for chart in scan.RELEASES:
        for values in rendering.scenarios(ROOT / "charts" / chart):
            assert f"{chart}/{rendering.scenario_name(values)}" in names, f"{values} is not scanned"
        assert f"{chart}/defaults" in names, f"{chart} with no values file is not scanned"


def readme_table() -> dict[str, str]:
    """Check named in the first column -> its rows (joined), of the README's security-findings table."""
    text = README.read_text()
    match = re.search(rf"^#+ {TABLE_TITLE}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"{README.relative_to(ROOT)} has no '{TABLE_TITLE}' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")][2:]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for check in re.findall(r"CKV2?_K8S_\d+|Pod Security", cells[0]):
            out[check] = out.get(check, "") + row
    return out


def test_readme_table_explains_every_allowed_check() -> None:
    table = readme_table()
    for entry in scan.load_allowed():
        row = table.get(entry.check)
        assert row, f"{README.relative_to(ROOT)} '{TABLE_TITLE}' has no row for {entry.check}"
        for pattern in entry.objects:
            name = pattern.split("/", 1)[1].removeprefix("homeci-pipelines-").removeprefix("homeci-")
            assert name.rstrip("*") in row, (
                f"{README.relative_to(ROOT)} row {entry.check} does not name {pattern} (as {name})"
            )
    assert table.get("Pod Security"), (
        f"{README.relative_to(ROOT)} '{TABLE_TITLE}' lacks the build namespace's Pod Security level row"
    )
    assert "privileged" in table["Pod Security"], "the Pod Security row must state the `privileged` level"


def test_allow_list_entries_are_well_formed(tmp_path: Path) -> None:
    """The loader refuses an entry without a reason or with a bare object name (no Kind/)."""
    entries = scan.load_allowed()
    assert entries and all(a.reason and a.objects for a in entries)
    bad = tmp_path / "allowed.yaml"
    reason = "because it is fine here for a good reason"
    bad.write_text(f"allowed:\n  - {{check: CKV_K8S_1, objects: [homeci-drone], reason: {reason}}}\n")
    with pytest.raises(HomeciError, match="Kind/name"):
        scan.load_allowed(bad)
    bad.write_text("allowed:\n  - {check: CKV_K8S_1, objects: [Deployment/x], reason: fine}\n")
    with pytest.raises(HomeciError, match="reason"):
        scan.load_allowed(bad)
