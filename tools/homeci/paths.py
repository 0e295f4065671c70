"""Where things are: the repository checkout, its charts, and the per-user cache."""

from __future__ import annotations

import os
from pathlib import Path

from homeci.errors import HomeciError, UsageError


def repo_root() -> Path:
    """The checkout homeci runs from (``$HOMECI_ROOT`` overrides; else found from this package's location)."""
    env = os.environ.get("HOMECI_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "charts").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    # Fall back to the working directory so an installed (non-editable) homeci still works in a checkout.
    cwd = Path.cwd()
    for parent in (cwd, *cwd.parents):
        if (parent / "charts").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    raise HomeciError(
        "cannot find the homeci checkout (a folder with charts/ and pyproject.toml): "
        "run homeci from inside it or set HOMECI_ROOT"
    )


def charts_dir() -> Path:
    return repo_root() / "charts"


def sample_app() -> Path:
    """The example app the smoke flow and the tests push (a .drone.yml, Dockerfile, VERSION and k8s/)."""
    return repo_root() / "examples" / "sample-app"


def static_site() -> Path:
    """The second example app (examples/static-site): what the person tier pushes as a team member."""
    return repo_root() / "examples" / "static-site"


def cache_dir() -> Path:
    """Per-user cache root: ``$HOMECI_CACHE`` or ``$XDG_CACHE_HOME/homeci`` or ``~/.cache/homeci``."""
    env = os.environ.get("HOMECI_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "homeci"


def toolchain_dir() -> Path:
    """Where built binaries live: ``$HOMECI_TOOLCHAIN`` or ``<cache>/toolchain``."""
    env = os.environ.get("HOMECI_TOOLCHAIN")
    return Path(env).expanduser() if env else cache_dir() / "toolchain"


def find_charts(root: Path | None = None) -> list[Path]:
    """Every chart under ``charts/``, nested subcharts included, parents before children.

    A chart reached through a symbolic link is left out: every chart carries the library chart as
    ``charts/homeci-lib``, a link to ``charts/homeci-lib`` itself, which is found once, at its own place.
    """
    base = root or charts_dir()
    found = sorted(p.parent for p in base.rglob("Chart.yaml")
                   if "tmpcharts" not in p.parts and not _through_link(p.parent, base))
    return found


def _through_link(path: Path, base: Path) -> bool:
    """True if ``path`` or a folder between it and ``base`` is a symbolic link."""
    while path != base and base in path.parents:
        if path.is_symlink():
            return True
        path = path.parent
    return False


def resolve_chart(name_or_path: str) -> Path:
    """A chart given as a path or as a name under ``charts/`` (``homeci-umbrella``, ``registry``)."""
    candidate = Path(name_or_path)
    if (candidate / "Chart.yaml").is_file():
        return candidate.resolve()
    matches = [c for c in find_charts() if c.name == name_or_path]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted({c.name for c in find_charts()})) or "none"
    if candidate.is_dir():
        raise UsageError(f"{name_or_path}: no Chart.yaml in this directory; give a chart directory or one "
                         f"of: {known}")
    if not matches:
        raise UsageError(f"unknown chart {name_or_path!r}: give a chart directory or one of: {known}")
    raise UsageError(
        f"chart name {name_or_path!r} is ambiguous ({', '.join(map(str, matches))}): give its path instead"
    )
