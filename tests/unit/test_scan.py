"""homeci.scan without checkov: how findings are attributed to objects and judged against the allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci import scan
from homeci.errors import HomeciError

NAMES = sorted(["homeci-drone", "homeci-drone-runner", "homeci-drone-bootstrap"], key=len, reverse=True)


@pytest.mark.parametrize(("resource", "obj"), [
    ("Deployment.homeci.homeci-drone", "Deployment/homeci-drone"),
    ("Deployment.homeci.homeci-drone-runner", "Deployment/homeci-drone-runner"),
    # a pod checkov derives from a template: <kind>.<ns>.<name>.<labels>, labels holding dots
    ("Pod.homeci.homeci-drone-runner.app.kubernetes.io/name-drone-runner-kube.helm.sh/chart-drone-0.1.0",
     "Pod/homeci-drone-runner"),
    ("Pod.homeci.homeci-drone.app.kubernetes.io/name-drone", "Pod/homeci-drone"),
    ("Namespace.default.unknown", "Namespace/unknown"),
])
def test_object_of(resource: str, obj: str) -> None:
    assert scan._object_of(resource, NAMES) == obj


def finding(check: str, obj: str, target: str = "homeci-umbrella/default") -> scan.Finding:
    return scan.Finding(check, "title", obj, target)


def test_unexplained_and_stale() -> None:
    allowed = (
        scan.Allowed("CKV_K8S_43", ("Deployment/homeci-*",), "digests are optional in this chart suite"),
        scan.Allowed("CKV_K8S_40", ("Deployment/homeci-gogs", "DaemonSet/gone"), "needs a passwd entry"),
    )
    report = scan.Report({
        "homeci-umbrella/default": scan.TargetResult("homeci-umbrella/default", 10, [
            finding("CKV_K8S_43", "Deployment/homeci-drone"),
            finding("CKV_K8S_40", "Deployment/homeci-gogs"),
            finding("CKV_K8S_40", "Deployment/homeci-drone"),  # same object, other check: not covered
            finding("CKV_K8S_43", "Job/homeci-drone-bootstrap"),  # same check, other kind: not covered
        ]),
    }, allowed)
    assert [(f.check, f.obj) for f in report.unexplained()] == [
        ("CKV_K8S_40", "Deployment/homeci-drone"), ("CKV_K8S_43", "Job/homeci-drone-bootstrap")]
    assert [(a.check, p) for a, p in report.stale()] == [("CKV_K8S_40", "DaemonSet/gone")]


def test_allow_list_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(HomeciError, match="missing"):
        scan.load_allowed(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("allowed:\n  - {check: CKV_K8S_1, objects: [Deployment/x]}\n")
    with pytest.raises(HomeciError, match="exactly the keys"):
        scan.load_allowed(bad)
    bad.write_text("- not a mapping\n")
    with pytest.raises(HomeciError, match="list `allowed:`"):
        scan.load_allowed(bad)


def test_interpreter_is_read_from_the_entry_point(tmp_path: Path) -> None:
    entry = tmp_path / "checkov"
    entry.write_text("#!/usr/bin/env python3\nprint('x')\n")
    with pytest.raises(HomeciError, match="entry point"):  # `env` is no Python of its own
        scan.interpreter(entry)
    python = tmp_path / "python"
    python.write_text("")
    entry.write_text(f"#!{python}\nimport checkov\n")
    assert scan.interpreter(entry) == python
