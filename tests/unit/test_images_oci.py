"""The OCI writer: deterministic bytes, a valid layout, digests that match, and the config fields
containerd reads."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from homeci.errors import HomeciError
from homeci.images import oci


def _tree(tmp_path: Path) -> oci.Tree:
    src = tmp_path / "prog"
    src.write_bytes(b"\x7fELF fake program")
    src.chmod(0o755)
    tree = oci.Tree().copy("/usr/local/bin/prog", src).file("/etc/motd", "hello\n")
    return tree.dir("/tmp", 0o1777).symlink("/bin", "usr/bin").dir("/data", 0o750, 1000, 1000)


def _image(tmp_path: Path, name: str) -> tuple[oci.Image, Path]:
    layer = oci.write_layer(_tree(tmp_path), tmp_path / f"{name}.tar.gz", comment="test layer")
    config = oci.ImageConfig(entrypoint=("/usr/local/bin/prog",), cmd=("serve",), user="1000:1000",
                             workdir="/data", labels={"org.opencontainers.image.version": "1.2.3"})
    image = oci.assemble([layer], config, arch="amd64")
    return image, oci.write_archive(image, ["docker.io/library/prog:1.2.3"], tmp_path / f"{name}.tar")


def test_archive_is_byte_identical_when_built_twice(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = _image(tmp_path / "a", "img")
    _, second = _image(tmp_path / "b", "img")
    assert first.read_bytes() == second.read_bytes()


def test_layout_digests_and_config(tmp_path: Path) -> None:
    image, archive = _image(tmp_path, "img")
    info = oci.read_archive(archive)  # checks every blob's digest and the diff_ids
    assert info["layout"] == {"imageLayoutVersion": "1.0.0"}
    (entry,) = info["index"]["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/library/prog:1.2.3"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1.2.3"
    assert entry["digest"] == image.digest
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert info["manifest"]["mediaType"] == oci.MEDIA_MANIFEST
    assert [layer["mediaType"] for layer in info["manifest"]["layers"]] == [oci.MEDIA_LAYER]
    config = info["config"]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/prog"]
    assert config["config"]["Cmd"] == ["serve"]
    assert config["config"]["User"] == "1000:1000"
    assert config["config"]["WorkingDir"] == "/data"
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "1.2.3"


def test_layer_entries_are_sorted_with_fixed_times_and_owners(tmp_path: Path) -> None:
    layer = oci.write_layer(_tree(tmp_path), tmp_path / "l.tar.gz")
    raw = gzip.decompress(layer.path.read_bytes())
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(layer.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert "usr" in names and "usr/local" in names  # parents are added
    assert {m.mtime for m in members} == {oci.EPOCH}
    assert {m.uname for m in members} == {""}
    by_name = {m.name: m for m in members}
    assert by_name["usr/local/bin/prog"].mode == 0o755
    assert by_name["tmp"].mode == 0o1777
    assert (by_name["data"].uid, by_name["data"].gid, by_name["data"].mode) == (1000, 1000, 0o750)
    assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"


def test_tree_from_dir_keeps_links_and_skips(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/a").write_text("x")
    (root / "usr/bin/b").hardlink_to(root / "usr/bin/a")
    (root / "bin").symlink_to("usr/bin")
    (root / "var/cache/apt").mkdir(parents=True)
    (root / "var/cache/apt/pkgcache.bin").write_text("junk")
    tree = oci.tree_from_dir(root, skip=["/var/cache/apt"])
    kinds = {name: e.kind for name, e in tree.entries.items()}
    assert kinds["bin"] == "symlink"
    assert sorted([kinds["usr/bin/a"], kinds["usr/bin/b"]]) == ["file", "hardlink"]
    assert not any(n.startswith("var/cache/apt") for n in kinds)
    layer = oci.write_layer(tree, tmp_path / "l.tar.gz")
    with tarfile.open(layer.path) as tar:
        hard = [m for m in tar.getmembers() if m.islnk()]
    assert len(hard) == 1 and hard[0].linkname in ("usr/bin/a", "usr/bin/b")


def test_several_names_for_one_image(tmp_path: Path) -> None:
    image, _ = _image(tmp_path, "img")
    index = json.loads(oci.index_json(image, ["b.example/x:1", "a.example/x:1"]))
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "a.example/x:1", "b.example/x:1"]


def test_a_tampered_blob_is_reported(tmp_path: Path) -> None:
    _, archive = _image(tmp_path, "img")
    bad = tmp_path / "bad.tar"
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as out:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            data = f.read() if f else b""
            if m.name.startswith("blobs/sha256/") and data.startswith(b"\x1f\x8b"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            out.addfile(m, io.BytesIO(data) if f else None)
    with pytest.raises(HomeciError, match="does not match its digest"):
        oci.read_archive(bad)


def test_paths_cannot_leave_the_root() -> None:
    with pytest.raises(HomeciError, match="leaves the root"):
        oci.Tree().file("/../etc/passwd", "x")
