"""`homeci release`: the version rule, the lint gate, what it writes (versions, pins, appVersion, Artifact Hub
annotations, CHANGELOG, artifacthub-repo.yml) and where the previous release comes from. Runs on a small
suite of charts in a git repository of its own."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from homeci import release
from homeci.errors import HomeciError
from homeci.helm import Helm
from homeci.release import Change, Section, Version

ROOT = Path(__file__).resolve().parents[2]

CHANGELOG = """# Changelog

## [Unreleased]

### Fixed

- The app answers on /health again.

### Restarts

- `Deployment/<release>-app`: its probe changed.
"""


def _chart(path: Path, name: str, version: str, app_version: str, *, image: str = "",
           deps: tuple[str, ...] = ()) -> None:
    path.mkdir(parents=True)
    lines = ["apiVersion: v2", f"name: {name}", "# a comment homeci release keeps", f"version: {version}",
             f'appVersion: "{app_version}"', "type: application"]
    if deps:
        lines.append("dependencies:")
        for dep in deps:
            lines += [f"  - name: {dep}", f"    version: {version}", f"    repository: file://charts/{dep}"]
    lines += ["annotations:", "  artifacthub.io/license: Apache-2.0"]
    (path / "Chart.yaml").write_text("\n".join(lines) + "\n")
    (path / "values.yaml").write_text(f"image: {image or 'example.org/' + name + ':1.0'}\n")
    (path / "templates").mkdir()
    (path / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-" + name + "\n"
        "spec:\n  selector:\n    matchLabels: {app: " + name + "}\n  template:\n    metadata:\n"
        "      labels: {app: " + name + "}\n    spec:\n      containers:\n        - name: " + name + "\n"
        "          image: {{ .Values.image }}\n")


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A suite like homeci's: charts/app with subchart db, charts/pipes; a CHANGELOG; one commit."""
    root = tmp_path / "project"
    _chart(root / "charts" / "app", "app", "0.1.0", "0.1.0", deps=("db",))
    _chart(root / "charts" / "app" / "charts" / "db", "db", "0.1.0", "15.2", image="example.org/db:15.2")
    _chart(root / "charts" / "pipes", "pipes", "0.1.0", "0.1.0", image="example.org/pipes:2.0")
    (root / "CHANGELOG.md").write_text(CHANGELOG)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "toolchain").mkdir()
    shutil.copy(ROOT / "toolchain" / "toolchain.toml", root / "toolchain" / "toolchain.toml")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "initial")
    return root


@pytest.mark.parametrize(("kinds", "before", "after"), [
    (["Fixed"], "1.2.3", "1.2.4"),
    (["Fixed", "Security"], "1.2.3", "1.2.4"),
    (["Fixed", "Added"], "1.2.3", "1.3.0"),
    (["Deprecated"], "1.2.3", "1.3.0"),
    (["Removed"], "1.2.3", "2.0.0"),
    (["Removed"], "0.4.1", "0.5.0"),          # breaking while 0.x: a minor bump
    (["Changed:**Breaking** values renamed"], "1.2.3", "2.0.0"),
])
def test_the_version_rule(kinds: list[str], before: str, after: str) -> None:
    changes = [Change(k.split(":")[0], k.split(":", 1)[1] if ":" in k else "x") for k in kinds]
    section = Section("Unreleased", "", 1, changes)
    assert str(Version.parse(before).bump(section.level())) == after, f"{kinds} after {before}"


def test_semver_order_puts_a_pre_release_first() -> None:
    versions = ["0.1.0", "0.1.0-git.abc1234", "0.0.9", "0.1.1", "0.1.0-rc.2", "0.1.0-rc.10"]
    ordered = sorted((Version.parse(v) for v in versions), key=Version.key)
    assert [str(v) for v in ordered] == ["0.0.9", "0.1.0-git.abc1234", "0.1.0-rc.2", "0.1.0-rc.10", "0.1.0",
                                         "0.1.1"]


def test_first_release_keeps_the_charts_version(project: Path) -> None:
    plan = release.plan(project)
    assert (str(plan.version), plan.level, plan.previous) == ("0.1.0", "first", None)
    assert [c.name for c in plan.charts] == ["app", "pipes"]


