"""The certificate program (charts/homeci-umbrella/files/certs.py) against the real libcrypto here.

* The CA it generates is name-constrained: OpenSSL (`openssl verify`), Go (crypto/x509, a fixture program)
  and `cryptography`'s verifier accept a leaf for git.<domain> signed with its key, and refuse one for
  example.com, a look-alike suffix, or an IP address it was not created for — as a browser would
  (research/browser-tier.md: Chromium honours the same constraints).
* The reissue rules, pass by pass on an in-memory namespace (the program's own --print store): nothing
  changed -> nothing written; hosts or CA changed, inside renewBeforeDays -> reissued; a CA that cannot
  cover a new name -> one problem line; warnings become Events.
* The objects the previous release rendered (its real render, from the upgrade baseline) are adopted:
  data unchanged, `keep` added, nothing written on the next pass.
The same program against a real kube-apiserver: tests/sim/test_certs_job.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from homeci import ca as camod
from homeci import manifests, release
from homeci.helm import Helm
from homeci_testing.support import FIXTURES, KUBE_VERSION, NAMESPACE, RELEASE, ROOT, UMBRELLA, load_script

SCRIPT = UMBRELLA / "files" / "certs.py"
DOMAIN = "homeci.localhost"
DAY = 86400


certs = load_script(SCRIPT, "homeci_certs_program")


def config(**over: Any) -> Any:
    dns = [f"*.{DOMAIN}", f"ci.{DOMAIN}", f"git.{DOMAIN}", f"registry.{DOMAIN}"]
    base: dict[str, Any] = dict(
        namespace=NAMESPACE,
        release=RELEASE,
        mode="generate",
        ca_secret=f"{RELEASE}-ca",
        ca_configmap=f"{RELEASE}-ca",
        configmap_namespaces=[NAMESPACE],
        tls_secret=f"{RELEASE}-tls",
        create_serving_secret=True,
        domain=DOMAIN,
        dns_names=dns,
        ip_addresses=[],
        ca_common_name=f"{RELEASE} CA ({DOMAIN})",
        ca_validity_days=3650,
        serving_validity_days=397,
        renew_before_days=30,
    )
    base.update(over)
    base["dns_names"] = sorted(set(base["dns_names"]))
    return certs.Config(**base)


def run(cfg: Any, store: Any = None, now: int | None = None) -> tuple[Any, list[str]]:
    store = store if store is not None else certs.MemoryStore()
    return store, certs.reconcile(cfg, store, now=now)


def obj(store: Any, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    found = store.get(kind, namespace, name)
    assert found is not None, f"{kind} {namespace}/{name} was not written"
    return dict(found)


def secret_pem(store: Any, name: str, key: str = "tls.crt") -> bytes:
    return base64.b64decode(obj(store, "Secret", name)["data"][key])


def ca_of(store: Any) -> tuple[x509.Certificate, Any]:
    cert = x509.load_pem_x509_certificate(secret_pem(store, f"{RELEASE}-ca"))
    key = serialization.load_pem_private_key(secret_pem(store, f"{RELEASE}-ca", "tls.key"), password=None)
    return cert, key


def serving(store: Any) -> x509.Certificate:
    return x509.load_pem_x509_certificate(secret_pem(store, f"{RELEASE}-tls"))


def leaf_signed_by(ca: x509.Certificate, ca_key: Any, names: list[str]) -> x509.Certificate:
    """A serving certificate as whoever holds the CA key could make it (not by the program)."""
    return camod.issue(ca, ca_key, names, days=30)[0]


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- three verifiers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def goverify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/goverify built once (standard library only: no module download)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed: the Go verifier case needs `go` (>= 1.22) on PATH")
    out = tmp_path_factory.mktemp("goverify") / "goverify"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    proc = subprocess.run(
        [go, "build", "-o", str(out), "."],
        cwd=FIXTURES / "goverify",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"building tests/fixtures/goverify failed: {proc.stderr}"
    return out


def verdicts(
    ca: x509.Certificate, leaf: x509.Certificate, host: str, tmp: Path, goverify: Path
) -> dict[str, str]:
    """verifier -> "OK" or its reason, for a client that trusts only ``ca`` and connects to ``host``."""
    (tmp / "ca.pem").write_bytes(pem(ca))
    (tmp / "leaf.pem").write_bytes(pem(leaf))
    out: dict[str, str] = {}
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp / "ca.pem"), str(tmp / "leaf.pem")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out["openssl"] = "OK" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip().replace("\n", " ")
    proc = subprocess.run(
        [str(goverify), str(tmp / "ca.pem"), str(tmp / "leaf.pem"), host],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    out["go"] = proc.stdout.strip()
    try:
        subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(subject)  # type: ignore[arg-type]
    try:
        verifier.verify(leaf, [])
        out["cryptography"] = "OK"
    except VerificationError as exc:
        out["cryptography"] = str(exc)
    return out


# (extraDnsNames, extraIpAddresses) of the CA, the leaf's host, accepted?
CONSTRAINT_CASES = {
    "component-host": ([], [], "git.homeci.localhost", True),
    "app-host": ([], [], "my-app.homeci.localhost", True),
    "other-site": ([], [], "example.com", False),
    "look-alike-suffix": ([], [], "git.homeci.localhost.evil.example", False),
    "no-label-boundary": ([], [], "evilhomeci.localhost", False),
    "unlisted-ipv4": ([], [], "10.0.0.1", False),
    "unlisted-ipv6": ([], [], "::1", False),
    "listed-ip": ([], ["192.168.1.10"], "192.168.1.10", True),
    "neighbour-of-listed-ip": ([], ["192.168.1.10"], "192.168.1.11", False),
    "ipv6-when-only-ipv4-listed": ([], ["192.168.1.10"], "fd00::1", False),
    "extra-name-outside-domain": (["*.apps.example.org"], [], "shop.apps.example.org", True),
    "parent-of-extra-name": (["*.apps.example.org"], [], "example.org", False),
}


@pytest.mark.parametrize("case", list(CONSTRAINT_CASES))
def test_a_leaked_ca_key_cannot_vouch_for_other_names(case: str, tmp_path: Path, goverify: Path) -> None:
    extra_dns, extra_ips, host, accepted = CONSTRAINT_CASES[case]
    cfg = config(dns_names=[f"*.{DOMAIN}", f"git.{DOMAIN}", *extra_dns], ip_addresses=extra_ips)
    store, problems = run(cfg)
    assert problems == []
    ca, key = ca_of(store)
    got = verdicts(ca, leaf_signed_by(ca, key, [host]), host, tmp_path, goverify)
    if accepted:
        assert got == {"openssl": "OK", "go": "OK", "cryptography": "OK"}, f"{case}: {host} refused: {got}"
    else:
        accepting = sorted(name for name, verdict in got.items() if verdict == "OK")
        assert not accepting, f"{case}: {accepting} accept a leaf for {host} from the CA: {got}"


def test_generated_ca_and_serving_certificate(tmp_path: Path, goverify: Path) -> None:
    store, problems = run(config(ip_addresses=["192.168.1.10"]))
    assert problems == []
    ca, _ = ca_of(store)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert {str(n.value) for n in nc.value.permitted_subtrees or []} == {DOMAIN, "192.168.1.10/32"}
    assert {str(n.value) for n in nc.value.excluded_subtrees or []} == {"::/0"}
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=3650) <= lifetime <= dt.timedelta(days=3650, hours=1)
    leaf = serving(store)
    for host in (f"git.{DOMAIN}", f"registry.{DOMAIN}", f"app.{DOMAIN}", "192.168.1.10"):
        assert verdicts(ca, leaf, host, tmp_path, goverify) == {
            "openssl": "OK",
            "go": "OK",
            "cryptography": "OK",
        }
    cm = obj(store, "ConfigMap", f"{RELEASE}-ca")
    assert cm["data"]["ca.crt"].encode() == pem(ca)
    notes = cm["metadata"]["annotations"]
    assert (
        notes["homeci.dev/name-constraints"]
        == f"permitted DNS:{DOMAIN}, IP:192.168.1.10/32; excluded IP:::/0"
    )
    assert notes["helm.sh/resource-policy"] == "keep"


# --- the reissue rules -----------------------------------------------------------------------------


def test_a_second_pass_writes_nothing() -> None:
    store, _ = run(config())
    before = json.dumps(list(store.objects.values()), sort_keys=True)
    store.writes.clear()
    _, problems = run(config(), store)
    assert problems == [] and store.writes == [], f"second pass wrote {store.writes}"
    assert json.dumps(list(store.objects.values()), sort_keys=True) == before


def test_hosts_changed_reissues_and_keeps_the_ca() -> None:
    store, _ = run(config())
    ca, tls = secret_pem(store, f"{RELEASE}-ca"), serving(store)
    cfg = config(dns_names=[*config().dns_names, f"docs.{DOMAIN}"])
    store.writes.clear()
    _, problems = run(cfg, store)
    assert problems == []
    assert store.writes == [f"update Secret {NAMESPACE}/{RELEASE}-tls"], store.writes
    assert secret_pem(store, f"{RELEASE}-ca") == ca, "the CA was replaced"
    new = serving(store)
    assert new.serial_number != tls.serial_number
    assert f"docs.{DOMAIN}" in new.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert obj(store, "Secret", f"{RELEASE}-tls")["metadata"]["annotations"]["homeci.dev/hosts"] == cfg.hosts
    assert [(e[1], e[2]) for e in store.events] == [("Normal", "CertificateRenewed")]


def test_a_new_ca_reissues_the_serving_certificate() -> None:
    store, _ = run(config())
    old = serving(store)
    del store.objects[("Secret", NAMESPACE, f"{RELEASE}-ca")]
    _, problems = run(config(), store)
    assert problems == []
    ca, _ = ca_of(store)
    new = serving(store)
    assert new.serial_number != old.serial_number and new.issuer == ca.subject
    new.verify_directly_issued_by(ca)


@pytest.mark.parametrize(("days_left", "reissued"), [(200, False), (31, False), (29, True), (-3, True)])
def test_renew_before_days(days_left: int, reissued: bool) -> None:
    store, _ = run(config())
    old = serving(store)
    now = int(old.not_valid_after_utc.timestamp()) - days_left * DAY
    store.writes.clear()
    _, problems = run(config(), store, now=now)
    assert problems == []
    assert (serving(store).serial_number != old.serial_number) == reissued, (
        f"{days_left} days left, renewBeforeDays 30: reissued should be {reissued}"
    )
    if not reissued:
        assert store.writes == [], f"kept certificate, yet wrote {store.writes}"
    else:
        assert serving(store).not_valid_after_utc.timestamp() == pytest.approx(now + 397 * DAY, abs=2)


def test_a_certificate_the_ca_cannot_outlive_is_reported_not_churned() -> None:
    """A CA that ends inside the window: the serving certificate already ends with it, so renewing would
    gain nothing; every pass says so (log and Events) instead of reissuing."""
    store, _ = run(config(ca_validity_days=40))
    old = serving(store)
    now = int(old.not_valid_after_utc.timestamp()) - 10 * DAY
    store.writes.clear()
    _, problems = run(config(ca_validity_days=40), store, now=now)
    assert problems == [] and store.writes == []
    assert serving(store).serial_number == old.serial_number
    reasons = {(e[0], e[2]) for e in store.events}
    assert {
        (f"Secret {NAMESPACE}/{RELEASE}-ca", "CAExpiring"),
        (f"Secret {NAMESPACE}/{RELEASE}-tls", "CertificateExpiring"),
    } <= reasons, store.events


def test_a_name_outside_the_constraints_is_one_problem(capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = run(config())
    before = secret_pem(store, f"{RELEASE}-tls")
    other = "lab.example.test"
    cfg = config(domain=other, dns_names=[f"*.{other}", f"git.{other}"])
    _, problems = run(cfg, store)
    assert len(problems) == 1 and "name constraints" in problems[0] and "rotating the CA" in problems[0], (
        problems
    )
    assert secret_pem(store, f"{RELEASE}-tls") == before, "a certificate clients refuse was written"


# --- your own CA -----------------------------------------------------------------------------------


def user_ca(constrained: bool = False) -> tuple[x509.Certificate, Any]:
    """A CA as other tools make them (RSA, PKCS#1, no name constraints unless asked)."""
    return camod.new_ca("Lab CA", domain=DOMAIN, constrained=constrained)


def tls_secret(name: str, cert: x509.Certificate, key: Any, **labels: str) -> dict[str, Any]:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels, "uid": "u-1"},
        "data": {
            "tls.crt": base64.b64encode(pem(cert)).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
        },
    }


