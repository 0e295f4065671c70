"""A small, deterministic OCI image writer: layers from file trees, an image config, an OCI archive.

Deterministic means the same inputs give the same bytes: entries are sorted, every timestamp is
:data:`EPOCH`, owners are numeric with no names, and gzip carries no file name or time. So an image's
digest only changes when its content does.

The archive is an OCI image layout in a tar (``oci-layout``, ``index.json``, ``blobs/sha256/…``) with
the image's name in the index annotation ``io.containerd.image.name`` — what ``ctr images import``
reads (and ``skopeo``/``crane`` read as an ``oci-archive``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from homeci.errors import HomeciError

# 2026-01-01T00:00:00Z: every file time in every layer, and the config's `created`.
EPOCH = 1767225600
CREATED = "2026-01-01T00:00:00Z"

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str:
    """The OCI architecture of this machine (images are built for the host they run on)."""
    machine = platform.machine().lower()
    if machine not in _ARCH:
        raise HomeciError(f"unsupported machine {machine!r} for images: homeci builds amd64 and arm64 images")
    return _ARCH[machine]


# --- file trees ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file system entry of a layer. ``source`` (a host file) or ``data`` gives a file's bytes."""

    path: str  # absolute path inside the image, e.g. "/usr/bin/git"
    kind: str = "file"  # file | dir | symlink | hardlink
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: Path | None = None
    link: str = ""  # symlink target, or the hard link's target path (absolute, in the image)


def norm(path: str) -> str:
    """``/a/b`` → ``a/b`` (tar member names are relative, with no ``./`` and no trailing slash)."""
    p = PurePosixPath("/", path)
    if ".." in p.parts:
        raise HomeciError(f"image path {path!r} leaves the root")
    return str(p)[1:]


@dataclass
class Tree:
    """A layer's content: entries by path; parent directories are added (root-owned, 0755) on write."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, entry: Entry) -> Tree:
        self.entries[norm(entry.path)] = entry
        return self

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Tree:
        return self.add(Entry(path, "dir", mode, uid, gid))

    def file(self, path: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Tree:
        raw = data.encode() if isinstance(data, str) else data
        return self.add(Entry(path, "file", mode, uid, gid, data=raw))

    def copy(self, path: str, source: Path, mode: int | None = None, uid: int = 0, gid: int = 0) -> Tree:
        """A host file; by default executable files stay 0755 and others become 0644."""
        if not source.is_file():
            raise HomeciError(f"{source}: missing (needed at {path} in an image)")
        if mode is None:
            mode = 0o755 if os.access(source, os.X_OK) else 0o644
        return self.add(Entry(path, "file", mode, uid, gid, source=source))

    def symlink(self, path: str, target: str) -> Tree:
        return self.add(Entry(path, "symlink", 0o777, link=target))

    def update(self, other: Tree) -> Tree:
        self.entries.update(other.entries)
        return self

    def with_parents(self, base: Path | None = None) -> dict[str, Entry]:
        """The entries plus their missing parent directories; with ``base`` (the root file system of
        the layers below) parents that already exist there are left alone."""
        out = dict(self.entries)
        for name in list(out):
            parent = PurePosixPath(name).parent
            while str(parent) not in (".", ""):
                if base is None or not os.path.lexists(base / str(parent)):
                    out.setdefault(str(parent), Entry("/" + str(parent), "dir", 0o755))
                parent = parent.parent
        return out

    def on(self, base: Path) -> Tree:
        """This tree as a layer over the root file system ``base``: paths through the base's symlinked
        directories (``/bin`` → ``usr/bin`` on merged-/usr Debian) are rewritten to the real
        directories, so the layer never replaces a symlink of the base with a directory."""
        out = Tree()
        for name, e in self.entries.items():
            real = resolve_in(base, str(PurePosixPath(name).parent))
            path = str(PurePosixPath("/", real, PurePosixPath(name).name))
            out.add(Entry(path, e.kind, e.mode, e.uid, e.gid, e.data, e.source, e.link))
        return out

    def digest(self) -> str:
        """A digest of the tree's content (for cache keys): paths, kinds, modes, owners, bytes."""
        h = hashlib.sha256()
        for name, e in sorted(self.with_parents().items()):
            h.update(f"{name}\0{e.kind}\0{e.mode:o}\0{e.uid}\0{e.gid}\0{e.link}\0".encode())
            if e.kind == "file":
                h.update(_file_digest(e).encode())
        return h.hexdigest()


def resolve_in(root: Path, path: str, depth: int = 0) -> str:
    """``path`` with every symlinked directory component resolved inside ``root`` (never outside)."""
    if depth > 40:
        raise HomeciError(f"{root}: too many symlinks resolving {path}")
    done = PurePosixPath()
    for part in PurePosixPath(norm(path)).parts:
        candidate = done / part
        full = root / str(candidate)
        if full.is_symlink():
            target = os.readlink(full)
            joined = PurePosixPath(target) if target.startswith("/") else PurePosixPath("/", done, target)
            done = PurePosixPath(resolve_in(root, os.path.normpath(str(joined)), depth + 1))
        else:
            done = candidate
    return norm(str(done))


