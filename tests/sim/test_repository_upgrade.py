"""Issue 14, done-when: a clean machine adds the signed classic repository (HTTPS on loopback, trusted
through a CA of its own), installs the previous release from it with `--verify`, and upgrades to the
working tree's version from it with `--verify`, under Helm 3 and 4 — and the upgrade loses nothing
(PVCs, the CA, generated Secrets, the admin) and changes no pod template the CHANGELOG does not name.

The CA Secret, the serving Secret and ConfigMap <release>-ca were rendered by the previous chart and are
written by the certificate program now: its pre-upgrade hook (run through tests/sim/certsjob.py, kwok runs
no containers) adopts them, so the CA fingerprint, the certificate and the ConfigMap survive the upgrade
that stops rendering them (Helm deletes what it no longer renders unless the live object says `keep`).

The previous release is the newest v<version> tag, else the commit in toolchain/release.toml
(chartrepo docstring);
both are packaged and signed by homeci's own packaging into the test's repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from certsjob import render, run_cronjob, run_hook
from kubernetes import client

from homeci import release, signing
from homeci.helm import Helm, HelmError
from homeci_testing.chartrepo import (
    ROOT,
    UMBRELLA,
    Served,
    UpgradeRepository,
    build_upgrade_repository,
    gpg_signer,
    serve_https,
)
from homeci_testing.clusters import (
    Deployments,
    certificate,
    configmap_data,
    diagnose,
    generated_keys,
    pod_templates,
    secret_data,
)
from homeci_testing.support import RELEASE

REPO = "homeci"


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[signing.ProvenanceSigner]:
    with gpg_signer(tmp_path_factory.mktemp("gpg")) as s:
        yield s


@pytest.fixture(scope="module")
def repository(signer: signing.ProvenanceSigner,
               tmp_path_factory: pytest.TempPathFactory) -> UpgradeRepository:
    return build_upgrade_repository(tmp_path_factory.mktemp("repo"), signer, pipelines=False)


@pytest.fixture(scope="module")
def served(repository: UpgradeRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_https(repository.directory, tmp_path_factory.mktemp("https")) as s:
        yield s


def deploy(consumer: Helm, api: Any, deps: Deployments, namespace: str, version: str, keyring: Path, *,
           upgrade: bool) -> str:
    """helm install/upgrade homeci/homeci-umbrella --version V --verify --keyring K, --wait; the manifest."""
    deps.track(consumer, RELEASE, namespace)
    extra = ["--version", version, "--verify", "--keyring", str(keyring)]
    chart = f"{REPO}/{UMBRELLA}"
    try:
        if upgrade:
            result = consumer.upgrade(RELEASE, chart, namespace=namespace, install=False, timeout="3m",
                                      extra=extra)
        else:
            result = consumer.install(RELEASE, chart, namespace=namespace, timeout="3m", extra=extra)
    except HelmError as exc:
        raise AssertionError(f"{consumer} {'upgrade' if upgrade else 'install'} {chart} {version} --verify "
                             f"failed: {exc}\ncluster says:\n{diagnose(api, [namespace])}") from None
    return result.stdout


def pvcs(api: Any, namespace: str) -> dict[str, tuple[str, str]]:
    """PVC name -> (uid, requested storage): a recreated claim has a new uid (and its data is gone)."""
    items = client.CoreV1Api(api).list_namespaced_persistent_volume_claim(namespace).items
    return {p.metadata.name: (p.metadata.uid, (p.spec.resources.requests or {}).get("storage", ""))
            for p in items}


def test_install_previous_and_upgrade_from_the_repository(
        helm: Helm, api: Any, namespace: str, deployments: Deployments, repository: UpgradeRepository,
        served: Served, tmp_path: Path) -> None:
    # Helm 4.3 fetches the .prov for install/upgrade --verify without the repository's CA (its
    # DownloadToCache passes no getter options), so a Helm 4 consumer of a private-CA repository trusts the
    # CA system-wide (docs/chart-repository.md, "Verifying"; tests/repo pins the limitation).
    env = {"SSL_CERT_FILE": str(served.ca_file)} if helm.major == 4 else {}
    consumer = Helm(helm.major, kubeconfig=helm.kubeconfig, home=tmp_path / "home", env=env)
    consumer.repo_add(REPO, served.url, ca_file=served.ca_file)
    found = {e["version"] for e in consumer.search_repo(f"{REPO}/{UMBRELLA}", versions=True, devel=True)}
    assert {repository.previous, repository.new} <= found, f"{consumer} search repo lists {sorted(found)}"

    deploy(consumer, api, deployments, namespace, repository.previous, repository.keyring, upgrade=False)
    assert f"/{UMBRELLA}-{repository.previous}.tgz.prov" in served.requests, "install --verify: no .prov read"
    claims, secrets = pvcs(api, namespace), secret_data(api, namespace)
    templates = pod_templates(api, namespace)
    ca = certificate(api, namespace, f"{RELEASE}-ca")
    tls = certificate(api, namespace, f"{RELEASE}-tls")
    published = configmap_data(api, namespace).get(f"{RELEASE}-ca", {}).get("ca.crt")
    assert claims, f"the previous release ({repository.baseline.ref}) created no PersistentVolumeClaim"
    assert f"{RELEASE}-admin" in secrets, f"the previous release created no Secret/{RELEASE}-admin"

    hook = run_hook(api, render(namespace), namespace)  # the new chart's pre-upgrade hook
    assert hook.code == 0, f"the certificate hook before the upgrade failed: {hook}"
    deploy(consumer, api, deployments, namespace, repository.new, repository.keyring, upgrade=True)
    assert run_cronjob(api, namespace).code == 0  # the post-upgrade publishing Job
    assert f"/{UMBRELLA}-{repository.new}.tgz.prov" in served.requests, "upgrade --verify fetched no .prov"
    history = consumer.history(RELEASE, namespace=namespace)
    charts = [h["chart"] for h in history]
    assert charts == [f"{UMBRELLA}-{repository.previous}", f"{UMBRELLA}-{repository.new}"], charts

    after_claims = pvcs(api, namespace)
    lost = [f"PersistentVolumeClaim/{n}" + (" (recreated)" if n in after_claims else " (deleted)")
            for n, v in claims.items() if after_claims.get(n) != v]
    assert not lost, f"{consumer} upgrade {repository.previous} -> {repository.new} lost: {', '.join(lost)}"
    after = secret_data(api, namespace)
    must_keep = generated_keys(ROOT / "charts" / UMBRELLA)
    must_keep[f"{RELEASE}-admin"] = set(secrets.get(f"{RELEASE}-admin", {}))   # the whole admin identity
    lost_secrets = [f"Secret/{name} deleted" for name in secrets if name not in after]
    lost_secrets += [f"Secret/{name} data[{key}]" for name, keys in sorted(must_keep.items()) if name in after
                     for key in sorted(keys) if key in secrets.get(name, {})
                     and after[name].get(key) != secrets[name][key]]
    assert not lost_secrets, (f"{consumer} upgrade {repository.previous} -> {repository.new} replaced "
                              "generated values (passwords, keys, tokens, the admin): "
                              f"{', '.join(lost_secrets)}")
    assert certificate(api, namespace, f"{RELEASE}-ca").serial_number == ca.serial_number, "CA replaced"
    assert certificate(api, namespace, f"{RELEASE}-tls").serial_number == tls.serial_number, (
        f"Secret/{RELEASE}-tls reissued by an upgrade that changed no host")
    for name in (f"{RELEASE}-ca", f"{RELEASE}-tls"):
        assert after.get(name) == secrets.get(name), f"Secret/{name}: data changed on adoption"
    kept = configmap_data(api, namespace).get(f"{RELEASE}-ca", {})
    assert published and kept.get("ca.crt") == published, (
        f"ConfigMap/{RELEASE}-ca lost or changed by the upgrade (keys now: {sorted(kept)})")
    assert configmap_data(api, f"{RELEASE}-builds").get(f"{RELEASE}-ca", {}).get("ca.crt") == published, (
        f"ConfigMap {RELEASE}-builds/{RELEASE}-ca is not the same CA after the upgrade")

    named = {r.ref(RELEASE) for r in repository.restarts}
    now = pod_templates(api, namespace)
    rolled = sorted(ref for ref in templates if ref in now and templates[ref][1] != now[ref][1])
    unnamed = [ref for ref in rolled if ref not in named]
    assert not unnamed, (
        f"{consumer} upgrade {repository.previous} -> {repository.new} changes the pod template of "
        f"{', '.join(unnamed)}, which {release.CHANGELOG} does not name: add under ## [Unreleased] "
        f"### Restarts a line per workload, e.g. - `{unnamed[0].replace(RELEASE + '-', '<release>-', 1)}`: "
        "why")


def test_without_the_hook_helm_deletes_the_old_configmap(
        helm: Helm, api: Any, namespace: str, deployments: Deployments, repository: UpgradeRepository,
        served: Served, tmp_path: Path) -> None:
    """The control for the test above: Helm deletes on upgrade what it no longer renders unless the *live*
    object says keep. The previous release's ConfigMap <release>-ca has no keep in its manifest; upgraded
    without the hook's adoption it is gone (the Secrets, kept in that manifest, stay). With the hook, the
    test above shows it survives: Helm 3.21 and 4.3 read the annotation from the live object."""
    env = {"SSL_CERT_FILE": str(served.ca_file)} if helm.major == 4 else {}
    consumer = Helm(helm.major, kubeconfig=helm.kubeconfig, home=tmp_path / "home", env=env)
    consumer.repo_add(REPO, served.url, ca_file=served.ca_file)
    deploy(consumer, api, deployments, namespace, repository.previous, repository.keyring, upgrade=False)
    assert f"{RELEASE}-ca" in configmap_data(api, namespace)
    deploy(consumer, api, deployments, namespace, repository.new, repository.keyring, upgrade=True)
    assert f"{RELEASE}-ca" not in configmap_data(api, namespace), (
        f"{consumer} kept ConfigMap/{RELEASE}-ca without keep: the adoption would not be needed")
    assert {f"{RELEASE}-ca", f"{RELEASE}-tls"} <= set(secret_data(api, namespace))
