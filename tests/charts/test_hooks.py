"""Helm hooks that `helm test` and `helm install --wait` can live with."""

from __future__ import annotations

from homeci import manifests as mf


def test_every_test_hook_is_a_pod(umbrella_manifests: list[mf.Manifest]) -> None:
    """Helm 3's `helm test --logs` fetches the logs of every `helm.sh/hook: test` resource as a Pod and
    fails the whole test run on anything else ("unable to get pod logs for <release>-tests", seen on
    the local real node with the script's ConfigMap annotated as a test hook)."""
    bad = [f"{m.ref} ({m.source})" for m in umbrella_manifests
           if "test" in m.annotations.get("helm.sh/hook", "").split(",") and m.kind != "Pod"]
    assert not bad, f"test hooks that are not Pods: {bad}"
