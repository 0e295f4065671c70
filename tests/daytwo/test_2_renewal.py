"""Certificates renew themselves, on the real node (issue 21, item 4).

The serving certificate is replaced by one made to expire in 10 days (same CA, same names, the Secret's
annotations as the certificate program writes them), which is inside ``certificates.renewBeforeDays``
(30): Traefik serves it, ``homeci status`` warns and exits 1. Then the renewal CronJob is left to run by
itself (its schedule set to every minute for the test, set back afterwards; no ``helm upgrade``): it
reissues the certificate, says so in its log and in a Normal Event ``CertificateRenewed`` on the Secret,
Traefik serves the new certificate without restarting, and ``homeci status`` shows the new date and
exits 0. The status output before and after, the log line and the Event are printed (run with ``-s``).
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from homeci import ca, kubeaccess
from homeci.helm import Helm
from homeci_testing.clusters import certificate
from homeci_testing.daytwo import NAMESPACE, DayTwo, homeci_status, progress, wait_ready, workload_pods
from homeci_testing.support import RELEASE

SECRET, CRONJOB = f"{RELEASE}-tls", f"{RELEASE}-certs"
SOON_DAYS = 10


def served_serial(d2: DayTwo) -> int:
    """The serial number of the certificate Traefik presents for git.<domain>, verified against the CA."""
    peer = d2.stack.web.tls_peer(d2.stack.hosts["git"])  # type: ignore[attr-defined]
    return int(peer["serialNumber"], 16)


def plant_soon_expiring(api: Any) -> x509.Certificate:
    """Secret <release>-tls with a certificate of the same CA and names that expires in SOON_DAYS."""
    core = client.CoreV1Api(api)
    ca_secret = core.read_namespaced_secret(f"{RELEASE}-ca", NAMESPACE)
    ca_cert = x509.load_pem_x509_certificate(base64.b64decode(ca_secret.data["tls.crt"]))
    ca_key = serialization.load_pem_private_key(base64.b64decode(ca_secret.data["tls.key"]), None)
    current = certificate(api, NAMESPACE, SECRET)
    names = ca.sans(current)
    leaf, key = ca.issue(ca_cert, ca_key, names, days=SOON_DAYS)  # type: ignore[arg-type]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    not_after = leaf.not_valid_after_utc
    secret = core.read_namespaced_secret(SECRET, NAMESPACE)
    secret.data["tls.crt"] = base64.b64encode(ca.cert_pem(leaf)).decode()
    secret.data["tls.key"] = base64.b64encode(ca.key_pem(key)).decode()
    notes = secret.metadata.annotations
    notes["homeci.dev/not-after"] = not_after.strftime(stamp)
    notes["homeci.dev/renew-after"] = (not_after - dt.timedelta(days=30)).strftime(stamp)
    core.replace_namespaced_secret(SECRET, NAMESPACE, secret)
    return leaf


def wait_served(d2: DayTwo, serial: int, what: str, timeout: float = 240) -> float:
    started = time.monotonic()
    kubeaccess.wait_for(f"Traefik serving the {what} certificate",
                        lambda: None if served_serial(d2) == serial else "still the old one",
                        timeout=timeout, interval=2)
    return time.monotonic() - started


def run_cronjob_by_itself(api: Any, say: Any) -> tuple[str, float]:
    """Set CronJob <release>-certs to every minute, wait for the Job it starts to succeed, set the schedule
    back; (the Job's pod log, seconds from the change to the Job's success)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    schedule = batch.read_namespaced_cron_job(CRONJOB, NAMESPACE).spec.schedule
    before = {j.metadata.name for j in batch.list_namespaced_job(NAMESPACE).items}
    started = time.monotonic()
    batch.patch_namespaced_cron_job(CRONJOB, NAMESPACE, {"spec": {"schedule": "* * * * *"}})
    found: dict[str, Any] = {}
    try:
        def done() -> str | None:
            for job in batch.list_namespaced_job(NAMESPACE).items:
                owners = [o.name for o in job.metadata.owner_references or [] if o.kind == "CronJob"]
                if owners == [CRONJOB] and job.metadata.name not in before:
                    found["job"] = job
                    if job.status.succeeded:
                        return None
                    if job.status.failed:
                        raise AssertionError(f"Job {job.metadata.name} from CronJob {CRONJOB} failed")
                    return f"Job {job.metadata.name} running"
            return "no Job from the CronJob yet"

        kubeaccess.wait_for(f"CronJob {CRONJOB} to run", done, timeout=240, progress=say, interval=2)
    finally:
        batch.patch_namespaced_cron_job(CRONJOB, NAMESPACE, {"spec": {"schedule": schedule}})
    took = time.monotonic() - started
    name = found["job"].metadata.name
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name}").items
    log = core.read_namespaced_pod_log(pods[0].metadata.name, NAMESPACE) if pods else ""
    return log, took


