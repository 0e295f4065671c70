"""The one wrapper for every ``helm`` call homeci makes (CLI, tests, benchmarks, cluster tooling).

Why a subprocess wrapper and not pyhelm3: pyhelm3 is asyncio-only, has no ``lint``, concatenates
lists when it merges several values dicts (Helm replaces them), and maps Helm 3/4 flag differences
(``--atomic`` vs ``--rollback-on-failure``, ``--wait`` strategies) in ways we need to control. A thin
synchronous wrapper keeps the exact Helm semantics, selects the Helm major version per call, and turns
failures into one :class:`HelmError` naming the command, the chart and the values files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from homeci import contract, toolchain
from homeci.errors import HomeciError

SUPPORTED_MAJORS = (3, 4)


class HelmError(HomeciError):
    """helm exited non-zero. ``stderr`` keeps helm's own words; ``str()`` is one line with context."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int = 1) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode

    @property
    def reason(self) -> str:
        """helm's own error in one line (its ``Error:`` lines), without the command context."""
        return _summarise(self.stderr)


@dataclass(frozen=True)
class HelmResult:
    args: tuple[str, ...]
    stdout: str
    stderr: str
    returncode: int


# Every chart carries the library chart as charts/homeci-lib, a symbolic link to charts/homeci-lib; Helm
# notes each link it follows while loading a chart directory (Helm 3: "walk.go:75: found symbolic link in
# path: ...", Helm 4: level=INFO msg="found symbolic link in path. ..."). Expected, so not reported.
_LINK_NOTE = re.compile(r"^.*found symbolic link in path\b.*(?:\n|$)", re.MULTILINE)


def _without_link_notes(stderr: str) -> str:
    return _LINK_NOTE.sub("", stderr)


