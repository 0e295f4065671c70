"""``homeci render``: manifests on stdout, values files and --set applied, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from homeci import manifests

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "charts" / "good"


def homeci(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "homeci.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ), timeout=120)


def test_render_prints_parseable_manifests() -> None:
    proc = homeci("render", str(GOOD))
    assert proc.returncode == 0, proc.stderr
    objs = manifests.parse(proc.stdout)
    assert sorted(m.ref for m in objs) == ["Deployment/homeci-good", "Service/homeci-good"]
    assert manifests.get(objs, "Deployment", "homeci-good").source == "good/templates/deployment.yaml"


def test_values_files_set_release_namespace_and_kube_version() -> None:
    scenario = str(GOOD / "ci" / "two-replicas-values.yaml")
    proc = homeci("render", str(GOOD), "-f", scenario, "--set", "port=9090",
                  "--release", "demo", "-n", "apps", "--kube-version", "1.31.0", "--helm", "4")
    assert proc.returncode == 0, proc.stderr
    deploy = manifests.get(manifests.parse(proc.stdout), "Deployment", "demo-good")
    assert deploy.obj["spec"]["replicas"] == 2
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9090
    assert deploy.obj["spec"]["template"]["metadata"]["annotations"]["homeci.test/kube-version"] == "v1.31.0"


def test_missing_values_file_is_usage_error() -> None:
    proc = homeci("render", str(GOOD), "-f", "nope-values.yaml")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "homeci: error: -f nope-values.yaml: values file not found; check the path"


def test_bad_set_is_usage_error() -> None:
    proc = homeci("render", str(GOOD), "--set", "justakey")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "homeci: error: --set 'justakey': expected KEY=VALUE"


def test_values_breaking_schema_name_chart_and_values_file() -> None:
    bad = ROOT / "tests" / "fixtures" / "charts" / "bad-schema"
    proc = homeci("render", str(bad), "-f", str(bad / "ci" / "bad-values.yaml"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"chart {bad}" in lines[0] and "bad-values.yaml" in lines[0]
    assert "values don't meet the specifications of the schema" in lines[0]
