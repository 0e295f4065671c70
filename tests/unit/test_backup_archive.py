"""The backup archive format: what `homeci restore` accepts and refuses before anything changes."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from homeci.backup import archive
from homeci.errors import HomeciError


def _manifest() -> archive.Manifest:
    return archive.Manifest(created="2026-12-06T00:00:00Z", homeci_version="0.1.0",
                            source={"release": "homeci", "namespace": "homeci"}, components={"git": "0.14.3"},
                            charts={"homeci": {"chart": "homeci-umbrella", "version": "0.1.0"}},
                            contents={"secrets": ["homeci-ca"]})


@pytest.fixture
def good(tmp_path: Path) -> Path:
    w = archive.Writer(tmp_path / "staging")
    w.put_json("kubernetes/secrets.json", [{"metadata": {"name": "homeci-ca"}}])
    w.path("gogs/files.tar").write_bytes(b"x" * 70000)
    w.path("registry/blobs/sha256/ab").write_bytes(b"layer")
    return w.pack(_manifest(), tmp_path / "backup.tar.gz")


def test_round_trip_lists_every_member_with_its_checksum(good: Path, tmp_path: Path) -> None:
    m = archive.read(good, tmp_path / "out")
    assert sorted(m.files) == ["gogs/files.tar", "kubernetes/secrets.json", "registry/blobs/sha256/ab"]
    assert (tmp_path / "out/gogs/files.tar").read_bytes() == b"x" * 70000
    assert m.files["registry/blobs/sha256/ab"]["size"] == 5
    assert good.stat().st_mode & 0o777 == 0o600, "the archive holds the CA key: owner-only"
    with tarfile.open(good) as tar:
        assert tar.getnames()[-1] == archive.MANIFEST, "the manifest is the last member"


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_a_truncated_archive_is_refused_in_one_sentence(good: Path, tmp_path: Path, keep: float) -> None:
    data = good.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(HomeciError, match=r"truncated|incomplete") as info:
        archive.read(cut, tmp_path / "out")
    assert "\n" not in str(info.value)


def test_a_truncated_tar_that_still_decompresses_is_refused(good: Path, tmp_path: Path) -> None:
    # Cut the tar stream (not the gzip stream) before the manifest: gzip is intact, the manifest is gone.
    raw = gzip.decompress(good.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        offset = next(m.offset for m in tar.getmembers() if m.name == archive.MANIFEST)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(raw[:offset] + b"\0" * 1024))
    with pytest.raises(HomeciError, match="truncated"):
        archive.read(cut, tmp_path / "out")


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(("members", "message"), [
    ({"etc/passwd": b"root"}, "not a homeci backup"),
    ({f"{archive.ROOT}/x": b"1", archive.MANIFEST: b"{\"format\": \"velero\"}"}, "not a homeci backup"),
    ({archive.MANIFEST: json.dumps({**_manifest().to_json(), "formatVersion": 99}).encode()},
     "format version 99"),
    ({f"{archive.ROOT}/../evil": b"1"}, "not a homeci backup"),
], ids=["foreign tar", "foreign manifest", "newer format", "path escape"])
def test_a_foreign_archive_is_refused(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(HomeciError, match=message):
        archive.read(_tar(tmp_path / "f.tar.gz", members), tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_not_an_archive_at_all(tmp_path: Path) -> None:
    p = tmp_path / "values.yaml"
    p.write_text("global: {}\n")
    with pytest.raises(HomeciError, match="not a gzip-compressed tar"):
        archive.read(p, tmp_path / "out")


def test_a_damaged_member_fails_its_checksum(good: Path, tmp_path: Path) -> None:
    raw = gzip.decompress(good.read_bytes())
    i = raw.index(b"x" * 100)
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(gzip.compress(raw[:i] + b"y" + raw[i + 1:]))
    with pytest.raises(HomeciError, match=r"gogs/files\.tar does not match its checksum"):
        archive.read(damaged, tmp_path / "out")


def test_a_member_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    m = _manifest().to_json()
    p = _tar(tmp_path / "extra.tar.gz",
             {f"{archive.ROOT}/extra": b"1", archive.MANIFEST: json.dumps(m).encode()})
    with pytest.raises(HomeciError, match="does not list"):
        archive.read(p, tmp_path / "out")
