"""Issue 14, the OCI channel: homeci's packaging pushes the signed charts to homeci's own registry program
(distribution v3 with the rendered config.yml and htpasswd, behind the rendered Traefik, TLS from the
homeci CA — the T2 harness) and signs each with cosign; cosign verifies them with the public key and refuses
another key; Helm 3 and 4 install `oci://…` with `--verify` (the .prov travels as a layer) into the simulated
cluster.

The registry's rendered `http.host` is https://registry.<domain> (port 443, used in upload Locations), so
the clients run with a private /etc/hosts (realprog.ClusterNames.wrap: a mount namespace of their
own) naming a loopback address of this test only, 127.77.14.1, whose port 443 relays to the loopback
Traefik. Both need root; elsewhere the test skips saying so."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from homeci import manifests, packaging, release, signing, toolchain
from homeci.errors import HomeciError
from homeci.helm import Helm, HelmError
from homeci_testing import realprog_harness
from homeci_testing.chartrepo import (
    PIPELINES,
    ROOT,
    UMBRELLA,
    forward,
    gpg_signer,
    one_line,
    stage,
)
from homeci_testing.clusters import Deployments, diagnose
from homeci_testing.realprog import ClusterNames
from homeci_testing.support import RELEASE

PRIVATE_IP = "127.77.14.1"
PATH = "charts"
# A cold `go install` of cosign v2.6.5 (modules downloaded, empty build cache) took 541 s user + 96 s system
# CPU, 1.4 GB peak memory (measured 2026-12-02).
COSIGN_COLD_BUILD = "6 minutes"


@dataclass
class Published:
    host: str
    ca_file: Path
    username: str
    password: str
    wrap: list[str]
    version: str
    keyring: Path
    cosign_signer: signing.Cosign | None
    key: signing.CosignKey | None
    results: list[packaging.Packaged]
    tmp: Path

    @property
    def cosign(self) -> signing.Cosign:
        if self.cosign_signer is None:
            pytest.skip("cosign is not built (optional: `homeci toolchain install cosign`, about "
                        f"{COSIGN_COLD_BUILD} on 2 cores); Helm's provenance alone checked the OCI charts")
        return self.cosign_signer

    @property
    def cosign_key(self) -> signing.CosignKey:
        assert self.key is not None
        return self.key

    def consumer(self, major: int, home: Path, kubeconfig: str | None = None) -> Helm:
        helm = Helm(major, home=home, wrap=self.wrap, kubeconfig=kubeconfig)
        helm.registry_login(self.host, self.username, self.password, ca_file=self.ca_file)
        return helm


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    if os.geteuid() != 0:
        pytest.skip(f"the registry's public name needs port 443 on {PRIVATE_IP} and a private /etc/hosts: "
                    "run as root")
    why = ClusterNames.unavailable()
    if why:
        pytest.skip(f"clients cannot get a private /etc/hosts: {why}")
    registry_bin = realprog_harness.binary("registry")
    try:
        cosign_bin: Path | None = toolchain.resolve("cosign")
    except HomeciError:
        cosign_bin = None    # Helm's provenance still guards the OCI channel; the cosign tests skip
    rendered = realprog_harness.render("default")
    host = realprog_harness.public_hosts("default")["registry"]
    tmp = tmp_path_factory.mktemp("oci")
    ca_file = tmp / "ca.crt"
    ca_file.write_text(manifests.get(rendered, "ConfigMap", f"{RELEASE}-ca").obj["data"]["ca.crt"])
    auth = manifests.get(rendered, "Secret", f"{RELEASE}-registry-auth").obj["data"]
    username, password = (base64.b64decode(auth[k]).decode() for k in ("username", "password"))
    names = ClusterNames(tmp / "names")
    names.root.mkdir(parents=True)
    names.hosts_file.write_text(f"127.0.0.1 localhost\n{PRIVATE_IP} {host}\n")
    wrap = names.wrap([])
    with realprog_harness.LoopbackTraefik(rendered, tmp / "traefik") as traefik, \
            realprog_harness.LoopbackRegistry(rendered, tmp / "registry", registry_bin) as registry, \
            gpg_signer(tmp / "gpg") as signer:
        traefik.route(f"{RELEASE}-registry", registry.port)
        with forward((PRIVATE_IP, 443), ("127.0.0.1", traefik.ports["websecure"])):
            publisher = Helm(3, home=tmp / "publisher", wrap=wrap)
            publisher.registry_login(host, username, password, ca_file=ca_file)
            cosign = key = None
            if cosign_bin is not None:
                cosign = signing.Cosign(docker_config=tmp / "publisher" / "config" / "registry",
                                        ca_file=ca_file, wrap=wrap, binary=cosign_bin)
                key = cosign.generate_key_pair(tmp / "cosign", password="cosign test password")
            version = str(release.next_version(ROOT))
            charts = [stage(ROOT / "charts" / c, tmp / "staged", version) for c in (UMBRELLA, PIPELINES)]
            target = packaging.OciTarget(f"oci://{host}/{PATH}", ca_file, cosign, key)
            results = packaging.package(charts, tmp / "dist", signer=signer, oci=target, helm=publisher)
            yield Published(host, ca_file, username, password, wrap, version, signer.public_keyring(), cosign,
                            key, results, tmp)


def test_charts_are_pushed_and_cosigned_by_digest(published: Published) -> None:
    cosign = published.cosign
    assert [(r.name, r.cosigned) for r in published.results] == [(UMBRELLA, True), (PIPELINES, True)]
    for r in published.results:
        ref = f"{published.host}/{PATH}/{r.name}@{r.oci_digest}"
        payloads = cosign.verify(ref, published.cosign_key.public)
        digests = {p.get("critical", {}).get("image", {}).get("docker-manifest-digest") for p in payloads}
        assert digests == {r.oci_digest}, f"cosign verify {ref}: payloads name {digests}"
        # by tag too: what a consumer types
        assert cosign.verify(f"{published.host}/{PATH}/{r.name}:{r.version}", published.cosign_key.public)


def test_cosign_refuses_another_key(published: Published) -> None:
    other = published.cosign.generate_key_pair(published.tmp / "other-cosign")
    ref = f"{published.host}/{PATH}/{UMBRELLA}:{published.version}"
    with pytest.raises(HomeciError) as exc:
        published.cosign.verify(ref, other.public)
    message = str(exc.value)
    assert message.startswith(f"cosign verify {ref} failed: cosign says ") and "\n" not in message, message
    assert "no matching signatures" in message or "invalid signature" in message, message


def test_helm_pulls_with_verification_from_oci(published: Published, tmp_path: Path) -> None:
    for major in (3, 4):
        consumer = published.consumer(major, tmp_path / f"helm{major}")
        out = consumer.pull(f"oci://{published.host}/{PATH}/{UMBRELLA}", tmp_path / f"pulled{major}",
                            version=published.version, keyring=published.keyring, ca_file=published.ca_file)
        assert "Signed by: homeci test signing key" in out.stdout + out.stderr, f"helm{major}: {out}"
        archive = next(r.archive for r in published.results if r.name == UMBRELLA)
        pulled = tmp_path / f"pulled{major}" / archive.name
        assert pulled.read_bytes() == archive.read_bytes(), f"helm{major} pulled other bytes than were pushed"


def test_pull_without_login_is_refused(published: Published, tmp_path: Path) -> None:
    anonymous = Helm(3, home=tmp_path / "anon", wrap=published.wrap)
    with pytest.raises(HelmError) as exc:
        anonymous.pull(f"oci://{published.host}/{PATH}/{UMBRELLA}", tmp_path / "pulled",
                       version=published.version, ca_file=published.ca_file)
    lines = one_line(exc.value.stderr)
    # the registry's 401 challenge, as Helm words it when it has no login for the host
    assert len(lines) == 1 and "basic credential not found" in lines[0], lines


def test_install_from_oci_with_verification(helm: Helm, api: Any, namespace: str, deployments: Deployments,
                                            published: Published, tmp_path: Path) -> None:
    consumer = published.consumer(helm.major, tmp_path / "home", kubeconfig=helm.kubeconfig)
    deployments.track(consumer, RELEASE, namespace)
    chart = f"oci://{published.host}/{PATH}/{UMBRELLA}"
    try:
        consumer.install(RELEASE, chart, namespace=namespace, timeout="3m",
                         extra=["--version", published.version, "--verify", "--keyring",
                                str(published.keyring), "--ca-file", str(published.ca_file)])
    except HelmError as exc:
        raise AssertionError(f"{consumer} install {chart} --verify failed: {exc}\n"
                             f"cluster says:\n{diagnose(api, [namespace])}") from None
    status = consumer.status(RELEASE, namespace=namespace)
    meta = status["chart"]["metadata"] if "chart" in status else {}
    assert status["info"]["status"] == "deployed", status["info"]
    assert not meta or meta.get("version") == published.version, meta
