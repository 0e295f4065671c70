"""Prerequisites are checked before anything is built, one at a time: hide one from a host that has
everything, and ``homeci cluster up`` must refuse in one line naming it and the one command that installs
it — never a build that fails 25 minutes later (issue 22: runc and libseccomp)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from homeci.cluster import prereqs
from homeci.errors import HomeciError


@dataclass
class FakeHost(prereqs.Host):
    """A host that has everything, minus what a test hides; nothing is built yet (every tool missing)."""

    hidden: set[str] = field(default_factory=set)
    docker: bool = False
    built: bool = False

    def platform(self) -> str:
        return "darwin" if "linux" in self.hidden else "linux"

    def is_root(self) -> bool:
        return "root" not in self.hidden

    def which(self, program: str) -> bool:
        return f"program {program}" not in self.hidden

    def package_installed(self, package: str) -> bool:
        return f"package {package}" not in self.hidden

    def network_namespaces(self) -> bool:
        return "netns" not in self.hidden

    def cgroups_mounted(self) -> bool:
        return "cgroups" not in self.hidden

    def go_version(self) -> tuple[int, int] | None:
        if "go" in self.hidden:
            return None
        return (1, 21) if "old go" in self.hidden else (1, 26)

    def free_bytes(self, path: Path) -> int:
        return 1 * prereqs.GIB if "disk" in self.hidden else 100 * prereqs.GIB

    def loopback_port(self) -> bool:
        return "port" not in self.hidden

    def tool_missing(self, name: str) -> bool:
        return not self.built

    def docker_answers(self) -> bool:
        return self.docker


def _scenarios() -> list[tuple[str, bool, str, str, str]]:
    """(provider, the machine's Docker answers, hidden, text the message names, package to install)."""
    out: list[tuple[str, bool, str, str, str]] = []
    for provider in ("netns", "kind"):
        need = prereqs.needs(provider, FakeHost())
        out += [(provider, False, "root", "root", ""), (provider, False, "netns", "network namespaces", ""),
                (provider, False, "cgroups", "cgroups", ""), (provider, False, "linux", "needs Linux", "")]
        for program in dict.fromkeys((*need.programs, *need.build_programs)):
            out.append((provider, False, f"program {program}", program, prereqs.PROGRAMS[program]))
        out += [(provider, False, "package libseccomp-dev", "libseccomp-dev", "libseccomp-dev"),
                (provider, False, "go", "Go >= 1.26", ""), (provider, False, "old go", "go1.21", ""),
                (provider, False, "disk", "GiB free", ""), (provider, False, "port", "free TCP port", "")]
    out += [("kind", True, "program git", "git", "git"), ("kind", True, "go", "Go >= 1.26", ""),
            ("sim", False, "go", "Go >= 1.26", ""), ("sim", False, "disk", "GiB free", "")]
    return out


@pytest.mark.parametrize(("provider", "docker", "hidden", "named", "package"), _scenarios(),
                         ids=lambda v: str(v).replace(" ", "-"))
def test_each_missing_prerequisite_is_named_with_its_fix(provider: str, docker: bool, hidden: str, named: str,
                                                         package: str) -> None:
    host = FakeHost({hidden}, docker=docker)
    missing = prereqs.check(provider, host=host, caches=[Path("/cache")])
    assert missing, f"{provider}: hiding {hidden!r} went unnoticed"
    message = prereqs.explain(provider, missing)
    assert named in message, f"{provider} without {hidden}: {message}"
    assert "\n" not in message
    if package:
        assert prereqs.install_command(missing) == f"apt-get install -y {package}", message
        assert message.endswith(f"install the packages with: apt-get install -y {package}"), message
    with pytest.raises(HomeciError, match="cannot start here"):
        prereqs.require(provider, host=host)


@pytest.mark.parametrize("provider", ["sim", "netns", "kind"])
def test_a_host_with_everything_passes(provider: str) -> None:
    assert prereqs.check(provider, host=FakeHost(), caches=[Path("/cache")]) == []


def test_nothing_to_build_needs_no_build_tools() -> None:
    """Everything cached: Go, gcc, libseccomp-dev and debootstrap are not asked for."""
    host = FakeHost({"go", "program gcc", "program debootstrap", "package libseccomp-dev"}, built=True)
    assert prereqs.check("netns", host=host, caches=[Path("/cache")]) == []


def test_every_missing_package_in_one_command() -> None:
    host = FakeHost({"program iptables", "program debootstrap", "package libseccomp-dev", "root"})
    missing = prereqs.check("netns", host=host, caches=[Path("/cache")])
    assert prereqs.install_command(missing) == "apt-get install -y debootstrap iptables libseccomp-dev"
    assert any(m.what.startswith("root") for m in missing)


def test_up_checks_before_it_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """ClusterBase.up refuses at the check: no build, no state."""
    from homeci.cluster.netns import NetnsCluster

    monkeypatch.setattr(prereqs, "Host", lambda: FakeHost({"package libseccomp-dev"}))

    def must_not_build(self: object, **_: object) -> None:
        raise AssertionError("up built something before checking the prerequisites")

    monkeypatch.setattr(NetnsCluster, "_prepare", must_not_build)
    cluster = NetnsCluster("pre-unit")
    with pytest.raises(HomeciError, match="apt-get install -y libseccomp-dev"):
        cluster.up(build=True)
    assert not cluster.dir.exists()


@pytest.mark.parametrize("stack", ["--stack", "--no-stack"])
@pytest.mark.parametrize("provider", ["netns", "kind"])
def test_the_command_checks_before_the_parallel_build(provider: str, stack: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`homeci cluster up` (what `nox -s up` runs) builds the missing tools in parallel before the cluster
    starts: the check must come before that build too (a fresh machine without libseccomp-dev once built
    Kubernetes for ten minutes and would have failed at runc)."""
    from homeci import toolbuild
    from homeci_testing.support import run_cli

    monkeypatch.setattr(prereqs, "Host", lambda: FakeHost({"package libseccomp-dev", "program iptables"}))

    def must_not_build(*_: object, **__: object) -> None:
        raise AssertionError("homeci cluster up built something before checking the prerequisites")

    monkeypatch.setattr(toolbuild, "install", must_not_build)
    result = run_cli("cluster", "up", "--provider", provider, "--name", "pre-cli", stack,
                     env={"HOMECI_CACHE": str(tmp_path)})
    assert result.exit_code == 1, result
    assert "apt-get install -y" in result.stderr and "libseccomp-dev" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.rglob("pre-cli")), f"state left in {tmp_path}: {list(tmp_path.rglob('*'))}"


def test_nox_up_checks_before_it_makes_its_virtualenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """`nox -s up` asks first, with nox's own Python: a fresh machine is told what to install in a second,
    not after pip has filled the session's virtualenv."""
    import noxfile

    monkeypatch.setattr(prereqs, "Host", lambda: FakeHost({"package libseccomp-dev"}))

    class Session:
        posargs = ("--provider", "netns", "--no-stack")

        def error(self, message: str) -> None:
            raise SystemExit(message)

    with pytest.raises(SystemExit, match=r"install the packages with: apt-get install -y libseccomp-dev$"):
        noxfile._check_first(Session())  # type: ignore[arg-type]
    monkeypatch.setattr(prereqs, "Host", lambda: FakeHost())
    noxfile._check_first(Session())  # type: ignore[arg-type]  # nothing missing: no error


def test_the_check_needs_only_the_standard_library() -> None:
    """What `nox -s up` imports before its virtualenv exists: run with site-packages off (`python -S`)."""
    import subprocess
    import sys

    from homeci_testing.support import ROOT

    code = ("import sys; sys.path.insert(0, 'tools'); from homeci.cluster import choose, prereqs; "
            "[prereqs.needs(p) for p in ('sim', 'netns', 'kind')]; print(choose('sim')[0])")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "sim", proc.stderr[-800:]
