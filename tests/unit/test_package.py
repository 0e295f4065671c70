"""``homeci package``: deterministic archives, index.yaml, refusing to change a published version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from homeci import packaging, paths
from homeci.errors import HomeciError, UsageError
from homeci.helm import Helm
from homeci_testing.support import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "charts"


def homeci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=120)


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A private copy of the good fixture chart, free to edit."""
    return Path(shutil.copytree(FIXTURES / "good", tmp_path / "src" / "good"))


def test_package_writes_archives_and_index(tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    results = packaging.package([FIXTURES / "good", FIXTURES / "umbrella"], dest,
                                repo_url="https://charts.example/homeci")
    assert [(r.name, r.version, r.state) for r in results] == [("good", "0.1.0", "new"),
                                                               ("umbrella", "0.1.0", "new")]
    index = yaml.safe_load((dest / "index.yaml").read_text())
    for r in results:
        entry = index["entries"][r.name][0]
        assert entry["urls"] == [f"https://charts.example/homeci/{r.name}-{r.version}.tgz"]
        assert entry["digest"] == packaging.sha256(r.archive) == r.digest
    with tarfile.open(dest / "umbrella-0.1.0.tgz") as tar:
        names = tar.getnames()
    assert "umbrella/charts/sub/values.schema.json" in names  # subcharts travel inside the umbrella
    assert names == sorted(names)


def test_packaging_is_deterministic(tmp_path: Path) -> None:
    a = packaging.package([FIXTURES / "good"], tmp_path / "a")[0].archive
    b = packaging.package([FIXTURES / "good"], tmp_path / "b")[0].archive
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        assert {m.mtime for m in tar.getmembers()} == {packaging.DEFAULT_EPOCH}


def test_identical_content_is_a_noop_and_keeps_index_times(chart: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    packaging.package([chart], dest, repo_url="https://c.example")
    first = (dest / "index.yaml").read_text()
    created = yaml.safe_load(first)["entries"]["good"][0]["created"]
    again = packaging.package([chart], dest, repo_url="https://c.example")
    assert again[0].state == "unchanged"
    assert yaml.safe_load((dest / "index.yaml").read_text())["entries"]["good"][0]["created"] == created


def test_changed_content_with_same_version_is_refused(chart: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    packaging.package([chart], dest)
    archive_before = (dest / "good-0.1.0.tgz").read_bytes()
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("replicas: 1", "replicas: 2"))
    with pytest.raises(HomeciError) as exc:
        packaging.package([chart], dest)
    assert str(exc.value) == (
        f"good 0.1.0 is already published in {dest}/good-0.1.0.tgz with different content: bump `version` in "
        f"{chart}/Chart.yaml (a published chart version must never change)")
    assert (dest / "good-0.1.0.tgz").read_bytes() == archive_before
    # bumping the version publishes it beside the old one
    (chart / "Chart.yaml").write_text((chart / "Chart.yaml").read_text().replace("0.1.0", "0.1.1"))
    assert packaging.package([chart], dest)[0].state == "new"
    versions = [e["version"] for e in yaml.safe_load((dest / "index.yaml").read_text())["entries"]["good"]]
    assert sorted(versions) == ["0.1.0", "0.1.1"]


def test_merged_index_with_other_content_is_refused(chart: Path, tmp_path: Path) -> None:
    published = tmp_path / "published"
    packaging.package([chart], published, repo_url="https://c.example")
    (chart / "templates" / "extra.yaml").write_text("# changed\n")
    refused = r"already published in .*published/index\.yaml with different content"
    with pytest.raises(HomeciError, match=refused):
        packaging.package([chart], tmp_path / "dist", merge_index=published / "index.yaml")
    assert not (tmp_path / "dist" / "good-0.1.0.tgz").exists()


def test_merge_keeps_entries_of_the_published_index(tmp_path: Path) -> None:
    published = tmp_path / "published"
    packaging.package([FIXTURES / "umbrella"], published, repo_url="https://c.example")
    dest = tmp_path / "dist"
    packaging.package([FIXTURES / "good"], dest, repo_url="https://c.example",
                      merge_index=published / "index.yaml")
    assert set(yaml.safe_load((dest / "index.yaml").read_text())["entries"]) == {"good", "umbrella"}


def test_oci_push_goes_through_helm(tmp_path: Path) -> None:
    real = Helm(3).binary
    log = tmp_path / "push.log"
    fake = tmp_path / "helm"
    digest = "sha256:" + "ab" * 32
    fake.write_text(f'#!/bin/sh\nif [ "$1" = push ]; then echo "$@" >> {log}; echo Pushed; '
                    f'echo "Digest: {digest}"; exit 0; fi\nexec {real} "$@"\n')
    fake.chmod(0o755)
    results = packaging.package([FIXTURES / "good"], tmp_path / "dist", oci="oci://registry.lab.test/charts",
                                helm=Helm(3, binary=fake))
    assert log.read_text().split() == ["push", str(tmp_path / "dist" / "good-0.1.0.tgz"),
                                       "oci://registry.lab.test/charts"]
    assert results[0].pushed == "oci://registry.lab.test/charts/good:0.1.0"
    assert results[0].oci_digest == digest


def test_oci_url_must_use_oci_scheme(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^--oci https://x: must start with oci://"):
        packaging.package([FIXTURES / "good"], tmp_path, oci="https://x")


def test_publishable_charts_are_the_top_level_ones() -> None:
    charts = packaging.publishable_charts()
    assert charts, "no charts under charts/"
    assert all(c.parent == paths.charts_dir() for c in charts)


def test_cli_refusal_is_one_line(chart: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    assert homeci("package", str(chart), "--dest", str(dest)).returncode == 0
    (chart / "values.yaml").write_text("replicas: 5\n" + (chart / "values.yaml").read_text())
    proc = homeci("package", str(chart), "--dest", str(dest))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("homeci: error: good 0.1.0 is already published")
    assert "bump `version` in" in lines[-1]


def test_dest_that_is_a_file_is_refused_in_one_line(chart: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    dest.write_text("not a directory\n")
    proc = homeci("package", str(chart), "--dest", str(dest))
    assert proc.returncode == 2, f"package --dest <file>: exit {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr and f"--dest {dest}: is a file" in proc.stderr, proc.stderr
    assert dest.read_text() == "not a directory\n", "the file given as --dest was changed"


# -- issue 12: packaging findings ---------------------------------------------------------------------


def test_identical_rerun_leaves_every_byte(chart: Path, tmp_path: Path) -> None:
    """A rerun with the same content is a true no-op: index.yaml keeps its bytes, `generated` included."""
    dest = tmp_path / "dist"
    packaging.package([chart], dest, repo_url="https://c.example")
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    os.utime(dest / "index.yaml", (0, 0))
    packaging.package([chart], dest, repo_url="https://c.example")
    after = {p.name: p.read_bytes() for p in dest.iterdir()}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"an identical rerun rewrote {changed} in {dest}"


def test_changed_index_still_gets_a_new_generated_time(chart: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    packaging.package([chart], dest, repo_url="https://c.example")
    first = yaml.safe_load((dest / "index.yaml").read_text())
    (chart / "Chart.yaml").write_text((chart / "Chart.yaml").read_text().replace("0.1.0", "0.1.1"))
    packaging.package([chart], dest, repo_url="https://c.example")
    second = yaml.safe_load((dest / "index.yaml").read_text())
    assert [e["version"] for e in second["entries"]["good"]] == ["0.1.1", "0.1.0"]
    assert second["generated"] != first["generated"], "index.yaml changed but kept the old generated time"


def test_chart_that_does_not_render_is_refused(chart: Path, tmp_path: Path) -> None:
    broken = "kind: ConfigMap\nname: {{ .Values.x | nosuchfunction }}\n"
    (chart / "templates" / "broken.yaml").write_text(broken)
    dest = tmp_path / "dist"
    with pytest.raises(HomeciError) as exc:
        packaging.package([chart], dest)
    message = str(exc.value)
    assert message.startswith(f"{chart}: its templates do not render with the default values ("), message
    assert "nosuchfunction" in message, f"helm's reason is missing: {message}"
    assert "\n" not in message
    assert not list(dest.glob("*")), f"a refused chart still wrote {sorted(p.name for p in dest.iterdir())}"


@pytest.mark.parametrize("url", ["not a url", "charts.example.org", "ftp://charts.example.org",
                                 "https://", "https://charts.example.org/a b", "https://c.example/?x=1"])
def test_repo_url_must_be_an_http_url(tmp_path: Path, url: str) -> None:
    with pytest.raises(UsageError, match=r"^--repo-url .*: not an http\(s\) URL; give the address"):
        packaging.package([FIXTURES / "good"], tmp_path / "dist", repo_url=url)
    assert not (tmp_path / "dist").exists(), "a refused --repo-url still created the output directory"


def test_cli_refuses_a_bad_repo_url_in_one_line(tmp_path: Path) -> None:
    proc = homeci("package", str(FIXTURES / "good"), "--dest", str(tmp_path / "d"), "--repo-url", "not a url")
    assert proc.returncode == 2, f"--repo-url 'not a url': exit {proc.returncode}: {proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    expected = "homeci: error: --repo-url 'not a url': not an http(s) URL"
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr


def test_dest_below_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    with pytest.raises(UsageError, match=rf"^--dest {blocker}/dist: cannot create the directory"):
        packaging.package([FIXTURES / "good"], blocker / "dist")
    with pytest.raises(UsageError, match=rf"^--dest {blocker}: is a file, not a directory"):
        packaging.package([FIXTURES / "good"], blocker)
