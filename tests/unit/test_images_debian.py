"""Debian flavors: the mirror comes from the machine's apt sources, and a flavor's cache key changes
with its packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci.errors import HomeciError
from homeci.images import debian


def test_mirror_from_deb822_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMECI_DEBIAN_MIRROR", raising=False)
    f = tmp_path / "debian.sources"
    f.write_text("Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
                 "Types: deb\nURIs: http://mirror.lan/debian\nSuites: bookworm\n")
    assert debian.mirror([f]) == "http://mirror.lan/debian"


def test_mirror_from_one_line_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOMECI_DEBIAN_MIRROR", raising=False)
    f = tmp_path / "sources.list"
    f.write_text("# comment\ndeb [signed-by=/k.gpg] http://ftp.example/debian bookworm main\n")
    assert debian.mirror([f]) == "http://ftp.example/debian"
    assert debian.mirror([tmp_path / "missing"]) == debian.DEFAULT_MIRROR


def test_mirror_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMECI_DEBIAN_MIRROR", "http://local/debian")
    assert debian.mirror([]) == "http://local/debian"


def test_flavor_key_follows_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    before = debian.flavor_key("git")
    assert debian.flavor_key("git") == before
    git = debian.FLAVORS["git"]
    monkeypatch.setitem(debian.FLAVORS, "git", debian.Flavor((*git.packages, "git-lfs"), git.release))
    assert debian.flavor_key("git") != before
    monkeypatch.setitem(debian.FLAVORS, "git", debian.Flavor(git.packages, "trixie"))
    assert debian.flavor_key("git") != before
    with pytest.raises(HomeciError, match="unknown Debian flavor"):
        debian.flavor_key("nope")
