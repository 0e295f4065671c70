"""`homeci status` evaluation: which facts need attention and what the row tells the operator to do.
The facts are plain data here; tests/daytwo reads them from a real node."""

from __future__ import annotations

import datetime as dt

import pytest

from homeci import status
from homeci.status import FAIL, OK, WARN, Certificate, Volume, Workload

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _w(component: str, desired: int = 1, ready: int = 1, updated: int = 1) -> Workload:
    return Workload("Deployment", f"homeci-{component}", "homeci", component, "1.0", desired, ready, updated)


@pytest.mark.parametrize(("workload", "state", "advice"), [
    (_w("git"), OK, ""),
    (_w("git", ready=0), FAIL, "kubectl -n homeci describe deployment homeci-git"),
    (_w("git", desired=0, ready=0, updated=0), WARN, "--replicas=1"),
    (_w("git", updated=0), WARN, "rollout is in progress"),
], ids=["ready", "not ready", "scaled to zero", "rolling"])
def test_component_rows(workload: Workload, state: str, advice: str) -> None:
    [row] = status.component_checks([workload], ["git"])
    assert (row.state, row.name) == (state, "git"), row
    assert advice in row.advice, f"{row.name}: advice {row.advice!r}"


def test_a_missing_component_is_a_failure() -> None:
    rows = status.component_checks([_w("git")], ["git", "registry"])
    missing = [r for r in rows if r.name == "registry"]
    assert missing and missing[0].state == FAIL and "enabled" in missing[0].advice


def _cert(name: str, days: float, annotation_days: float | None = None) -> Certificate:
    not_after = NOW + dt.timedelta(days=days)
    ann = (NOW + dt.timedelta(days=annotation_days if annotation_days is not None else days))
    return Certificate(name, f"homeci-{name}", ann.strftime("%Y-%m-%dT%H:%M:%SZ"), not_after, "CN=x")


@pytest.mark.parametrize(("cert", "state", "advice"), [
    (_cert("serving", 200), OK, ""),
    (_cert("serving", 20), WARN, "create job --from=cronjob/homeci-certs homeci-certs-now"),
    (_cert("serving", -1), FAIL, "expired"),
    (_cert("CA", 3000), OK, ""),
    (_cert("CA", 60), WARN, "homeci ca init"),
    (_cert("serving", 200, annotation_days=400), WARN, "edited by hand"),
    (Certificate("serving", "homeci-tls", None, None), FAIL, "get secret homeci-tls"),
], ids=["serving fine", "serving in renewal window", "serving expired", "CA fine", "CA near expiry",
        "annotation disagrees", "unreadable"])
def test_certificate_rows(cert: Certificate, state: str, advice: str) -> None:
    [row] = status.certificate_checks([cert], NOW, 30, "homeci", "homeci")
    assert row.state == state, f"{cert.name}: {row}"
    assert advice in row.advice, f"{cert.name}: advice {row.advice!r}"


def test_a_serving_certificate_issued_elsewhere_is_renewed_there() -> None:
    [row] = status.certificate_checks([_cert("serving", 20)], NOW, 30, "homeci", "homeci",
                                      renewed_by_chart=False)
    assert row.state == WARN and "createServingSecret is false" in row.advice, row


@pytest.mark.parametrize(("used", "state"), [(None, OK), (1 << 30, OK), (int(8.5 * (1 << 30)), WARN),
                                             (int(9.8 * (1 << 30)), FAIL)])
def test_volume_rows(used: int | None, state: str) -> None:
    [row] = status.volume_checks([Volume("homeci-registry", 10 << 30, used)], "homeci")
    assert row.state == state, row
    if state != OK:
        assert "edit pvc homeci-registry" in row.advice and "registry.gc" in row.advice


@pytest.mark.parametrize(("q", "n"), [("10Gi", 10 << 30), ("512Mi", 512 << 20), ("1G", 10**9), ("100", 100)])
def test_quantities(q: str, n: int) -> None:
    assert status.quantity_bytes(q) == n


def test_build_rows_only_for_active_repositories() -> None:
    repos = [
        {"slug": "a/ok", "active": True, "build": {"number": 3, "status": "success", "after": "abc",
                                                   "target": "main", "finished": 1_790_000_000}},
        {"slug": "a/red", "active": True, "build": {"number": 7, "status": "failure", "after": "def",
                                                    "target": "main", "finished": 1_790_000_000}},
        {"slug": "a/new", "active": True},
        {"slug": "a/off", "active": False, "build": {"number": 1, "status": "failure"}},
    ]
    rows = {r.name: r for r in status.build_checks(repos, "https://ci.example")}
    assert sorted(rows) == ["a/new", "a/ok", "a/red"]
    assert rows["a/ok"].state == OK and rows["a/new"].state == OK
    assert rows["a/red"].state == WARN and "https://ci.example/a/red/7" in rows["a/red"].advice
    assert status.needs_attention(list(rows.values()))
    assert not status.needs_attention([rows["a/ok"]])


def test_a_volume_on_a_shared_disk_is_judged_by_the_disk() -> None:
    """local-path and hostPath volumes are folders: the kubelet reports the disk, not the claim."""
    [row] = status.volume_checks([Volume("homeci-gogs-data", 5 << 30, 90 << 30, 100 << 30)], "homeci")
    assert row.state == WARN and "shared disk" in row.detail and "not enforced" in row.detail, row
    [row] = status.volume_checks([Volume("homeci-gogs-data", 100 << 30, 40 << 30, 100 << 30)], "homeci")
    assert row.state == OK and "shared" not in row.detail, row
