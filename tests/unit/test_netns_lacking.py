"""Which image archives a real node still has to import: by reference and content, not by content alone."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from homeci.cluster.netns.netnscluster import lacking


def _archive(path: Path, digest: str) -> Path:
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": digest}]}).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("index.json")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
    return path


def test_only_what_the_node_lacks_under_that_name(tmp_path: Path) -> None:
    same = _archive(tmp_path / "same.tar", "sha256:aaa")
    newer = _archive(tmp_path / "newer.tar", "sha256:bbb")
    absent = _archive(tmp_path / "absent.tar", "sha256:ccc")
    other_name = _archive(tmp_path / "other-name.tar", "sha256:aaa")
    archives = {"example.test/same:1": same, "example.test/newer:1": newer, "example.test/absent:1": absent,
                "example.test/other:1": other_name}
    held = {"example.test/same:1": "sha256:aaa", "example.test/newer:1": "sha256:old"}
    assert lacking(archives, held) == [newer, absent, other_name], "archives to import"
    assert lacking(archives, {}) == list(archives.values()), "a new node's containerd holds nothing"
