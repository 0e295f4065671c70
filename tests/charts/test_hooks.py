"""Helm hooks that `helm test` and `helm install --wait` can live with."""

from __future__ import annotations

from pathlib import Path

from homeci import manifests as mf

from .conftest import RELEASE, is_hook, render_umbrella_upgrade

# Jobs that finish what the install's objects need (the CA in the build namespace, the registry's line at
# its bcrypt cost): objects of the install itself, started beside the pods, and hooks after an upgrade.
BESIDE_THE_INSTALL = {f"{RELEASE}-certs-publish": "post-upgrade,post-rollback",
                      f"{RELEASE}-registry-rehash": "post-upgrade"}


def test_every_test_hook_is_a_pod(umbrella_manifests: list[mf.Manifest]) -> None:
    """Helm 3's `helm test --logs` fetches the logs of every `helm.sh/hook: test` resource as a Pod and
    fails the whole test run on anything else ("unable to get pod logs for <release>-tests", seen on
    the local real node with the script's ConfigMap annotated as a test hook)."""
    bad = [f"{m.ref} ({m.source})" for m in umbrella_manifests
           if "test" in m.annotations.get("helm.sh/hook", "").split(",") and m.kind != "Pod"]
    assert not bad, f"test hooks that are not Pods: {bad}"


def test_the_install_runs_its_finishing_jobs_beside_the_pods(scenario: Path,
                                                              umbrella_manifests: list[mf.Manifest]) -> None:
    """Helm runs post-install hooks one at a time, each only once every pod is Ready: three hook Jobs held a
    first install ~11 s past its pods. On install, the CA's publication and the registry's rehash are Jobs
    of the release, run while the pods start; after an upgrade they are hooks again (before-hook-creation,
    deleted once they succeed). What they use (ServiceAccount, Role, RoleBinding, script) is the release's
    on both, so a same-values upgrade leaves it as it is. Drone's bootstrap, which needs Drone answering,
    stays a hook."""
    upgrade = render_umbrella_upgrade([scenario])
    for name, phases in BESIDE_THE_INSTALL.items():
        installed = [m for m in umbrella_manifests if m.name == name]
        upgraded = [m for m in upgrade if m.name == name]
        assert sorted(m.ref for m in upgraded) == sorted(m.ref for m in installed), (
            f"{name}: other objects on upgrade than on install")
        if not installed:
            continue
        hooks = [m.ref for m in installed if is_hook(m)]
        assert not hooks, f"{', '.join(hooks)}: post-install hooks (they would wait for every pod Ready)"
        for m in upgraded:
            if m.kind != "Job":
                assert not is_hook(m), f"{m.ref}: a hook after an upgrade (the release's object on install)"
                continue
            assert m.annotations.get("helm.sh/hook") == phases, f"{m.ref} helm.sh/hook on upgrade"
            assert m.annotations.get("helm.sh/hook-delete-policy") == "before-hook-creation,hook-succeeded", (
                f"{m.ref} helm.sh/hook-delete-policy on upgrade")
        assert any(m.kind == "Job" for m in installed), f"{name}: no Job on install"
