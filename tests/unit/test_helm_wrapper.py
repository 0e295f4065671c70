"""The helm wrapper: real renders under Helm 3 and 4, and one-line errors naming chart and values files."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeci import manifests
from homeci.errors import HomeciError
from homeci.helm import Helm, HelmError

GOOD = Path(__file__).resolve().parents[1] / "fixtures" / "charts" / "good"

FAKE = """#!/bin/sh
if [ "$1" = version ]; then echo v3.99.0; exit 0; fi
echo "walk.go:74: found symbolic link in path: /x/charts/homeci-lib resolves to /x/homeci-lib" >&2
echo "WARNING: Kubernetes configuration file is group-readable" >&2
echo "Error: template: good/templates/x.yaml:3:4: executing \\"x\\" at <.Values.nope>: nil pointer" >&2
exit 1
"""


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fake" / "helm"
    path.parent.mkdir()
    path.write_text(FAKE)
    path.chmod(0o755)
    monkeypatch.setenv("HOMECI_HELM3", str(path))
    return path


@pytest.mark.parametrize("major", [3, 4])
def test_real_helm_renders(major: int) -> None:
    out = Helm(major).template(GOOD, values_files=[GOOD / "ci" / "two-replicas-values.yaml"],
                               set_values={"port": "9000"}, kube_version="1.32.0")
    deploy = manifests.get(manifests.parse(out), "Deployment", "homeci-good")
    assert deploy.obj["spec"]["replicas"] == 2
    assert Helm(major).version().startswith(f"v{major}.")


def test_error_names_command_chart_values_and_helm_message(fake_helm: Path) -> None:
    values = GOOD / "ci" / "two-replicas-values.yaml"
    with pytest.raises(HelmError) as exc:
        Helm(3).template(GOOD, values_files=[values])
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"helm3 template failed (chart {GOOD}; values {values}): Error: template: ")
    assert "nil pointer" in msg
    assert "group-readable" in exc.value.stderr, "the rest of stderr is kept for callers"
    assert "found symbolic link" not in exc.value.stderr, "Helm's note about the homeci-lib link is dropped"


SCHEMA_REFUSAL = """#!/bin/sh
if [ "$1" = version ]; then echo v3.99.0; exit 0; fi
cat >&2 <<'EOF'
Error: values don't meet the specifications of the schema(s) in the following chart(s):
homeci-umbrella:
- at '/global/domain': 'BAD_DOMAIN' is not valid hostname
registry:
- at '': additional properties 'replicas' not allowed
EOF
exit 1
"""


def test_schema_refusal_keeps_every_chart_and_reason_in_one_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "helm"
    fake.write_text(SCHEMA_REFUSAL)
    fake.chmod(0o755)
    monkeypatch.setenv("HOMECI_HELM3", str(fake))
    with pytest.raises(HelmError) as exc:
        Helm(3).template(GOOD)
    assert str(exc.value) == (
        f"helm3 template failed (chart {GOOD}): Error: values don't meet the specifications of the schema(s) "
        "in the following chart(s): homeci-umbrella: - at '/global/domain': 'BAD_DOMAIN' is not valid "
        "hostname registry: - at '': additional properties 'replicas' not allowed")


def test_lint_findings_do_not_raise(fake_helm: Path) -> None:
    result = Helm(3).lint(GOOD)
    assert result.returncode == 1 and "Error: template" in result.stderr


def test_missing_values_file_is_caught_before_helm_runs(fake_helm: Path) -> None:
    with pytest.raises(HomeciError, match=r"^nope\.yaml: values file not found; check the path$"):
        Helm(3).template(GOOD, values_files=["nope.yaml"])


def test_unsupported_major() -> None:
    with pytest.raises(HomeciError, match=r"Helm 2 is not supported"):
        Helm(2)


def _recording_helm(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in helm that writes its argv, one per line, and succeeds."""
    log = tmp_path / "argv"
    path = tmp_path / "rec" / "helm"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    path.chmod(0o755)
    return path, log


@pytest.mark.parametrize(
    ("major", "call", "expected"),
    [
        (3, "install", ["install", "rel", str(GOOD), "--namespace", "ns", "--timeout", "7m",
                        "--create-namespace", "--wait", "--wait-for-jobs", "--set", "a=b"]),
        (4, "install", ["install", "rel", str(GOOD), "--namespace", "ns", "--timeout", "7m",
                        "--create-namespace", "--wait=watcher", "--wait-for-jobs", "--set", "a=b"]),
        (3, "upgrade", ["upgrade", "rel", str(GOOD), "--install", "--namespace", "ns", "--timeout", "7m",
                        "--create-namespace", "--wait", "--wait-for-jobs", "--set", "a=b"]),
    ],
)
def test_install_and_upgrade_command_lines(tmp_path: Path, major: int, call: str,
                                           expected: list[str]) -> None:
    binary, log = _recording_helm(tmp_path)
    helm = Helm(major, binary=binary)
    getattr(helm, call)("rel", GOOD, namespace="ns", timeout="7m", create_namespace=True,
                        set_values={"a": "b"})
    assert log.read_text().splitlines() == expected


def test_dry_run_never_waits(tmp_path: Path) -> None:
    binary, log = _recording_helm(tmp_path)
    Helm(4, binary=binary).upgrade("rel", GOOD, namespace="ns", dry_run="server")
    argv = log.read_text().splitlines()
    assert "--dry-run=server" in argv
    assert not [a for a in argv if a.startswith("--wait")], argv
