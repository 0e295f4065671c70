"""Bad drone-pipelines values fail the render with one sentence naming the key (schema or `fail`)."""

from __future__ import annotations

import pytest

from homeci.errors import HomeciError
from homeci.helm import Helm

from .conftest import KUBE_VERSION as KUBE
from .conftest import NAMESPACE
from .conftest import PIPELINES as CHART
from .conftest import PIPELINES_RELEASE as RELEASE

CREDS = ["registry.auth.username=u", "registry.auth.password=p"]

BAD = {
    "duplicate-target": (
        [
            "targets[0].namespace=apps",
            "targets[0].owners[0]=a",
            "targets[1].namespace=apps",
            "targets[1].owners[0]=b",
        ],
        "listed twice",
    ),
    "target-is-release-namespace": (
        ["targets[0].namespace=homeci", "targets[0].owners[0]=a"],
        "is the release namespace",
    ),
    "target-is-build-namespace": (
        ["targets[0].namespace=homeci-builds", "targets[0].owners[0]=a"],
        "is the build namespace",
    ),
    "target-without-owner": (["targets[0].namespace=apps"], "owners"),
    "latest-image": (["pipeline.images.kaniko.tag=latest"], "pipeline.images.kaniko.tag"),
    "untagged-image": (["pipeline.images.kubectl.tag="], "kubectl"),
    "image-as-string": (["pipeline.images.test=alpine:3.24.2"], "test"),
    "unknown-key": (["pipeline.imagez.test=x:1"], "imagez"),
    "cpu-with-unit": (["pipeline.resources.test.cpu=1000m"], "cpu"),
    "owners-alike-to-the-runner": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=Bob.Smith", "targets[1].namespace=web",
         "targets[1].owners[0]=bob-smith_", "targets[1].hosts[0]=web"],
        '"Bob.Smith" and "bob-smith_" both reach Drone\'s Kubernetes runner as "bob-smith"',
    ),
    "owners-share-a-deployer-name": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=team_web", "targets[0].owners[1]=team-web"],
        "would share the deployer ServiceAccount homeci-pipelines-deployer-team-web",
    ),
    "owner-longer-than-gogs-allows": (
        ["targets[0].namespace=apps", f"targets[0].owners[0]={'a' * 36}"], "owners",
    ),
    "host-of-the-stack": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[0].hosts[0]=registry"],
        'targets[0].hosts: "registry" is the stack\'s own registry host',
    ),
    "host-in-two-targets": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[0].hosts[0]=shop",
         "targets[1].namespace=web", "targets[1].owners[0]=b", "targets[1].hosts[0]=shop"],
        'targets[1].hosts: "shop" is already a host of targets[0]',
    ),
    "two-targets-without-hosts": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[1].namespace=web",
         "targets[1].owners[0]=b"],
        "targets[0] and targets[1] both leave hosts out",
    ),
    "host-not-a-label": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[0].hosts[0]=shop.example"], "hosts",
    ),
    "pod-security-without-reason": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[0].podSecurity=privileged"],
        'targets[0].podSecurity is "privileged": say why in targets[0].podSecurityReason',
    ),
    "pod-security-unknown-level": (
        ["targets[0].namespace=apps", "targets[0].owners[0]=a", "targets[0].podSecurity=none"], "podSecurity",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_values_fail_clearly(case: str) -> None:
    sets, needle = BAD[case]
    with pytest.raises(HomeciError) as err:
        Helm(3).template(
            CHART, release=RELEASE, namespace=NAMESPACE, set_values=[*CREDS, *sets], kube_version=KUBE
        )
    # Template `fail`s are on helm's Error: line; schema violations follow it (HelmError.stderr).
    text = f"{err.value} {getattr(err.value, 'stderr', '')}"
    assert needle in text, f"{case}: the error does not name {needle!r}: {text}"


def test_defaults_render_without_targets() -> None:
    """No targets: nothing to deploy to and no Job, but the chart installs (NOTES say what to add)."""
    out = Helm(3).template(CHART, release=RELEASE, namespace=NAMESPACE, kube_version=KUBE)
    assert "kind: Job" not in out and "kind: Role" not in out


def test_deployer_name_longer_than_63_characters_fails() -> None:
    with pytest.raises(HomeciError) as err:
        Helm(3).template(CHART, release="homeci-pipelines-of-the-garage-lab", namespace=NAMESPACE,
                         set_values=[*CREDS, "targets[0].namespace=apps",
                                     "targets[0].owners[0]=a-rather-long-organisation-name"],
                         kube_version=KUBE)
    assert ("gives the deployer ServiceAccount name homeci-pipelines-of-the-garage-lab-deployer-a-rather-"
            "long-organisation-name, longer than 63 characters: use a shorter release name") in str(err.value)