def existing(**over: Any) -> Any:
    return config(mode="existingSecret", ca_secret="my-ca", **over)


def test_your_ca_without_constraints_is_used_and_reported() -> None:
    cert, key = user_ca()
    mine = tls_secret("my-ca", cert, key)
    store, problems = run(existing(), certs.MemoryStore([mine]))
    assert problems == []
    assert store.get("Secret", NAMESPACE, "my-ca") == {**mine, "metadata": {**mine["metadata"]}}, (
        "your CA Secret was changed"
    )
    assert serving(store).issuer == cert.subject
    assert store.get("Secret", NAMESPACE, f"{RELEASE}-ca") is None, (
        "a CA was generated in existingSecret mode"
    )
    warned = [e for e in store.events if e[2] == "CANotNameConstrained"]
    assert warned and warned[0][0] == f"Secret {NAMESPACE}/my-ca" and warned[0][1] == "Warning", store.events
    assert (
        obj(store, "ConfigMap", f"{RELEASE}-ca")["metadata"]["annotations"]["homeci.dev/name-constraints"]
        == "none"
    )


def test_your_constrained_ca_raises_no_warning() -> None:
    cert, key = user_ca(constrained=True)
    store, problems = run(existing(), certs.MemoryStore([tls_secret("my-ca", cert, key)]))
    assert problems == [] and not store.events, store.events