def test_release_writes_versions_pins_changelog_and_annotations(project: Path) -> None:
    _git(project, "tag", "v0.1.0")
    plan = release.plan(project)
    assert (str(plan.previous), str(plan.version), plan.level) == ("0.1.0", "0.1.1", "patch")
    release.apply(project, plan, date=dt.date(2026, 1, 2), images=release.chart_images,
                  fingerprint="ABCD" * 10, key_url="https://charts.example.org/key.asc")

    app = yaml.safe_load((project / "charts/app/Chart.yaml").read_text())
    db = yaml.safe_load((project / "charts/app/charts/db/Chart.yaml").read_text())
    pipes = yaml.safe_load((project / "charts/pipes/Chart.yaml").read_text())
    pin = app["dependencies"][0]["version"]
    assert (app["version"], app["appVersion"], pin) == ("0.1.1", "0.1.1", "0.1.1")
    assert (db["version"], db["appVersion"]) == ("0.1.1", "15.2"), "a subchart keeps its upstream appVersion"
    assert (pipes["version"], pipes["appVersion"]) == ("0.1.1", "0.1.1")
    assert "# a comment homeci release keeps" in (project / "charts/app/Chart.yaml").read_text()

    ann = app["annotations"]
    assert ann["artifacthub.io/license"] == "Apache-2.0", "an annotation homeci does not write was dropped"
    assert yaml.safe_load(ann["artifacthub.io/changes"]) == [
        {"kind": "fixed", "description": "The app answers on /health again."},
        {"kind": "changed", "description": "upgrade restarts Deployment/<release>-app: its probe changed."}]
    assert yaml.safe_load(ann["artifacthub.io/images"]) == [
        {"name": "app", "image": "example.org/app:1.0"}, {"name": "db", "image": "example.org/db:15.2"}]
    assert yaml.safe_load(pipes["annotations"]["artifacthub.io/images"]) == [
        {"name": "pipes", "image": "example.org/pipes:2.0"}]
    assert yaml.safe_load(ann["artifacthub.io/signKey"]) == {
        "fingerprint": "ABCD" * 10, "url": "https://charts.example.org/key.asc"}

    sections = release.parse_changelog(project / "CHANGELOG.md")
    assert [(s.title, s.date) for s in sections] == [("Unreleased", ""), ("0.1.1", "2026-01-02")]
    assert sections[0].empty and sections[1].changes[0].text == "The app answers on /health again."
    repo_meta = yaml.safe_load((project / "artifacthub-repo.yml").read_text())
    assert repo_meta["signKey"] == {"fingerprint": "ABCD" * 10, "url": "https://charts.example.org/key.asc"}

    # the released suite still renders (the pins match the subchart) and plans nothing more until changes come
    Helm(3).template(project / "charts" / "app")
    with pytest.raises(HomeciError, match=r"release 0\.1\.1 is prepared; commit it and tag v0\.1\.1"):
        release.plan(project)
    assert str(release.next_version(project)) == "0.1.1", "a prepared release is the next version"
    _git(project, "commit", "-qam", "Release 0.1.1")
    _git(project, "tag", "v0.1.1")
    with pytest.raises(HomeciError, match=r"CHANGELOG\.md: \[Unreleased\] lists no change"):
        release.plan(project)
    assert str(release.next_version(project)) == "0.1.2", "with nothing listed the next version is a patch"


def test_charts_keep_the_released_version_between_releases(project: Path) -> None:
    _git(project, "tag", "v0.2.0")
    with pytest.raises(HomeciError) as exc:
        release.plan(project)
    assert str(exc.value) == ("charts carry version 0.1.0 but the newest release tag is v0.2.0: between "
                              "releases the charts keep the released version; set it back to 0.2.0")


def test_charts_with_different_versions_are_refused(project: Path) -> None:
    file = project / "charts/pipes/Chart.yaml"
    file.write_text(file.read_text().replace("version: 0.1.0", "version: 0.2.0"))
    with pytest.raises(HomeciError, match=rf"^{file}: version 0.2.0 differs from 0.1.0 in .*app/Chart.yaml"):
        release.suite_version(project)


@pytest.mark.parametrize(("line", "message"), [
    ("### Improved", "unknown kind 'Improved'; use one of Added, Changed"),
    ("## Next", "'## Next' is not '## [Unreleased]' or '## [X.Y.Z] - YYYY-MM-DD'"),
    ("## [1.x] - 2026-01-01", "section '1.x': not a semantic version"),
])
def test_a_malformed_changelog_names_file_and_line(project: Path, line: str, message: str) -> None:
    path = project / "CHANGELOG.md"
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(HomeciError) as exc:
        release.parse_changelog(path)
    number = len(path.read_text().splitlines())
    assert str(exc.value).startswith(f"{path}:{number}: "), str(exc.value)
    assert message in str(exc.value), str(exc.value)


