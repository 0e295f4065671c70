"""Chart-repository helpers for the consumer-side tests (tests/repo, tests/sim/test_repository_*.py).

* a throwaway OpenPGP key (skips, saying what to install, where gpg is missing);
* a signed classic repository built by homeci's own packaging: the previous release (git tag, else the
  commit in toolchain/release.toml) and the working tree at the version `homeci release` would give it;
* that directory served over HTTPS on 127.0.0.1, trusted only through a CA made for the test (homeci.ca);
* a private Helm home per consumer, so nothing touches the user's repositories or registry logins.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import ca, packaging, release, signing
from homeci.helm import Helm
from homeci_testing import support
from homeci_testing.loopback import serve

ROOT = support.ROOT
UMBRELLA = "homeci-umbrella"
PIPELINES = "drone-pipelines"


def need_gpg() -> None:
    reason = signing.gpg_unavailable()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def gpg_signer(directory: Path) -> Iterator[signing.ProvenanceSigner]:
    """A ProvenanceSigner with a new throwaway key (its gpg-agent is stopped afterwards)."""
    need_gpg()
    with signing.throwaway_gpg_key(directory) as key:
        signer = signing.ProvenanceSigner(key)
        try:
            yield signer
        finally:
            signer.close()


def stage(chart: Path, dest: Path, version: str) -> Path:
    """A copy of ``chart`` carrying ``version`` (the subchart pins untouched)."""
    copy = Path(shutil.copytree(chart, dest / chart.name))
    release.set_chart_fields(copy / "Chart.yaml", version=version, pins=False)
    return copy


def with_older_program(chart: Path, dest: Path, program: str, app_version: str,
                       version: str = "0.0.9") -> Path:
    """A copy of the umbrella ``chart`` at suite ``version`` whose ``program`` subchart claims the older
    ``app_version``: what a downgrade to an earlier release looks like to Helm."""
    copy = Path(shutil.copytree(chart, dest / chart.name))
    release.set_chart_fields(copy / "Chart.yaml", version=version, pins=False)
    sub = copy / "charts" / program / "Chart.yaml"
    current = yaml.safe_load(sub.read_text())["appVersion"]
    sub.write_text(sub.read_text().replace(f'appVersion: "{current}"', f'appVersion: "{app_version}"'))
    return copy


@dataclass
class UpgradeRepository:
    """A signed classic repository holding the previous release and the working tree."""

    directory: Path
    keyring: Path                  # the public key, as a binary keyring (helm --keyring)
    fingerprint: str
    previous: str                  # the umbrella version labelled for the previous release
    new: str                       # the version the working tree would be released as
    baseline: release.Baseline
    restarts: list[release.Restart] = field(default_factory=list)

    def archive(self, chart: str, version: str) -> Path:
        return self.directory / f"{chart}-{version}.tgz"


def previous_label(baseline: release.Baseline, charts: Path, new: release.Version) -> str:
    """The previous release's version in the test repository: a tag's own, else the recorded commit's
    Chart.yaml version; when that equals the working tree's (nothing released yet) it becomes the pre-release
    ``<version>-git.<commit>`` of it, which Helm and semver order before it."""
    version = baseline.version if baseline.version is not None else release.suite_version(charts.parent)
    if not version < new:
        return f"{version}-git.{baseline.commit[:7]}"
    return str(version)


def build_upgrade_repository(workdir: Path, signer: signing.ProvenanceSigner, *,
                             pipelines: bool = True) -> UpgradeRepository:
    """The umbrella's previous release and working tree (and drone-pipelines' working tree, with
    ``pipelines``), packaged and signed into ``workdir/repository``."""
    baseline = release.previous_release(ROOT)
    old_charts = release.export_charts(ROOT, baseline.commit, workdir / "previous")
    new = release.next_version(ROOT)
    previous = previous_label(baseline, old_charts, new)
    staged = workdir / "staged"
    charts = [stage(old_charts / UMBRELLA, staged / "previous", previous),
              stage(ROOT / "charts" / UMBRELLA, staged / "new", str(new))]
    if pipelines:
        charts.append(stage(ROOT / "charts" / PIPELINES, staged / "new", str(new)))
    directory = workdir / "repository"
    packaging.package(charts, directory, signer=signer)
    sections = release.parse_changelog(ROOT / release.CHANGELOG)
    restarts = release.restarts_after(sections, baseline.version)
    return UpgradeRepository(directory, signer.public_keyring(), signer.fingerprint, previous, str(new),
                             baseline, restarts)


class _Files(SimpleHTTPRequestHandler):
    """Static files, with every request path recorded (to see what a consumer fetched)."""

    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requests.append(self.path)


@dataclass
class Served:
    url: str
    ca_file: Path
    requests: list[str]


@contextlib.contextmanager
def serve_https(directory: Path, workdir: Path) -> Iterator[Served]:
    """``directory`` over HTTPS on 127.0.0.1, its certificate issued by a CA made here (``ca_file``)."""
    ca_cert, ca_key = ca.new_ca("homeci chart repository test CA", days=2, domain="localhost",
                                ips=["127.0.0.1"])
    leaf, leaf_key = ca.issue(ca_cert, ca_key, ["127.0.0.1", "localhost"], days=2)
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file = workdir / "ca.crt"
    ca_file.write_bytes(ca.cert_pem(ca_cert))
    (workdir / "tls.crt").write_bytes(ca.cert_pem(leaf))
    (workdir / "tls.key").write_bytes(ca.key_pem(leaf_key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
    requests: list[str] = []
    handler = type("Files", (_Files,), {"requests": requests})
    with serve(partial(handler, directory=str(directory)), tls=context) as port:  # type: ignore[arg-type]
        yield Served(f"https://127.0.0.1:{port}", ca_file, requests)


def consumer(major: int, home: Path, kubeconfig: Path | str | None = None) -> Helm:
    """Helm ``major`` with a Helm home of its own (a fresh machine's: no repositories, no logins)."""
    return Helm(major, home=home / f"helm{major}", kubeconfig=kubeconfig)


def one_line(stderr: str) -> list[str]:
    return [ln for ln in stderr.strip().splitlines() if ln.strip()]


@contextlib.contextmanager
def forward(listen: tuple[str, int], target: tuple[str, int]) -> Iterator[None]:
    """Relay TCP from ``listen`` to ``target`` (TLS passes through untouched), in threads; stops on exit."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(target, timeout=30) as upstream:
                pair = [self.request, upstream]
                while True:
                    readable, _, _ = select.select(pair, [], [], 60)
                    if not readable:
                        return
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is self.request else self.request).sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(listen, Relay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
