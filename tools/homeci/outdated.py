"""``homeci toolchain outdated``: every pin of toolchain/toolchain.toml against the newest release.

Go modules are asked through the Go module proxy (``go list -m -versions -json``, with the proxy the
go command is configured for, never a direct VCS fetch); PyPI tools through PyPI's JSON API. Tools of
one module and version share a row. The newest release of a module counts within the pinned major
(a Go module's major is part of its path); a pre-release only when the pin is one. Source archives
and image tags have no registry to ask here and are listed as such.

A row is *behind* when a newer release exists, unless the pin says why it is held (``hold`` in its
toolchain.toml entry, e.g. a newer release that is not approved): held rows are shown with the reason
and do not count.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from homeci import toolchain
from homeci.errors import HomeciError
from homeci.paths import repo_root
from homeci.toolchain import Tool

PYPI_URL = "https://pypi.org/pypi/{package}/json"
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Row:
    tools: tuple[str, ...]
    source: str          # the Go module or PyPI package asked, or what the pin is built from
    pinned: str
    newest_patch: str    # the newest release of the pinned minor ("" when unknown)
    newest: str          # the newest release ("" when unknown)
    state: str           # current | behind | held | unknown | unchecked
    note: str = ""


class Unreachable(HomeciError):
    """The module proxy or PyPI did not answer."""


def _key(version: str) -> tuple[int, int, int, int, str] | None:
    m = _SEMVER.match(version)
    if not m:
        return None
    pre = m.group(4)
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre or ""


def newest(versions: list[str], pinned: str) -> tuple[str, str]:
    """(newest release of the pinned major.minor, newest release of the pinned major)."""
    pin = _key(pinned)
    if pin is None:
        return "", ""
    allow_pre = pin[3] == 0
    same_major = [(k, v) for v in versions if (k := _key(v)) and k[0] == pin[0] and (allow_pre or k[3] == 1)]
    patch = [kv for kv in same_major if kv[0][1] == pin[1]]
    return (max(patch)[1] if patch else ""), (max(same_major)[1] if same_major else "")


def go_env() -> dict[str, str]:
    """The go command's environment for asking the proxy only: no VCS fallback, no workspace."""
    env = dict(os.environ)
    proxy = env.get("GOPROXY") or _go_env_value("GOPROXY") or "https://proxy.golang.org"
    kept = [p for p in re.split(r"[,|]", proxy) if p and p not in ("direct", "off")]
    env["GOPROXY"] = ",".join(kept) or "off"
    env.update(GOWORK="off", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    return env


def _go_env_value(name: str) -> str:
    go = shutil.which("go")
    if go is None:
        return ""
    return subprocess.run([go, "env", name], capture_output=True, text=True, check=False).stdout.strip()


def go_versions(module: str) -> list[str]:
    """Every version the proxy lists for ``module``; empty when it refuses the list (403/404/410)."""
    go = shutil.which("go")
    if go is None:
        raise HomeciError("go is not on PATH: install Go to ask the module proxy (or check PyPI pins only)")
    with tempfile.TemporaryDirectory(prefix="homeci-outdated-") as tmp:
        proc = subprocess.run([go, "list", "-m", "-versions", "-json", module], capture_output=True,
                              text=True, cwd=tmp, env=go_env(), timeout=120, check=False)
    if proc.returncode == 0:
        data = json.loads(proc.stdout or "{}")
        return [str(v) for v in data.get("Versions") or []]
    err = " ".join(proc.stderr.split())
    if re.search(r"\b(403|404|410)\b|not available|not found|unknown revision|no matching versions", err):
        return []
    raise Unreachable(f"cannot ask the Go module proxy ({go_env()['GOPROXY']}) about {module}: {err[:300]}; "
                      "check the network or GOPROXY, then run `homeci toolchain outdated` again")


def pypi_version(package: str) -> str:
    """The newest release PyPI's JSON API reports for ``package``."""
    url = os.environ.get("HOMECI_PYPI_URL", PYPI_URL).format(package=package)
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return ""
        raise Unreachable(f"PyPI answered {exc.code} for {package} ({url}); try again later") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach PyPI ({url}): {reason}; check the network, then run `homeci "
                          "toolchain outdated` again") from None
    return str((data.get("info") or {}).get("version") or "")


def wrapper_module(t: Tool) -> str:
    """The upstream module a wrapper module requires at the pinned version (through its ``replace``
    line when the proxy serves it under another path, as Gogs)."""
    gomod = (repo_root() / toolchain.GOMOD_DIR / t.module / "go.mod").read_text()
    at_pin = [m for m, v in re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", gomod, re.MULTILINE)
              if v == t.version]
    owning = [m for m in at_pin if t.package == m or t.package.startswith(m + "/")]
    module = max(owning, key=len) if owning else (at_pin[0] if len(at_pin) == 1 else "")
    replaced = re.search(rf"^\s*(?:replace\s+)?{re.escape(module)}\s+=>\s+(\S+)\s+v\S+\s*$", gomod,
                         re.MULTILINE) if module else None
    return replaced.group(1) if replaced else module


def _candidates(package: str) -> list[str]:
    """Module paths a package may belong to: the likely one first, then the others longest first."""
    from homeci.toolbuild import _module_guess

    parts = package.split("/")
    likely = _module_guess(package)
    return [likely, *("/".join(parts[:n]) for n in range(len(parts), 1, -1) if "/".join(parts[:n]) != likely)]


def _source(t: Tool) -> tuple[str, str]:
    """(kind, name): ("go", module or package), ("pypi", package) or ("none", why)."""
    if t.build == "pypi-venv":
        return "pypi", t.package
    if t.build == "go-wrapper":
        module = wrapper_module(t)
        return ("go", module) if module else ("none", f"toolchain/gomod/{t.module} (homeci's own command)")
    if t.build == "go-install":
        return "go", t.package
    if t.build == "source-archive":
        return "none", f"source archive [sources.{t.source}]"
    return "none", f"{t.csource or t.build}"


def _go_row(names: tuple[str, ...], path: str, pinned: str, hold: str, *, package: bool) -> Row:
    """``path``: a module, or (``package``) a package whose module is found by asking."""
    versions: list[str] = []
    module = path
    for candidate in _candidates(path) if package else [path]:
        versions = go_versions(candidate)
        if versions:
            module = candidate
            break
    if not versions:
        return Row(names, module, pinned, "", "", "unknown",
                   "no version list: the proxy refuses it, exact versions are served")
    patch, top = newest(versions, pinned)
    return _row(names, module, pinned, patch, top, hold)


def _row(names: tuple[str, ...], source: str, pinned: str, patch: str, top: str, hold: str) -> Row:
    pin = _key(pinned)
    latest = max((k for k in (_key(patch), _key(top)) if k is not None), default=None)
    if pin is None or latest is None or latest <= pin:
        return Row(names, source, pinned, patch, top, "current")
    upto, _, why = hold.partition(":")
    held = _key(upto.strip())
    if held is not None and latest <= held:
        return Row(names, source, pinned, patch, top, "held", why.strip())
    note = f"the hold covers releases up to {upto.strip()} only" if held is not None else ""
    return Row(names, source, pinned, patch, top, "behind", note)


def check(names: list[str] | None = None, jobs: int = 4) -> list[Row]:
    """One row per (source, pinned version) among the pins (all of them, or ``names``)."""
    tools = [toolchain.tool(n) for n in (names or list(toolchain.load_pins()))]
    groups: dict[tuple[str, str, str], list[Tool]] = {}
    for t in tools:
        kind, name = _source(t)
        # one row per module version: the Kubernetes binaries, containerd's three, the CNI plugins
        key = (kind, _module_root(name) if kind == "go" and t.build == "go-install" else name, t.version)
        groups.setdefault(key, []).append(t)

    def one(item: tuple[tuple[str, str, str], list[Tool]]) -> Row:
        (kind, name, version), members = item
        labels = tuple(t.name for t in members)
        hold = next((t.hold for t in members if t.hold), "")
        if kind == "pypi":
            latest = pypi_version(name)
            return _row(labels, f"PyPI {name}", version, "", latest, hold) if latest else \
                Row(labels, f"PyPI {name}", version, "", "", "unknown", "PyPI does not know it")
        if kind == "go":
            installed = members[0].build == "go-install"
            path = members[0].package if installed else name
            return _go_row(labels, path, version, hold, package=installed)
        return Row(labels, name, version, "", "", "unchecked", "no registry to ask")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, groups.items()))


def _module_root(package: str) -> str:
    """Group key for go-install packages of one module: host/owner/repo (with a /vN suffix)."""
    from homeci.toolbuild import _module_guess

    return _module_guess(package)


def behind(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.state == "behind"]


def image_note() -> str:
    return ("Image tags (python, alpine, and the upstream images the charts name) are not checked: Docker "
            "Hub cannot be asked from here. CONTRIBUTING.md, \"Bump a pinned version\", says how to refresh "
            "them and their digests.")


def files_note() -> Path:
    return repo_root() / toolchain.PINS_FILE
