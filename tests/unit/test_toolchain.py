"""Toolchain resolution: override → cache → (build) → a one-line error saying what to install."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from homeci import toolchain
from homeci.errors import HomeciError


def fake_helm(directory: Path, version: str, *, executable: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "helm"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755 if executable else 0o644)
    return path


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "toolchain"
    monkeypatch.setenv("HOMECI_TOOLCHAIN", str(cache))
    monkeypatch.delenv("HOMECI_HELM3", raising=False)
    monkeypatch.delenv("HOMECI_HELM4", raising=False)
    return cache


def test_override_with_matching_major_is_used(empty_cache: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    helm = fake_helm(tmp_path / "ok", "v3.17.2+gabcdef")
    monkeypatch.setenv("HOMECI_HELM3", str(helm))
    assert toolchain.resolve("helm3") == helm
    assert toolchain.status("helm3") == ("override", helm)


def test_override_with_wrong_version(empty_cache: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    helm = fake_helm(tmp_path / "wrong", "v4.0.0")
    monkeypatch.setenv("HOMECI_HELM3", str(helm))
    with pytest.raises(HomeciError) as exc:
        toolchain.resolve("helm3")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("HOMECI_HELM3: ")
    assert "reports 'v4.0.0', expected '^v3\\\\.'" in msg
    assert msg.endswith(f"homeci pins helm3 {toolchain.tool('helm3').version}")


def test_override_not_executable(empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helm = fake_helm(tmp_path / "noexec", "v3.22.0", executable=False)
    monkeypatch.setenv("HOMECI_HELM3", str(helm))
    with pytest.raises(HomeciError) as exc:
        toolchain.resolve("helm3")
    expected = f"HOMECI_HELM3={helm}: not an executable file; fix the path or unset HOMECI_HELM3"
    assert str(exc.value) == expected


def test_override_missing_file(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMECI_HELM4", "/nonexistent/helm")
    with pytest.raises(HomeciError, match=r"^HOMECI_HELM4=/nonexistent/helm: not an executable file"):
        toolchain.resolve("helm4")


def test_missing_and_no_build_names_the_install_command(empty_cache: Path) -> None:
    with pytest.raises(HomeciError) as exc:
        toolchain.resolve("helm4")
    msg = str(exc.value)
    assert "\n" not in msg
    version = toolchain.tool("helm4").version
    assert msg.startswith(f"helm4 {version} is not installed: run `homeci toolchain install helm4`")
    assert "HOMECI_HELM4" in msg
    assert toolchain.status("helm4") == ("missing", None)


def _record_build(t: toolchain.Tool) -> None:
    (t.cached_path.parent / "build.json").write_text(json.dumps({"tool": t.name, "recipe": t.recipe}))


def test_cached_binary_must_report_the_pinned_version(empty_cache: Path) -> None:
    t = toolchain.tool("helm3")
    fake_helm(t.cached_path.parent, "v3.9.9")
    _record_build(t)
    with pytest.raises(HomeciError, match=rf"reports 'v3\.9\.9', expected '{re.escape(t.version)}'"):
        toolchain.resolve("helm3")


def test_cached_binary_with_pinned_version(empty_cache: Path) -> None:
    t = toolchain.tool("helm3")
    path = fake_helm(t.cached_path.parent, f"{t.version}+g1234")
    _record_build(t)
    assert toolchain.resolve("helm3") == path
    assert toolchain.status("helm3") == ("cached", path)


def test_cached_binary_from_an_older_recipe_is_stale(empty_cache: Path) -> None:
    t = toolchain.tool("helm3")
    path = fake_helm(t.cached_path.parent, t.version)
    assert toolchain.status("helm3") == ("stale", path)  # no build record at all
    (t.cached_path.parent / "build.json").write_text(json.dumps({"recipe": "0000"}))
    assert toolchain.status("helm3") == ("stale", path)
    with pytest.raises(HomeciError, match=r"older recipe .*run `homeci toolchain install helm3`"):
        toolchain.resolve("helm3")
    _record_build(t)
    assert toolchain.status("helm3") == ("cached", path)


def test_unknown_tool() -> None:
    with pytest.raises(HomeciError, match=r"^unknown tool 'helm5': known tools are "):
        toolchain.tool("helm5")
