"""The library chart charts/homeci-lib: every chart carries it as ``charts/homeci-lib``, a symbolic link to
the one real folder. Chart discovery finds it once, packaging leaves it out (it installs nothing alone),
Helm's notes about the links stay out of homeci's errors, and the links and dependencies are in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from homeci import packaging, paths
from homeci.helm import _summarise, _without_link_notes
from homeci.lint import values as lint_values

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
LIBRARY = CHARTS / "homeci-lib"
SUBCHARTS = ("traefik", "registry", "gogs", "drone")
CONSUMERS = [CHARTS / "homeci-umbrella", CHARTS / "drone-pipelines",
             *(CHARTS / "homeci-umbrella" / "charts" / sub for sub in SUBCHARTS)]


def _chart(folder: Path, name: str, kind: str = "application") -> Path:
    folder.mkdir(parents=True)
    (folder / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\ntype: {kind}\n")
    return folder


def test_discovery_skips_charts_behind_links(tmp_path: Path) -> None:
    base = tmp_path / "charts"
    lib = _chart(base / "lib", "lib", "library")
    app = _chart(base / "app", "app")
    sub = _chart(app / "charts" / "sub", "sub")
    (app / "charts" / "lib").symlink_to(os.path.relpath(lib, app / "charts"))
    (sub / "charts").mkdir()
    (sub / "charts" / "lib").symlink_to(os.path.relpath(lib, sub / "charts"))
    assert paths.find_charts(base) == [app, sub, lib]


def test_library_is_not_published(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = tmp_path / "charts"
    _chart(base / "lib", "lib", "library")
    app = _chart(base / "app", "app")
    monkeypatch.setattr(paths, "charts_dir", lambda: base)
    assert packaging.publishable_charts() == [app]


def test_real_library_chart_is_found_once_and_not_published() -> None:
    found = [c for c in paths.find_charts() if c.name == "homeci-lib"]
    assert found == [LIBRARY], f"homeci-lib found at {found}: the links must not count as charts"
    assert LIBRARY not in packaging.publishable_charts()


def test_lint_does_not_validate_library_values() -> None:
    keys = [key for key, _path, _cond in lint_values.dependencies(CHARTS / "homeci-umbrella")]
    assert "homeci-lib" not in keys and {"traefik", "registry", "gogs", "drone"} <= set(keys)


@pytest.mark.parametrize("chart", CONSUMERS, ids=[c.name for c in CONSUMERS])
def test_every_chart_links_and_declares_the_library(chart: Path) -> None:
    link = chart / "charts" / "homeci-lib"
    assert link.is_symlink(), f"{link} must be a symbolic link to charts/homeci-lib"
    target = os.readlink(link)
    assert not os.path.isabs(target) and link.resolve() == LIBRARY.resolve(), (
        f"{link} -> {target}: must be the relative path to charts/homeci-lib")
    deps = yaml.safe_load((chart / "Chart.yaml").read_text()).get("dependencies") or []
    lib = [d for d in deps if d.get("name") == "homeci-lib"]
    version = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())["version"]
    repository = f"file://{os.path.relpath(LIBRARY, chart)}"
    assert lib == [{"name": "homeci-lib", "version": version, "repository": repository}], (
        f"{chart / 'Chart.yaml'}: dependencies must list homeci-lib {version} from {repository}")


def test_library_defines_every_helper_once() -> None:
    """No chart keeps a copy of a helper: each name is defined in one file of the whole tree."""
    seen: dict[str, list[str]] = {}
    for path in sorted(CHARTS.rglob("*.tpl")):  # rglob does not follow the links
        for line in path.read_text().splitlines():
            if 'define "' in line:
                name = line.split('define "', 1)[1].split('"', 1)[0]
                seen.setdefault(name, []).append(str(path.relative_to(CHARTS)))
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert not twice, f"helpers defined more than once: {twice}"


def test_helm_link_notes_are_dropped() -> None:
    stderr = ("walk.go:75: found symbolic link in path: /c/charts/homeci-lib resolves to /c/homeci-lib. "
              "Contents of linked file included and used\n"
              'level=INFO msg="found symbolic link in path. Contents of linked file included and used" '
              "path=/c/charts/homeci-lib resolved=/c/homeci-lib\n"
              "Error: execution error at (x/templates/a.yaml:1:4): global.domain is empty: set it\n")
    assert _without_link_notes(stderr) == stderr.splitlines(keepends=True)[-1]
    assert _summarise(_without_link_notes(stderr)).startswith("Error: execution error")
