"""Building images from recipes into the cache: ``<cache>/images/<name>/<recipe digest>.tar``.

A recipe's digest covers the recipe itself (this package's code), the toolchain pins it uses, the
pinned source archives, the PyPI versions and the Debian flavor: change any and the image is rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from homeci import sources, toolchain
from homeci.errors import HomeciError
from homeci.images import debian, oci
from homeci.images.recipes import RECIPES, Recipe, dist_version
from homeci.images.refs import Reference, normalize, path_of
from homeci.paths import cache_dir

# Bumped by hand only for changes the code digest below cannot see.
FORMAT = "1"
LABEL_PREFIX = "io.homeci.image"
Progress = Callable[[str], None]


def images_dir() -> Path:
    return cache_dir() / "images"


def _slug(ref: str) -> str:
    return ref.replace("/", "_")


def recipe_for(ref: str) -> Recipe | None:
    """The recipe building ``ref``: same fully qualified name, else the same path and tag behind a
    mirror (``mirror.lan:5000/library/registry:3.1.2`` is built by ``docker.io/library/registry:3.1.2``)."""
    name = normalize(ref)
    for r in RECIPES:
        if r.ref == name:
            return r
    upstream_hosts = {r.ref.partition("/")[0] for r in RECIPES}
    if name.partition("/")[0] in upstream_hosts:
        return None  # an upstream name no recipe builds (not a mirror of one)
    for r in RECIPES:
        if path_of(r.ref) == path_of(name):
            return r
    return None


def require(ref: str, where: str = "") -> Recipe:
    recipe = recipe_for(ref)
    if recipe is None:
        at = f" (referenced by {where})" if where else ""
        raise HomeciError(f"image {ref}{at} has no recipe in homeci.images.recipes: add one that builds "
                          "the same program at the same version")
    return recipe


def check(references: Iterable[Reference]) -> None:
    """Fail with one line naming the first referenced image that has no recipe, and where it is used."""
    missing = [r for r in references if recipe_for(r.ref) is None]
    if missing:
        first = missing[0]
        more = f"; {len(missing) - 1} more image(s) lack one too" if len(missing) > 1 else ""
        at = f" (referenced by {first.where[0]})" if first.where else ""
        raise HomeciError(f"image {first.ref}{at} has no recipe in homeci.images.recipes: add one that "
                          f"builds the same program at the same version{more}")


def _code_digest() -> str:
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _tool_key(name: str) -> list[str]:
    """A tool's pin and recipe; with an environment override, that binary's identity instead."""
    t = toolchain.tool(name)
    own = toolchain.override(t)
    if own is not None:
        st = own.stat()
        return [t.version, f"override {own} {st.st_size} {st.st_mtime_ns}"]
    return [t.version, t.recipe]


def digest(recipe: Recipe) -> str:
    """The recipe digest: everything that shapes the image, without reading any binary."""
    data = {
        "format": FORMAT,
        "ref": recipe.ref,
        "version": recipe.version,
        "source": recipe.source,
        "stand_in": recipe.stand_in,
        "note": recipe.note,
        "config": recipe.config.as_json(),
        "tools": {n: _tool_key(n) for n in recipe.tools},
        "sources": {n: sources.source(n).sha256 for n in recipe.sources},
        "pypi": {d: dist_version(d) for d in recipe.pypi},
        "base": debian.flavor_key(recipe.base) if recipe.base else "",
        "ca": debian.flavor_key("base"),  # the CA bundle of the shared base flavor
        "code": _code_digest(),
        "arch": oci.host_arch(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def archive_path(ref: str, recipe: Recipe | None = None) -> Path:
    recipe = recipe or require(ref)
    return images_dir() / _slug(normalize(ref)) / f"{digest(recipe)}.tar"


def is_cached(ref: str) -> bool:
    return archive_path(ref).is_file()


class Context:
    """What recipes build from: toolchain binaries, pinned sources, Traefik, Debian root file systems."""

    def __init__(self, work: Path, progress: Progress | None = None) -> None:
        self.work = work
        self.progress = progress
        self._sources: dict[str, Path] = {}

    def tool(self, name: str) -> Path:
        return toolchain.resolve(name, build=True, progress=self.progress)

    def traefik(self) -> Path:
        return toolchain.traefik_binary()

    def source(self, name: str) -> Path:
        if name not in self._sources:
            self._sources[name] = sources.extract(name, self.work / "src" / name, progress=self.progress)
        return self._sources[name]

    def rootfs(self, flavor: str) -> debian.RootFS:
        return debian.rootfs(flavor, progress=self.progress)

    def ca_bundle(self) -> Path:
        bundle = self.rootfs("base").path / "etc/ssl/certs/ca-certificates.crt"
        if not bundle.is_file():
            raise HomeciError(f"{bundle}: the Debian base has no CA bundle; "
                              f"remove {bundle.parents[3]} to rebuild it")
        return bundle


def base_layer(flavor: str, progress: Progress | None = None) -> oci.Layer:
    """The gzipped layer of a Debian flavor, written once and shared by every image on it."""
    fs = debian.rootfs(flavor, progress=progress)
    folder = fs.path.parent
    layer, meta = folder / "layer.tar.gz", folder / "layer.json"

    def cached() -> oci.Layer | None:
        try:
            info = json.loads(meta.read_text())
            if layer.is_file() and layer.stat().st_size == info["size"]:
                return oci.Layer(layer, info["digest"], info["size"], info["diff_id"], info["comment"])
        except (OSError, ValueError, KeyError):
            pass
        return None

    hit = cached()
    if hit:
        return hit
    with (folder / ".layer.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build may be packing the same flavor
        hit = cached()
        if hit:
            return hit
        if progress:
            progress(f"packing the Debian {debian.FLAVORS[flavor].release} {flavor} layer")
        comment = f"homeci: {fs.summary()}"
        made = oci.write_layer(oci.tree_from_dir(fs.path), layer, comment=comment)
        meta.write_text(json.dumps({"digest": made.digest, "size": made.size, "diff_id": made.diff_id,
                                    "comment": comment}))
        return made


def labels(recipe: Recipe, key: str, fs: debian.RootFS | None) -> dict[str, str]:
    out = {
        "org.opencontainers.image.title": recipe.title,
        "org.opencontainers.image.version": recipe.version,
        "org.opencontainers.image.source": recipe.source,
        "org.opencontainers.image.created": oci.CREATED,
        f"{LABEL_PREFIX}.built-by": "homeci, from source (no registry, no Docker)",
        f"{LABEL_PREFIX}.pins": recipe.pin_text(),
        f"{LABEL_PREFIX}.recipe": f"homeci.images.recipes {recipe.ref} @ {key}",
    }
    if fs is not None:
        out[f"{LABEL_PREFIX}.debian"] = fs.summary()
        out[f"{LABEL_PREFIX}.debian-packages"] = " ".join(f"{p}={v}" for p, v in sorted(fs.packages.items()))
    if recipe.stand_in:
        out[f"{LABEL_PREFIX}.stand-in"] = recipe.stand_in
    if recipe.note:
        out[f"{LABEL_PREFIX}.note"] = recipe.note
    return out


def build_recipe(recipe: Recipe, *, progress: Progress | None = None, force: bool = False) -> Path:
    """The cached archive of ``recipe`` (built under its canonical name if missing)."""
    key = digest(recipe)
    folder = images_dir() / _slug(recipe.ref)
    archive = folder / f"{key}.tar"
    if archive.is_file() and not force:
        return archive
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if archive.is_file() and not force:
            return archive
        with tempfile.TemporaryDirectory(prefix="homeci-image-", dir=folder) as tmp:
            work = Path(tmp)
            ctx = Context(work, progress)
            layers: list[oci.Layer] = []
            fs = None
            if recipe.base:
                fs = ctx.rootfs(recipe.base)
                layers.append(base_layer(recipe.base, progress))
            tree = recipe.files(ctx)
            if tree.entries or not layers:
                if progress:
                    progress(f"packing {recipe.ref}")
                layers.append(oci.write_layer(tree, work / "layer.tar.gz", base=fs.path if fs else None,
                                              comment=f"homeci: {recipe.title} {recipe.version}"))
            config = replace(recipe.config, labels=labels(recipe, key, fs))
            image = oci.assemble(layers, config)
            oci.write_archive(image, [recipe.ref], archive)
        for old in folder.glob("*.tar"):  # older recipes of the same image
            if old != archive:
                old.unlink()
    return archive


def rename(archive: Path, names: Iterable[str], dest: Path) -> Path:
    """A copy of an OCI archive whose index names the image ``names`` (e.g. behind a mirror)."""
    wanted = sorted(set(names))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with tarfile.open(archive) as src, tmp.open("wb") as raw, \
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member in src.getmembers():
            if member.name == "index.json":
                index = json.loads(src.extractfile(member).read())  # type: ignore[union-attr]
                first = index["manifests"][0]
                manifests = []
                for name in wanted:
                    desc = dict(first, annotations={oci.NAME_ANNOTATION: name,
                                                    oci.REF_ANNOTATION: name.rsplit(":", 1)[1]})
                    manifests.append(desc)
                data = json.dumps(dict(index, manifests=manifests), sort_keys=True,
                                  separators=(",", ":")).encode()
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
            else:
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    os.replace(tmp, dest)
    return dest


def build(refs: Iterable[str], progress: Progress | None = None, *, force: bool = False) -> dict[str, Path]:
    """Build (or find in the cache) an archive for every reference; ``{normalised ref: archive}``.

    Fails before building anything if a reference has no recipe."""
    wanted = {normalize(r): require(r) for r in refs}
    out: dict[str, Path] = {}
    done: dict[str, Path] = {}
    for ref, recipe in sorted(wanted.items()):
        if recipe.ref not in done:
            start = time.monotonic()
            done[recipe.ref] = build_recipe(recipe, progress=progress, force=force)
            if progress:
                progress(f"{recipe.ref}: {done[recipe.ref].stat().st_size / 1e6:.1f} MB "
                         f"({time.monotonic() - start:.1f}s)")
        archive = done[recipe.ref]
        if ref != recipe.ref:
            alias = archive_path(ref, recipe)
            if not alias.is_file() or force:
                for old in alias.parent.glob("*.tar") if alias.parent.is_dir() else ():
                    old.unlink()
                rename(archive, [ref], alias)
            archive = alias
        out[ref] = archive
    return out