def _file_digest(e: Entry) -> str:
    if e.data is not None:
        return hashlib.sha256(e.data).hexdigest()
    assert e.source is not None
    h = hashlib.sha256()
    with e.source.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_from_dir(root: Path, *, skip: Sequence[str] = ()) -> Tree:
    """Every entry below ``root`` (a root file system) as a :class:`Tree`, keeping modes, owners,
    symlinks and hard links. Device nodes, sockets and FIFOs are left out (the runtime provides
    ``/dev``); ``skip`` names paths (and everything below them) to leave out, e.g. ``/var/cache/apt``."""
    tree = Tree()
    skipped = tuple(norm(s) for s in skip)
    seen: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            full = Path(dirpath) / name
            rel = norm(str(full.relative_to(root)))
            if any(rel == s or rel.startswith(s + "/") for s in skipped):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = full.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                tree.add(Entry(rel, "symlink", 0o777, st.st_uid, st.st_gid, link=os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                tree.add(Entry(rel, "dir", mode, st.st_uid, st.st_gid))
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    tree.add(Entry(rel, "hardlink", mode, st.st_uid, st.st_gid, link=seen[key]))
                else:
                    seen[key] = rel
                    tree.add(Entry(rel, "file", mode, st.st_uid, st.st_gid, source=full))
    return tree


def _tarinfo(name: str, e: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, EPOCH
    info.uname = info.gname = ""
    if e.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, e.link
    elif e.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, norm(e.link)
    elif e.kind == "file":
        info.type = tarfile.REGTYPE
        info.size = len(e.data) if e.data is not None else (e.source.stat().st_size if e.source else 0)
    else:
        raise HomeciError(f"unknown entry kind {e.kind!r} for {name}")
    return info


def _write_tar(entries: Mapping[str, Entry], out: Any) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        # Hard links must follow their target: sorted order, with every hard link after all files.
        ordered = sorted(entries.items(), key=lambda kv: (kv[1].kind == "hardlink", kv[0]))
        for name, e in ordered:
            info = _tarinfo(name, e)
            if e.kind != "file":
                tar.addfile(info)
            elif e.data is not None:
                tar.addfile(info, io.BytesIO(e.data))
            else:
                assert e.source is not None
                with e.source.open("rb") as f:
                    tar.addfile(info, f)


# --- blobs and layers -------------------------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner, self.sha, self.size = inner, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)


@dataclass(frozen=True)
class Layer:
    """A gzipped layer blob on disk with its digests."""

    path: Path  # the gzipped tar
    digest: str  # sha256:… of the gzipped bytes
    size: int
    diff_id: str  # sha256:… of the uncompressed tar
    comment: str = ""


def write_layer(entries: Tree | Mapping[str, Entry], dest: Path, *, comment: str = "",
                level: int = 6, base: Path | None = None) -> Layer:
    """Write ``entries`` as a gzipped layer tar at ``dest``; deterministic for the same entries.

    ``base``: the root file system of the layers below (see :meth:`Tree.on`)."""
    if isinstance(entries, Tree):
        items = (entries.on(base) if base else entries).with_parents(base)
    else:
        items = dict(entries)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=dest.parent) as raw:
        diff = _Hashing(raw)
        _write_tar(items, diff)
        raw.seek(0)
        tmp = dest.with_name(dest.name + ".part")
        with tmp.open("wb") as out:
            packed = _Hashing(out)
            with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0,
                               compresslevel=level) as gz:
                shutil.copyfileobj(raw, gz, 1 << 20)
        os.replace(tmp, dest)
    return Layer(dest, "sha256:" + packed.sha.hexdigest(), packed.size, "sha256:" + diff.sha.hexdigest(),
                 comment)


# --- config, manifest, index, archive ---------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (what ``docker inspect`` shows as Config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    workdir: str = ""
    ports: tuple[str, ...] = ()  # "53/udp"
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Env": list(self.env)}
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.user:
            out["User"] = self.user
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.ports:
            out["ExposedPorts"] = {p: {} for p in sorted(self.ports)}
        if self.volumes:
            out["Volumes"] = {v: {} for v in sorted(self.volumes)}
        if self.labels:
            out["Labels"] = dict(sorted(self.labels.items()))
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


@dataclass(frozen=True)
class Image:
    """An image ready to be archived: its layers, config and manifest bytes."""

    layers: tuple[Layer, ...]
    config: bytes
    manifest: bytes
    arch: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def assemble(layers: Sequence[Layer], config: ImageConfig, *, arch: str | None = None) -> Image:
    arch = arch or host_arch()
    cfg = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": config.as_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": layer.comment or "homeci.images"} for layer in layers],
    }
    config_bytes = _canonical(cfg)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": _descriptor(MEDIA_CONFIG, config_bytes),
        "layers": [{"mediaType": MEDIA_LAYER, "digest": lay.digest, "size": lay.size} for lay in layers],
    }
    if config.labels:
        manifest["annotations"] = dict(sorted(config.labels.items()))
    return Image(tuple(layers), config_bytes, _canonical(manifest), arch)


