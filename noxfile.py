"""Maintainer sessions: `nox -s test` (everything offline), `nox -s lint`, `nox -s up`, ...

Sessions share one virtualenv per session name (reuse_venv) so a warm run only re-checks deps.
External binaries come from `homeci toolchain install` (cached in ~/.cache/homeci/toolchain).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "test"]


def _install(session: nox.Session, extras: str = "dev") -> None:
    """The project, editable, with ``extras`` into the session's virtualenv; skipped when the virtualenv
    already holds it from the same pyproject.toml (being editable, code changes need no reinstall), which
    saves pip's few seconds of dependency checks on every warm `nox -s up`."""
    spec = f".[{extras}]" if extras else "."
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location) / ".homeci-installed" if location else None
    digest = hashlib.sha256(Path("pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    if stamp is not None and stamp.is_file() and stamp.read_text() == digest:
        session.log(f"{spec} is installed from this pyproject.toml")
        return
    session.install("-e", spec)
    if stamp is not None:
        stamp.write_text(digest)


def _check_first(session: nox.Session) -> None:
    """The chosen provider's prerequisites, checked with nox's own Python before the virtualenv is made (the
    check needs only the standard library): a fresh machine learns in a second which packages to install,
    not after pip. `homeci cluster up` checks the same again, and alone where this cannot run."""
    import sys

    args = list(session.posargs)
    if "--no-build" in args or "--help" in args:
        return
    provider = "auto"
    for i, arg in enumerate(args):
        if arg == "--provider" and i + 1 < len(args):
            provider = args[i + 1]
        elif arg.startswith("--provider="):
            provider = arg.split("=", 1)[1]
    sys.path.insert(0, str(Path("tools").resolve()))
    try:
        from homeci.cluster import choose, prereqs
        from homeci.errors import HomeciError

        chosen, _ = choose(provider)
        missing = prereqs.check(chosen)
    except (ImportError, HomeciError):  # an unknown provider: homeci's own usage error says so
        return
    finally:
        sys.path.pop(0)
    if missing:
        session.error(prereqs.explain(chosen, missing))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, `homeci docs --check` and `homeci lint` over every chart and scenario."""
    _install(session)
    session.run("ruff", "check", "tools", "tests", "noxfile.py", "benchmarks", "charts")
    session.run("mypy")
    # the generated values.schema.json parts (shared fragments, descriptions) and VALUES.md are current
    session.run("homeci", "docs", "--check")
    session.run("homeci", "toolchain", "install")
    session.run("homeci", "lint", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """The one offline test command: unit, chart (T0), simulated-cluster (T1), real-program (T2) and real-node
    tests, and the provider contract on the simulated cluster."""
    _install(session)
    session.run("homeci", "toolchain", "install")
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    # Three pytest processes side by side (homeci_testing.lanes): the cluster tiers mostly wait on their
    # clusters while the static and real-program tiers keep a core busy. Equivalent to
    # `pytest -q -m "not integration" --provider sim`, which posargs can still ask for.
    session.run("python", "-m", "homeci_testing.lanes")


@nox.session
def fuzz(session: nox.Session) -> None:
    """Property-based chart tests with many fresh examples (nox -s test runs 25 reproducible ones).

    Values generated from every values.schema.json (valid, and broken at one place) must render
    manifests that pass strict validation or be refused cleanly; quantities are checked against
    Kubernetes' own parser. `-- <n>` sets the examples per test (default 300); failures are kept in
    .hypothesis/ and replayed first on the next run."""
    _install(session)
    session.run("homeci", "toolchain", "install", "helm3", "helm4")
    examples = session.posargs[0] if session.posargs else "300"
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/charts/test_properties.py",
                "tests/charts/test_values_quantity.py", env={"HOMECI_FUZZ": examples})


@nox.session
def toolchain(session: nox.Session) -> None:
    """Build/install the pinned binaries (helm 3 and 4, kwok, control plane, etcd) into the cache."""
    _install(session)
    session.run("homeci", "toolchain", "install", *session.posargs)


@nox.session
def package(session: nox.Session) -> None:
    """Package the publishable charts into dist/ (pass --repo-url/--oci through posargs)."""
    _install(session)
    session.run("homeci", "toolchain", "install", "helm3")
    session.run("homeci", "package", *session.posargs)


@nox.session
def release(session: nox.Session) -> None:
    """Prepare a release (CONTRIBUTING.md, "Releasing"): the version from CHANGELOG.md by the one rule,
    refused unless `homeci lint` passes; writes versions, Artifact Hub metadata and the changelog heading.
    posargs go to `homeci release` (e.g. `-- --dry-run` or `-- --sign-key KEY --key-url URL`)."""
    _install(session)
    session.run("homeci", "toolchain", "install", "helm3", "helm4")
    session.run("homeci", "release", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """T3: push → Drone build in pods → image in the registry → rollout → HTTPS answer, for real, then the
    provider contract (tests/providers) on the same cluster.

    `-- --provider kind|netns|auto` picks the cluster (default auto: kind where a Docker engine answers,
    else the real node in a network namespace on Linux as root; `local` = netns); with neither it fails
    in CI and skips elsewhere, saying why. The cluster builds what it lacks (prerequisites are checked
    first). Other posargs go to pytest. Prints the phase table of each push. The day-two tier is
    ``nox -s daytwo`` (it needs nodes of its own)."""
    _install(session)
    # tests/providers first: it re-installs the stack and expects no pod template to change, which holds
    # before the person tier's admin adds an app namespace (a Traefik rollout, as for any operator).
    # down (tests/providers/test_zz_down.py) last of all: every tier shares the one cluster.
    session.run("pytest", "-q", "-s", "-m", "integration or providers",
                "tests/providers/test_provider.py", "tests/integration", "tests/providers/test_zz_down.py",
                "--provider", "auto", *session.posargs)


@nox.session
def daytwo(session: nox.Session) -> None:
    """The day-two tier (tests/daytwo) on real nodes of its own, one at a time (about 11 minutes warm).

    Upgrade from the previous release while a prober requests the app, downgrades, certificate renewal by
    the CronJob, containerd and kubelet crashes during a build, a reboot, backup, and restore onto a new
    node. Not part of ``nox -s integration``: that tier shares one stack per run, and this one starts from
    the previous release and destroys its first node. Run it before a release."""
    _install(session)
    session.run("pytest", "-q", "-s", "-m", "daytwo", "tests/daytwo", "--provider", "netns", *session.posargs)


@nox.session
def up(session: nox.Session) -> None:
    """A working homeci stack on this machine: kind with Docker, else the real node, else simulated.

    `homeci cluster up` picks the provider (kind where a Docker engine answers; the real node in a network
    namespace on a Linux host as root, its images built from source; otherwise the simulated cluster,
    which runs no container), checks the provider's prerequisites, builds only what it needs, installs
    the umbrella and drone-pipelines, and prints the URLs, the admin, the CA and the command that proves
    the loop. posargs go to `homeci cluster up` (e.g. `-- --provider kind`, `-- --helm 4` or
    `-- -f my-values.yaml`)."""
    _check_first(session)
    _install(session)
    session.run("homeci", "cluster", "up", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """`homeci smoke`: push the sample app through a running stack and print every phase (after `nox -s up`;
    posargs go to it, e.g. `-- --kubeconfig ... --connect 127.0.0.1:8443`, as `nox -s up` prints)."""
    _install(session)
    session.run("homeci", "smoke", *session.posargs)


@nox.session
def down(session: nox.Session) -> None:
    """Stop and delete the stack's cluster (`nox -s up`), whichever provider made it: no process, port or
    state is left (the real node's image store is kept for the next `up`, docs/clusters.md). posargs go to
    `homeci cluster down` (e.g. `-- --provider kind --name x`, `-- --no-keep-images`)."""
    _install(session)
    session.run("homeci", "cluster", "down", *session.posargs)


@nox.session
def tour(session: nox.Session) -> None:
    """Regenerate the README's tour (docs/tour/*.png): the person tier — a real Chromium trusting the CA,
    the admin and a team member going through Gogs, Drone and their app — on a fresh local stack."""
    _install(session)
    session.run("homeci", "toolchain", "install")
    session.run("pytest", "-q", "-s", "-m", "integration", "tests/integration/test_person.py",
                env={"HOMECI_TOUR": str(Path(__file__).parent / "docs" / "tour")})