def test_your_ca_may_stay_off_the_cluster() -> None:
    """createServingSecret=false and no Secret: ConfigMap <release>-ca from certificates.caCertificate."""
    cert, _ = user_ca()
    store, problems = run(existing(create_serving_secret=False, ca_certificate=pem(cert).decode()))
    assert problems == []
    assert obj(store, "ConfigMap", f"{RELEASE}-ca")["data"]["ca.crt"].encode() == pem(cert)
    assert [k for k in store.objects if k[0] == "Secret"] == []


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", ["global.tls.existingSecret", "does not exist", "homeci ca init"]),
        ("wrong-key", ["tls.key is not the key of the certificate"]),
        ("not-a-ca", ["is not a CA certificate"]),
        ("no-key", ["no readable tls.key"]),
    ],
)
def test_your_ca_problems_are_one_line_each(case: str, words: list[str]) -> None:
    cert, key = user_ca()
    objects = []
    if case == "wrong-key":
        objects = [tls_secret("my-ca", cert, user_ca()[1])]
    elif case == "not-a-ca":
        objects = [tls_secret("my-ca", leaf_signed_by(cert, key, ["x.test"]), key)]
    elif case == "no-key":
        secret = tls_secret("my-ca", cert, key)
        del secret["data"]["tls.key"]
        objects = [secret]
    store, problems = run(existing(), certs.MemoryStore(objects))
    assert len(problems) == 1 and all(w in problems[0] for w in words), problems
    assert "\n" not in problems[0]
    assert store.writes == [], f"wrote {store.writes} although the CA is unusable"