def test_a_certificate_made_to_expire_soon_is_renewed_in_the_cluster(day_two: DayTwo) -> None:
    d2 = day_two
    api = d2.cluster.api()
    kubeconfig = d2.cluster.kubeconfig
    say = progress("renewal")
    revision = Helm(3, kubeconfig=d2.cluster.kubeconfig).status(RELEASE, namespace=NAMESPACE)["version"]
    wait_ready(api, timeout=300)  # the rows other than the certificate's are ok: its warning is the only one

    planted = plant_soon_expiring(api)
    seconds = wait_served(d2, planted.serial_number, "planted")
    say(f"Traefik serves the planted certificate (expires {planted.not_valid_after_utc:%Y-%m-%d}) after "
        f"{seconds:.0f}s")
    traefik = workload_pods(api)[f"Deployment/{RELEASE}-traefik"]
    code, before = homeci_status(kubeconfig)
    print(f"homeci status with the planted certificate (exit {code}):\n{before}", flush=True)
    assert code == 1, f"homeci status exits {code} with a certificate inside renewBeforeDays"
    assert "1 check(s) need attention" in before, f"only the certificate needs attention: {before}"
    assert f"({SOON_DAYS - 1} days)" in before or f"({SOON_DAYS} days)" in before, before
    assert "cronjob/homeci-certs" in before, f"the status row says how to renew now: {before}"

    log, took = run_cronjob_by_itself(api, say)
    print(f"the CronJob's Job ran in {took:.0f}s from the schedule change; its log:\n{log}", flush=True)
    renewed = certificate(api, NAMESPACE, SECRET)
    assert renewed.serial_number != planted.serial_number, f"Secret/{SECRET} was not reissued: {log}"
    days = (renewed.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    assert days > 300, f"the renewed certificate expires in {days} days"
    line = [ln for ln in log.splitlines() if f"Secret {NAMESPACE}/{SECRET}: issued" in ln]
    assert line and "within certificates.renewBeforeDays=30" in line[0], f"no renewal log line: {log}"
    events = [e for e in client.CoreV1Api(api).list_namespaced_event(NAMESPACE).items
              if e.involved_object.name == SECRET and e.reason == "CertificateRenewed"]
    assert events and events[-1].type == "Normal", f"no CertificateRenewed Event on Secret/{SECRET}"
    print(f"Event: {events[-1].type} {events[-1].reason} Secret/{SECRET}: {events[-1].message}", flush=True)

    seconds = wait_served(d2, renewed.serial_number, "renewed")
    say(f"Traefik serves the renewed certificate (expires {renewed.not_valid_after_utc:%Y-%m-%d}) "
        f"{seconds:.0f}s after the Job")
    now = workload_pods(api)[f"Deployment/{RELEASE}-traefik"]
    assert (now.uid, now.restarts) == (traefik.uid, traefik.restarts), (
        f"Traefik restarted to serve the renewed certificate: {traefik} -> {now}")
    code, after = homeci_status(kubeconfig)
    print(f"homeci status after the renewal (exit {code}):\n{after}", flush=True)
    assert code == 0, f"homeci status exits {code} after the renewal: {after}"
    assert f"({days} days)" in after or f"({days + 1} days)" in after, after
    now_revision = Helm(3, kubeconfig=d2.cluster.kubeconfig).status(RELEASE, namespace=NAMESPACE)["version"]
    assert now_revision == revision, "the renewal went through helm upgrade"