def index_json(image: Image, names: Iterable[str]) -> bytes:
    """``index.json`` naming the image once per name (one image may be known under several names)."""
    manifests = []
    for name in sorted(set(names)):
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        desc = _descriptor(MEDIA_MANIFEST, image.manifest)
        desc["platform"] = {"architecture": image.arch, "os": "linux"}
        desc["annotations"] = {NAME_ANNOTATION: name, REF_ANNOTATION: tag}
        manifests.append(desc)
    return _canonical({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests})


def write_archive(image: Image, names: Iterable[str], dest: Path) -> Path:
    """The OCI archive (an image layout in an uncompressed tar) at ``dest``, written atomically.

    It carries Docker's ``manifest.json`` too, naming the same blobs, so ``docker load`` takes it as is
    (the kind provider loads its node image that way); containerd reads the OCI index."""
    names = list(names)
    blobs: list[tuple[str, bytes | Path, int]] = [
        (image.digest, image.manifest, len(image.manifest)),
        ("sha256:" + hashlib.sha256(image.config).hexdigest(), image.config, len(image.config)),
    ]
    blobs += [(layer.digest, layer.path, layer.size) for layer in image.layers]
    files: dict[str, Entry] = {
        "oci-layout": Entry("oci-layout", data=_canonical({"imageLayoutVersion": "1.0.0"})),
        "index.json": Entry("index.json", data=index_json(image, names)),
        "manifest.json": Entry("manifest.json", data=docker_manifest_json(image, names)),
        "blobs": Entry("blobs", "dir", 0o755),
        "blobs/sha256": Entry("blobs/sha256", "dir", 0o755),
    }
    for digest, content, _ in blobs:
        name = "blobs/sha256/" + digest.removeprefix("sha256:")
        if isinstance(content, bytes):
            files[name] = Entry(name, data=content)
        else:
            files[name] = Entry(name, source=content)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as out:
        _write_tar(files, out)
    os.replace(tmp, dest)
    return dest


def docker_manifest_json(image: Image, names: Iterable[str]) -> bytes:
    """``docker load``'s view of the same image: its config and layer blobs, and its names."""
    config = "blobs/sha256/" + hashlib.sha256(image.config).hexdigest()
    layers = ["blobs/sha256/" + layer.digest.removeprefix("sha256:") for layer in image.layers]
    return _canonical([{"Config": config, "RepoTags": sorted(names), "Layers": layers}])


def read_archive(path: Path) -> dict[str, Any]:
    """Check an OCI archive's structure and digests; returns index, manifest and config (for tests and
    ``homeci … images list``). Raises HomeciError naming the first fault."""
    with tarfile.open(path) as tar:
        names = set(tar.getnames())

        def blob(digest: str) -> bytes:
            member = "blobs/sha256/" + digest.removeprefix("sha256:")
            if member not in names:
                raise HomeciError(f"{path}: blob {digest} missing")
            f = tar.extractfile(member)
            assert f is not None
            data = f.read()
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                raise HomeciError(f"{path}: blob {digest} does not match its digest")
            return data

        def text(member: str) -> Any:
            if member not in names:
                raise HomeciError(f"{path}: {member} missing")
            f = tar.extractfile(member)
            assert f is not None
            return json.loads(f.read())

        layout = text("oci-layout")
        index = text("index.json")
        if not index.get("manifests"):
            raise HomeciError(f"{path}: index.json lists no manifest")
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        diff_ids = []
        for layer in manifest["layers"]:
            packed = blob(layer["digest"])
            if len(packed) != layer["size"]:
                raise HomeciError(f"{path}: layer {layer['digest']} size differs from the manifest")
            diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(packed)).hexdigest())
        if diff_ids != config["rootfs"]["diff_ids"]:
            raise HomeciError(f"{path}: the config's diff_ids do not match the layers")
    return {"layout": layout, "index": index, "manifest": manifest, "config": config}


def iter_layer_names(path: Path) -> Iterator[str]:
    """Every path in every layer of an OCI archive (tests: what an image contains)."""
    info = read_archive(path)
    with tarfile.open(path) as tar:
        for layer in info["manifest"]["layers"]:
            f = tar.extractfile("blobs/sha256/" + layer["digest"].removeprefix("sha256:"))
            assert f is not None
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read()))) as inner:
                yield from inner.getnames()
