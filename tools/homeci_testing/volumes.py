"""Secret and ConfigMap volumes laid out and updated the way the kubelet does it (its atomic writer).

A Secret volume without ``subPath`` is a folder whose visible files are symbolic links
``<key> -> ..data/<key>``; ``..data`` is itself a link to a hidden, timestamped folder holding the
real files. An update writes a new timestamped folder, points a temporary link at it and renames that
link over ``..data`` (one atomic step), then removes the old folder. A program that keeps a path open
by name sees the new content (and a new modification time) at once; one that watches the file itself
sees it replaced. Tests use this to change a mounted Secret under a running program exactly as a
``kubectl edit`` of the Secret would.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["AtomicVolume"]

DATA = "..data"


class AtomicVolume:
    """The kubelet's layout of one Secret/ConfigMap volume in ``folder``; :meth:`write` replaces its
    content atomically (the first call creates the layout)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._generation = 0

    def _current(self) -> Path | None:
        link = self.folder / DATA
        return self.folder / os.readlink(link) if link.is_symlink() else None

    def write(self, files: Mapping[str, str | bytes]) -> None:
        """Make ``files`` (key -> content) the volume's content in one atomic switch of ``..data``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._current()
        self._generation += 1
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime()) + f".{os.getpid()}{self._generation}"
        new = self.folder / stamp
        new.mkdir()
        for key, content in files.items():
            target = new / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            target.chmod(0o644)
        tmp = self.folder / "..data_tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(stamp)
        tmp.replace(self.folder / DATA)
        for key in files:
            top = key.split("/", 1)[0]
            visible = self.folder / top
            if not visible.is_symlink():
                if visible.exists():
                    # A plain file or folder from an earlier, non-atomic layout: replaced by the link.
                    shutil.rmtree(visible) if visible.is_dir() else visible.unlink()
                visible.symlink_to(f"{DATA}/{top}")
        if old is not None and old != new:
            shutil.rmtree(old, ignore_errors=True)