def test_restart_entries_name_their_workload_first(project: Path) -> None:
    path = project / "CHANGELOG.md"
    path.write_text(path.read_text() + "- the gogs pod restarts\n")
    with pytest.raises(HomeciError, match=r"a Restarts entry names its workload first"):
        release.parse_changelog(path)


def test_previous_release_is_the_tag_else_the_recorded_commit(project: Path) -> None:
    with pytest.raises(HomeciError, match=r"toolchain/release\.toml: no \[upgrade-baseline\] commit"):
        release.previous_release(project)
    first = _git(project, "rev-parse", "HEAD").strip()
    (project / "toolchain" / "release.toml").write_text(f'[upgrade-baseline]\ncommit = "{first}"\n')
    assert release.previous_release(project) == release.Baseline(first, first, "recorded commit")
    (project / "toolchain" / "release.toml").write_text('[upgrade-baseline]\ncommit = "0123456789abcdef"\n')
    with pytest.raises(HomeciError, match=r"commit 0123456789abcdef is not in this clone; fetch the history"):
        release.previous_release(project)
    _git(project, "tag", "v0.1.0")
    baseline = release.previous_release(project)
    assert (baseline.ref, baseline.commit, baseline.source, str(baseline.version)) == (
        "v0.1.0", first, "tag", "0.1.0")
    exported = release.export_charts(project, baseline.commit, project.parent / "old")
    assert (exported / "app" / "charts" / "db" / "Chart.yaml").is_file()


def test_restarts_after_a_release_come_from_newer_sections() -> None:
    sections = [Section("Unreleased", "", 1, restarts=[release.Restart("Deployment/<release>-a", "x")]),
                Section("0.2.0", "2026-01-01", 5, restarts=[release.Restart("Deployment/<release>-b", "y")]),
                Section("0.1.0", "2025-12-01", 9, restarts=[release.Restart("Deployment/<release>-c", "z")])]
    refs = [r.ref("homeci") for r in release.restarts_after(sections, Version.parse("0.1.0"))]
    assert refs == ["Deployment/homeci-a", "Deployment/homeci-b"]


def test_the_real_charts_list_every_image_they_render() -> None:
    """artifacthub.io/images is the render's image list (defaults and every scenario), kept up to date."""
    for chart in release.published_charts(ROOT):
        annotations = yaml.safe_load((chart / "Chart.yaml").read_text()).get("annotations") or {}
        listed = yaml.safe_load(annotations.get("artifacthub.io/images") or "[]")
        rendered = release.chart_images(chart)
        assert listed == rendered, (
            f"{chart / 'Chart.yaml'} annotations.artifacthub.io/images lists {[i['image'] for i in listed]}, "
            f"the render has {[i['image'] for i in rendered]}: run `homeci release --images-only`")


def _homeci(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "HOMECI_ROOT": str(root), "COLUMNS": "200"}, timeout=600)


def test_cli_refuses_a_release_whose_lint_fails(project: Path) -> None:
    bad = project / "charts" / "pipes" / "templates" / "broken.yaml"
    bad.write_text("{{ if }}\n")
    before = {p: p.read_text() for p in project.rglob("Chart.yaml")}
    proc = _homeci(project, "release")
    assert proc.returncode == 1, f"homeci release with a broken chart: exit {proc.returncode}\n{proc.stderr}"
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("homeci: error: ") and "lint check(s) failed" in last, proc.stderr
    assert {p: p.read_text() for p in project.rglob("Chart.yaml")} == before, "a refused release wrote files"
    assert "## [Unreleased]" in (project / "CHANGELOG.md").read_text()


def test_cli_dry_run_shows_the_plan_and_writes_nothing(project: Path) -> None:
    _git(project, "tag", "v0.1.0")
    proc = _homeci(project, "release", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "release 0.1.1 (patch) after 0.1.0" in proc.stdout, proc.stdout
    assert "example.org/db:15.2" in proc.stdout, proc.stdout
    assert _git(project, "status", "--porcelain") == "", "a dry run changed the tree"
