"""Pinned upstream source archives: the programs the Go module proxy refuses (Drone 2.x and friends).

Each archive is pinned in the ``[sources.<name>]`` tables of ``toolchain/toolchain.toml``. It is looked up in
this order:

1. ``$HOMECI_SOURCES`` (a folder holding the archive files),
2. ``shared/sources`` beside the checkout (the workplace copy, verified by its SHA-256),
3. a download of the upstream tag (``upstream``), where the network allows it. A GitHub tag archive
   differs byte for byte from the pinned one (compression, top folder), so a download is verified by
   the content of its extracted tree (``tree_sha256``) instead.

Nothing here is copied into the project: archives are only extracted into build folders.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homeci.errors import HomeciError
from homeci.paths import cache_dir, repo_root


@dataclass(frozen=True)
class Source:
    name: str
    archive: str
    sha256: str
    tree_sha256: str
    upstream: str


def pins() -> dict[str, Source]:
    from homeci.toolchain import raw_pins

    table = raw_pins().get("sources", {})
    out: dict[str, Source] = {}
    for name, entry in table.items():
        missing = [k for k in ("archive", "sha256", "tree_sha256", "upstream") if k not in entry]
        if missing:
            raise HomeciError(f"toolchain/toolchain.toml: [sources.{name}] lacks {', '.join(missing)}; "
                              "add them")
        out[name] = Source(name, entry["archive"], entry["sha256"], entry["tree_sha256"], entry["upstream"])
    return out


def source(name: str) -> Source:
    table = pins()
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise HomeciError(f"no pinned source archive {name!r}: known are {known}")
    return table[name]


def search_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("HOMECI_SOURCES")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(repo_root().parent / "shared" / "sources")
    dirs.append(cache_dir() / "sources")
    return dirs


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(data: bytes) -> str:
    """A digest of a gzipped tar's content that ignores compression, ordering and the top folder.

    Per regular file: its path below the top folder, whether it is executable, and its bytes' SHA-256;
    per symlink: its path and target. Directories and metadata (times, owners) do not count."""
    rows: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            rel = parts[1].rstrip("/")
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                digest = hashlib.sha256(f.read()).hexdigest()
                rows.append(f"{rel}\0{'x' if m.mode & 0o111 else '-'}\0{digest}")
            elif m.issym():
                rows.append(f"{rel}\0l\0{m.linkname}")
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


def locate(name: str, *, progress: Callable[[str], None] | None = None) -> Path:
    """The verified archive for source ``name``: found locally, or downloaded and checked by content."""
    src = source(name)
    for folder in search_dirs():
        candidate = folder / src.archive
        if not candidate.is_file():
            continue
        digest = file_sha256(candidate)
        if digest == src.sha256:
            return candidate
        if tree_digest(candidate.read_bytes()) == src.tree_sha256:
            return candidate  # a downloaded upstream archive kept in the cache
        raise HomeciError(
            f"{candidate}: SHA-256 {digest[:12]}… does not match the pin {src.sha256[:12]}… for {name}; "
            "replace the file with the pinned archive (or remove it to download the upstream tag)"
        )
    return _download(src, progress)


def _download(src: Source, progress: Callable[[str], None] | None) -> Path:
    where = ", ".join(str(d) for d in search_dirs())
    if progress:
        progress(f"{src.archive} not found locally; downloading {src.upstream}")
    try:
        with urllib.request.urlopen(src.upstream, timeout=60) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise HomeciError(
            f"source archive {src.archive} for {src.name} is missing (looked in {where}) and the download "
            f"of {src.upstream} failed ({exc}); put the archive in one of those folders or set HOMECI_SOURCES"
        ) from None
    if tree_digest(data) != src.tree_sha256:
        raise HomeciError(
            f"{src.upstream}: the downloaded tree differs from the pinned {src.archive} "
            "(tree digest mismatch); refusing to build it"
        )
    dest = cache_dir() / "sources" / src.archive
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, dest)
    return dest


def extract(name: str, dest: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Extract source ``name`` into ``dest`` and return the tree's top folder."""
    archive = locate(name, progress=progress)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest, filter="data")
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise HomeciError(f"{archive}: expected one top folder, found {len(tops)}")
    return tops[0]