def _summarise(stderr: str) -> str:
    """helm's error in one line: from its first ``Error:`` line on (Helm prints the detail of a schema
    refusal, chart by chart, on the lines after it), else its ``[ERROR]`` lines, else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if ln.startswith("Error:")), None)
    if first is not None:
        return " ".join(lines[first:])[:2000]
    picked = [ln for ln in lines if ln.startswith("[ERROR]")] or lines[-1:]
    return " / ".join(picked)[:2000] if picked else "(no output)"


class Helm:
    """Run one Helm major version (3 or 4), optionally against a kubeconfig."""

    def __init__(self, major: int = 3, *, kubeconfig: str | os.PathLike[str] | None = None,
                 binary: Path | None = None, kube_context: str | None = None,
                 home: str | os.PathLike[str] | None = None, wrap: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        """``home``: a private Helm home (repositories, registry logins, cache) instead of the user's;
        ``wrap``: a command that runs helm (e.g. ``unshare ...`` for a private /etc/hosts); ``env``: extra
        environment (e.g. ``SSL_CERT_FILE``)."""
        if major not in SUPPORTED_MAJORS:
            raise HomeciError(f"Helm {major} is not supported: use one of {SUPPORTED_MAJORS}")
        self.major = major
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.kube_context = kube_context
        self._binary = binary
        self.home = Path(home) if home else None
        self.wrap = list(wrap)
        self.extra_env = dict(env or {})

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = toolchain.resolve(f"helm{self.major}")
        return self._binary

    def __repr__(self) -> str:
        return f"Helm({self.major})"

    # -- the single place helm is executed -------------------------------------------------------

    def run(self, args: Sequence[str], *, chart: str | os.PathLike[str] | None = None,
            values_files: Sequence[str | os.PathLike[str]] = (), stdin: str | None = None,
            check: bool = True, timeout: float | None = 900) -> HelmResult:
        argv = [*self.wrap, str(self.binary), *args]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.kube_context:
            argv += ["--kube-context", self.kube_context]
        env = dict(os.environ)
        env.setdefault("HELM_DIFF_IGNORE_UNKNOWN_FLAGS", "true")
        if self.home is not None:
            env.update(HELM_CONFIG_HOME=str(self.home / "config"), HELM_CACHE_HOME=str(self.home / "cache"),
                       HELM_DATA_HOME=str(self.home / "data"))
        env.update(self.extra_env)
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            where = _context(chart, values_files)
            raise HelmError(f"helm {args[0]} timed out after {timeout:.0f}s{where}") from None
        stderr = _without_link_notes(proc.stderr)
        result = HelmResult(tuple(args), proc.stdout, stderr, proc.returncode)
        if check and proc.returncode != 0:
            where = _context(chart, values_files)
            raise HelmError(
                f"helm{self.major} {args[0]} failed{where}: {_summarise(stderr)}",
                stderr=stderr, returncode=proc.returncode,
            )
        return result

    # -- offline commands ------------------------------------------------------------------------

    def version(self) -> str:
        return self.run(["version", "--short"]).stdout.strip()

    def template(self, chart: str | os.PathLike[str], *, release: str = contract.RELEASE,
                 namespace: str = contract.NAMESPACE, values_files: Sequence[str | os.PathLike[str]] = (),
                 set_values: Mapping[str, str] | Iterable[str] = (), kube_version: str | None = None,
                 api_versions: Iterable[str] = (), is_upgrade: bool = False,
                 show_only: Iterable[str] = (), include_crds: bool = True) -> str:
        """``helm template``: the rendered manifests as one YAML stream."""
        args = ["template", release, str(chart), "--namespace", namespace]
        args += _values_args(values_files, set_values)
        if kube_version:
            args += ["--kube-version", kube_version]
        for api in api_versions:
            args += ["--api-versions", api]
        if is_upgrade:
            args.append("--is-upgrade")
        for tpl in show_only:
            args += ["--show-only", tpl]
        if include_crds:
            args.append("--include-crds")
        return self.run(args, chart=chart, values_files=values_files).stdout

    def lint(self, chart: str | os.PathLike[str], *, values_files: Sequence[str | os.PathLike[str]] = (),
             strict: bool = True, kube_version: str | None = None) -> HelmResult:
        """``helm lint``; never raises for lint findings: inspect ``returncode`` and ``stdout``."""
        args = ["lint", str(chart)]
        if strict:
            args.append("--strict")
        if kube_version:
            args += ["--kube-version", kube_version]
        args += _values_args(values_files, ())
        return self.run(args, chart=chart, values_files=values_files, check=False)

    def package(self, chart: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
        out = self.run(["package", str(chart), "--destination", str(destination)], chart=chart).stdout
        # "Successfully packaged chart and saved it to: /path/x-1.0.0.tgz"
        return Path(out.strip().rsplit(":", 1)[-1].strip())

    def repo_index(self, directory: str | os.PathLike[str], *, url: str | None = None,
                   merge: str | os.PathLike[str] | None = None) -> None:
        args = ["repo", "index", str(directory)]
        if url:
            args += ["--url", url]
        if merge:
            args += ["--merge", str(merge)]
        self.run(args)

    def push(self, package: str | os.PathLike[str], remote: str, *,
             ca_file: str | os.PathLike[str] | None = None) -> str:
        """``helm push``; a ``<package>.prov`` beside the archive is pushed with it. Returns what helm
        printed ("Pushed: ..." and "Digest: sha256:..."; Helm 3 and 4 differ in the stream)."""
        args = ["push", str(package), remote]
        if ca_file:
            args += ["--ca-file", str(ca_file)]
        result = self.run(args)
        return result.stdout + result.stderr

    def env(self) -> dict[str, str]:
        """``helm env``: Helm's paths (HELM_REGISTRY_CONFIG, ...) as it resolves them."""
        out: dict[str, str] = {}
        for line in self.run(["env"]).stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
        return out

    def show_chart(self, chart: str | os.PathLike[str]) -> str:
        """``helm show chart``: the chart's metadata as Helm serialises it."""
        return self.run(["show", "chart", str(chart)], chart=chart).stdout

    def show_values(self, chart: str | os.PathLike[str]) -> dict[str, Any]:
        """``helm show values``: the chart's default values (a folder or a packaged archive)."""
        data = yaml.safe_load(self.run(["show", "values", str(chart)], chart=chart).stdout)
        return data if isinstance(data, dict) else {}

    def verify(self, archive: str | os.PathLike[str], keyring: str | os.PathLike[str]) -> str:
        """``helm verify``: the archive's ``.prov`` is signed by a key in ``keyring`` and names its sha256."""
        return self.run(["verify", str(archive), "--keyring", str(keyring)], chart=archive).stdout

    def repo_add(self, name: str, url: str, *, ca_file: str | os.PathLike[str] | None = None) -> str:
        args = ["repo", "add", name, url, "--force-update"]
        if ca_file:
            args += ["--ca-file", str(ca_file)]
        return self.run(args).stdout

    def search_repo(self, term: str, *, versions: bool = True, devel: bool = False) -> list[dict[str, Any]]:
        """``helm search repo TERM -o json`` (every version with ``versions``)."""
        args = ["search", "repo", term, "--output", "json"]
        if versions:
            args.append("--versions")
        if devel:
            args.append("--devel")
        data: list[dict[str, Any]] = json.loads(self.run(args).stdout or "[]")
        return data

    def pull(self, ref: str, destination: str | os.PathLike[str], *, version: str | None = None,
             keyring: str | os.PathLike[str] | None = None,
             ca_file: str | os.PathLike[str] | None = None) -> HelmResult:
        """``helm pull`` into ``destination`` (created); with ``keyring`` also ``--verify`` (fails unless the
        provenance checks out)."""
        Path(destination).mkdir(parents=True, exist_ok=True)
        args = ["pull", ref, "--destination", str(destination)]
        if version:
            args += ["--version", version]
        if keyring:
            args += ["--verify", "--keyring", str(keyring)]
        if ca_file:
            args += ["--ca-file", str(ca_file)]
        return self.run(args)

    def registry_login(self, host: str, username: str, password: str, *,
                       ca_file: str | os.PathLike[str] | None = None) -> None:
        """``helm registry login`` (password on stdin, never on the command line)."""
        args = ["registry", "login", host, "--username", username, "--password-stdin"]
        if ca_file:
            args += ["--ca-file", str(ca_file)]
        self.run(args, stdin=password)

    # -- cluster commands ------------------------------------------------------------------------

    def _wait_args(self, wait: bool) -> list[str]:
        if not wait:
            return []
        return ["--wait", "--wait-for-jobs"] if self.major == 3 else ["--wait=watcher", "--wait-for-jobs"]

    def upgrade(self, release: str, chart: str | os.PathLike[str], *, namespace: str,
                values_files: Sequence[str | os.PathLike[str]] = (),
                set_values: Mapping[str, str] | Iterable[str] = (), install: bool = True,
                wait: bool = True, timeout: str = "5m", create_namespace: bool = False,
                dry_run: str | None = None, extra: Sequence[str] = ()) -> HelmResult:
        """``helm upgrade`` (with ``--install`` unless ``install=False``)."""
        command = ["upgrade", "--install"] if install else ["upgrade"]
        return self._deploy(command, release, chart, namespace=namespace, values_files=values_files,
                            set_values=set_values, wait=wait, timeout=timeout,
                            create_namespace=create_namespace, dry_run=dry_run, extra=extra)

    def install(self, release: str, chart: str | os.PathLike[str], *, namespace: str,
                values_files: Sequence[str | os.PathLike[str]] = (),
                set_values: Mapping[str, str] | Iterable[str] = (), wait: bool = True,
                timeout: str = "5m", create_namespace: bool = False, dry_run: str | None = None,
                extra: Sequence[str] = ()) -> HelmResult:
        """``helm install`` (fails if the release exists)."""
        return self._deploy(["install"], release, chart, namespace=namespace, values_files=values_files,
                            set_values=set_values, wait=wait, timeout=timeout,
                            create_namespace=create_namespace, dry_run=dry_run, extra=extra)

    def _deploy(self, command: list[str], release: str, chart: str | os.PathLike[str], *, namespace: str,
                values_files: Sequence[str | os.PathLike[str]],
                set_values: Mapping[str, str] | Iterable[str], wait: bool, timeout: str,
                create_namespace: bool, dry_run: str | None, extra: Sequence[str]) -> HelmResult:
        args = [command[0], release, str(chart), *command[1:], "--namespace", namespace, "--timeout", timeout]
        if create_namespace:
            args.append("--create-namespace")
        if dry_run:
            args.append(f"--dry-run={dry_run}")
        args += self._wait_args(wait and not dry_run)
        args += _values_args(values_files, set_values)
        args += list(extra)
        return self.run(args, chart=chart, values_files=values_files)

    def rollback(self, release: str, revision: int, *, namespace: str, wait: bool = True,
                 timeout: str = "5m") -> HelmResult:
        args = ["rollback", release, str(revision), "--namespace", namespace, "--timeout", timeout]
        args += self._wait_args(wait)
        return self.run(args)

    def uninstall(self, release: str, *, namespace: str, wait: bool = True,
                  timeout: str = "5m") -> HelmResult:
        args = ["uninstall", release, "--namespace", namespace, "--timeout", timeout]
        if wait:
            args.append("--wait")
        return self.run(args)

    def status(self, release: str, *, namespace: str) -> dict[str, Any]:
        out = self.run(["status", release, "--namespace", namespace, "--output", "json"]).stdout
        data: dict[str, Any] = json.loads(out)
        return data

    def history(self, release: str, *, namespace: str) -> list[dict[str, Any]]:
        out = self.run(["history", release, "--namespace", namespace, "--output", "json"]).stdout
        data: list[dict[str, Any]] = json.loads(out)
        return data

    def test(self, release: str, *, namespace: str, timeout: str = "5m") -> HelmResult:
        """``helm test`` with the test pods' logs (Helm prints them on success and failure)."""
        return self.run(["test", release, "--namespace", namespace, "--timeout", timeout, "--logs"])

    def get_values(self, release: str, *, namespace: str, all_values: bool = False) -> dict[str, Any]:
        """``helm get values -o json``: the values the user gave (``all_values``: merged with the chart's)."""
        args = ["get", "values", release, "--namespace", namespace, "--output", "json"]
        if all_values:
            args.append("--all")
        data: dict[str, Any] = json.loads(self.run(args).stdout or "{}") or {}
        return data

    def get_hooks(self, release: str, *, namespace: str) -> str:
        return self.run(["get", "hooks", release, "--namespace", namespace]).stdout

    def get_manifest(self, release: str, *, namespace: str, revision: int | None = None) -> str:
        args = ["get", "manifest", release, "--namespace", namespace]
        if revision is not None:
            args += ["--revision", str(revision)]
        return self.run(args).stdout


def _values_args(values_files: Sequence[str | os.PathLike[str]],
                 set_values: Mapping[str, str] | Iterable[str]) -> list[str]:
    args: list[str] = []
    for f in values_files:
        if not Path(f).exists():
            raise HomeciError(f"{f}: values file not found; check the path")
        if Path(f).is_dir():
            raise HomeciError(f"{f}: is a directory, not a values file")
        args += ["--values", str(f)]
    if isinstance(set_values, Mapping):
        pairs = [f"{k}={v}" for k, v in set_values.items()]
    else:
        pairs = list(set_values)
    for pair in pairs:
        if "=" not in pair:
            raise HomeciError(f"--set {pair!r}: expected key=value")
        args += ["--set", pair]
    return args


def _context(chart: str | os.PathLike[str] | None, values_files: Sequence[str | os.PathLike[str]]) -> str:
    parts = []
    if chart is not None:
        parts.append(f"chart {chart}")
    if values_files:
        parts.append("values " + ", ".join(str(v) for v in values_files))
    return f" ({'; '.join(parts)})" if parts else ""