def test_your_serving_certificate_is_only_checked() -> None:
    store, _ = run(config())
    expiring = obj(store, "Secret", f"{RELEASE}-tls")
    now = int(serving(store).not_valid_after_utc.timestamp()) - 5 * DAY
    store.writes.clear()
    _, problems = run(config(create_serving_secret=False), store, now=now)
    assert problems == [] and store.writes == []
    assert obj(store, "Secret", f"{RELEASE}-tls") == expiring
    assert (f"Secret {NAMESPACE}/{RELEASE}-tls", "Warning", "CertificateExpiring") in [
        e[:3] for e in store.events
    ], store.events


# --- adopting what the previous release rendered ---------------------------------------------------


@pytest.fixture(scope="module")
def previous_objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Secret <release>-ca, Secret <release>-tls and ConfigMap <release>-ca as the upgrade baseline's chart
    rendered them (Sprig genCA/genSignedCert), with the ownership metadata `helm install` adds."""
    try:
        baseline = release.previous_release(ROOT)
        charts = release.export_charts(ROOT, baseline.commit, tmp_path_factory.mktemp("previous"))
    except Exception as exc:  # a shallow clone has no baseline commit
        pytest.skip(f"the previous release's charts are not in this checkout's history: {exc}")
    out = Helm(3).template(
        charts / "homeci-umbrella", release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    wanted = {("Secret", f"{RELEASE}-ca"), ("Secret", f"{RELEASE}-tls"), ("ConfigMap", f"{RELEASE}-ca")}
    objects = [m.obj for m in manifests.parse(out) if (m.kind, m.name) in wanted]
    if len(objects) != 3:
        pytest.skip("the previous release does not render the CA objects (nothing to adopt)")
    for o in objects:
        o["metadata"].setdefault("annotations", {}).update(
            {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE}
        )
        o["metadata"]["namespace"] = NAMESPACE
    return objects


def new_chart_config() -> Any:
    """The configuration the working tree's hook Job passes (its rendered environment)."""
    out = Helm(3).template(UMBRELLA, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION)
    job = manifests.get(manifests.parse(out), "Job", f"{RELEASE}-certs-hook")
    ((_path, c),) = list(job.containers())
    return certs.Config.from_env({e["name"]: str(e.get("value", "")) for e in c["env"]})


def test_the_previous_release_objects_are_adopted(previous_objects: list[dict[str, Any]]) -> None:
    store = certs.MemoryStore(previous_objects)
    before = {certs._key(o): o for o in json.loads(json.dumps(previous_objects))}
    _, problems = run(new_chart_config(), store)
    assert problems == []
    for key, old in before.items():
        now = store.objects[key]
        ref = "/".join(key)
        if key[0] == "Secret":
            assert now["data"] == old["data"], f"{ref}: data changed on adoption (the CA or key was replaced)"
        else:
            assert now["data"]["ca.crt"] == old["data"]["ca.crt"], f"{ref}: ca.crt changed"
            assert now["data"]["bundle.crt"].endswith(old["data"]["ca.crt"]), f"{ref}: bundle.crt"
        assert now["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", (
            f"{ref}: not kept, so the upgrade that stops rendering it would delete it"
        )
        assert now["metadata"]["labels"] == old["metadata"]["labels"], f"{ref}: Helm's labels were changed"
        assert now["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
    assert [e[2] for e in store.events] == ["CANotNameConstrained"], store.events
    store.writes.clear()
    _, problems = run(new_chart_config(), store)
    assert problems == [] and store.writes == [], f"the pass after adoption wrote {store.writes}"


# --- the program as a process ----------------------------------------------------------------------


def env_of(cfg: Any) -> dict[str, str]:
    return {
        "NAMESPACE": cfg.namespace,
        "RELEASE": cfg.release,
        "TLS_MODE": cfg.mode,
        "CA_SECRET": cfg.ca_secret,
        "CA_CONFIGMAP": cfg.ca_configmap,
        "TLS_SECRET": cfg.tls_secret,
        "CA_CONFIGMAP_NAMESPACES": ",".join(cfg.configmap_namespaces),
        "DOMAIN": cfg.domain,
        "DNS_NAMES": ",".join(cfg.dns_names),
        "IP_ADDRESSES": ",".join(cfg.ip_addresses),
        "CREATE_SERVING_SECRET": str(cfg.create_serving_secret).lower(),
        "CA_VALIDITY_DAYS": str(cfg.ca_validity_days),
        "SERVING_VALIDITY_DAYS": str(cfg.serving_validity_days),
        "RENEW_BEFORE_DAYS": str(cfg.renew_before_days),
        "PATH": os.environ.get("PATH", ""),
    }


def program(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_print_mode_lists_what_a_pass_writes_and_logs_nothing_secret() -> None:
    proc = program("--print", env=env_of(config()))
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)["items"]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in items) == [
        ("ConfigMap", f"{RELEASE}-ca"),
        ("Secret", f"{RELEASE}-ca"),
        ("Secret", f"{RELEASE}-tls"),
    ]
    keys = [base64.b64decode(o["data"]["tls.key"]).decode() for o in items if o["kind"] == "Secret"]
    body = [line for k in keys for line in k.splitlines() if "-----" not in line]
    assert "PRIVATE KEY" not in proc.stderr and not any(line in proc.stderr for line in body), (
        "key material in the log"
    )
    assert all(line.startswith("certs: ") for line in proc.stderr.splitlines()), proc.stderr


def test_bad_environment_fails_with_one_line_per_problem() -> None:
    env = env_of(config())
    env.pop("DOMAIN")
    env["CA_VALIDITY_DAYS"] = "ten"
    env["IP_ADDRESSES"] = "300.1.1.1"
    proc = program(env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "certs: error: environment DOMAIN is empty (the chart sets it: render the Job again)",
        "certs: error: environment CA_VALIDITY_DAYS='ten' is not a positive number of days",
        "certs: error: certificates.extraIpAddresses: '300.1.1.1' is not an IPv4 or IPv6 address",
    ], lines


def test_outside_a_pod_it_says_what_is_missing() -> None:
    proc = program(env={k: v for k, v in env_of(config()).items() if not k.startswith("KUBERNETES_")})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "certs: error: KUBERNETES_SERVICE_HOST is not set: run in a pod, or set it, KUBERNETES_SERVICE_PORT "
        "and SERVICEACCOUNT_DIR (token, ca.crt)"
    ]
