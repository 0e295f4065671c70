"""What every test module shares: paths, the release, the Kubernetes versions, cached renders, an in-process
CLI runner and the catalogue of charts x scenarios the aspect tests run over.

Loaded by ``tests/conftest.py``; test modules import names from here instead of defining their own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import click
from click.testing import CliRunner

from homeci import contract, paths, rendering, toolchain
from homeci import manifests as mf
from homeci.errors import HomeciError
from homeci.lint import kubeversions

# --- paths ---------------------------------------------------------------------------------------------

ROOT = paths.repo_root()
# One variable points every tier at another copy of charts/ (e.g. a snapshot while charts are being edited).
TEST_CHARTS_ENV = "HOMECI_TEST_CHARTS"
CHARTS = Path(os.environ[TEST_CHARTS_ENV]).resolve() if os.environ.get(TEST_CHARTS_ENV) else ROOT / "charts"
UMBRELLA = CHARTS / "homeci-umbrella"
SUBCHARTS = UMBRELLA / "charts"
PIPELINES = CHARTS / "drone-pipelines"
LIBRARY = CHARTS / "homeci-lib"
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_CHARTS = FIXTURES / "charts"

# --- release -------------------------------------------------------------------------------------------

RELEASE = rendering.DEFAULT_RELEASE  # helm install homeci charts/homeci-umbrella -n homeci
NAMESPACE = rendering.DEFAULT_NAMESPACE
PIPELINES_RELEASE = contract.PIPELINES_RELEASE  # drone-pipelines as the README installs it

# --- Kubernetes versions -------------------------------------------------------------------------------

# (oldest, newest) minor the umbrella's kubeVersion admits among the schemas homeci validates against —
# the same pair ``homeci lint`` uses. Renders pass the newest explicitly: a Helm built without its
# k8s-version ldflags would otherwise assume 1.20.
KUBE_VERSIONS: tuple[str, str] = kubeversions.validation_range(UMBRELLA)
KUBE_VERSION = KUBE_VERSIONS[-1]


# --- renders -------------------------------------------------------------------------------------------


def render(chart: Path, values: Sequence[Path] = (), sets: Sequence[str] = (), *, major: int = 3,
           release: str = RELEASE, namespace: str = NAMESPACE,
           kube_version: str | None = KUBE_VERSION) -> list[mf.Manifest]:
    """``helm template`` of ``chart`` parsed into objects; the text is cached per argument set for the life
    of the process (homeci.rendering's cache), the objects are fresh each call so callers may mutate them."""
    return rendering.render(chart, tuple(values), tuple(sets), major=major, release=release,
                            namespace=namespace, kube_version=kube_version)


def render_umbrella(values: Sequence[Path] = (), sets: Sequence[str] = (), *,
                    major: int = 3) -> list[mf.Manifest]:
    return render(UMBRELLA, values, sets, major=major)


def render_pipelines(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[mf.Manifest]:
    """drone-pipelines rendered as the README installs it (release homeci-pipelines in namespace homeci)."""
    return render(PIPELINES, values, sets, release=PIPELINES_RELEASE)


# --- the Python the charts ship ------------------------------------------------------------------------


def load_script(path: Path, name: str) -> ModuleType:
    """Import a chart's stdlib script (``files/*.py``, the very file its pod runs) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HomeciError(f"{path}: cannot import it as a Python module")
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve annotations through sys.modules: register before executing.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- binaries ------------------------------------------------------------------------------------------


def require_tool(name: str) -> Path:
    """The toolchain binary ``name``; skips the calling test with the install command when it is missing."""
    import pytest

    try:
        return toolchain.resolve(name)
    except HomeciError as exc:
        pytest.skip(f"{name} is not available ({exc}); install it with `homeci toolchain install {name}`")


# --- the CLI, in-process -------------------------------------------------------------------------------


class Result(NamedTuple):
    """What ``homeci`` did: unpacks as ``code, out, err = run_cli(...)``."""

    exit_code: int
    stdout: str
    stderr: str


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def _homeci(argv: tuple[str, ...]) -> None:
    """``homeci argv`` through its real entry point (one-line errors, exit codes) — see homeci.cli.main."""
    from homeci.cli import main

    main(list(argv))


def run_cli(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None,
            input: str | None = None, cwd: Path | None = ROOT) -> Result:
    """Run ``homeci *args`` in this process (click's CliRunner over ``homeci.cli.main``) from ``cwd`` (the
    checkout, as a user would): exit code, stdout and stderr apart. ``env`` is laid over the environment
    for the run only (a value of ``""`` sets the variable empty)."""
    runner = CliRunner()
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = runner.invoke(_homeci, [os.fspath(a) for a in args], env=dict(env or {}), input=input,
                               catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


# --- the catalogue: every chart x scenario -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One chart rendered with one scenario: ``chart`` is ``umbrella``, a subchart's name or
    ``drone-pipelines``; ``scenario`` is a ci/*-values.yaml name or ``alone`` (a subchart's defaults)."""

    chart: str
    directory: Path
    scenario: str
    values: tuple[Path, ...] = ()
    release: str = RELEASE
    namespace: str = NAMESPACE
    sets: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.chart}/{self.scenario}"

    @property
    def is_umbrella(self) -> bool:
        return self.chart == "umbrella"

    @property
    def is_subchart(self) -> bool:
        return self.directory.parent == SUBCHARTS

    def render(self, *, major: int = 3) -> list[mf.Manifest]:
        return render(self.directory, self.values, self.sets, major=major, release=self.release,
                      namespace=self.namespace)


def subcharts() -> list[Path]:
    """The umbrella's own subcharts (the library chart, carried as a link, is not one)."""
    return sorted(p.parent for p in SUBCHARTS.glob("*/Chart.yaml")
                  if not p.parent.is_symlink() and p.parent.name != LIBRARY.name)


def _catalogue() -> Iterator[Case]:
    for scenario in rendering.scenarios(UMBRELLA):
        yield Case("umbrella", UMBRELLA, rendering.scenario_name(scenario), (scenario,))
    for sub in subcharts():
        yield Case(sub.name, sub, "alone")
        for scenario in rendering.scenarios(sub):
            yield Case(sub.name, sub, rendering.scenario_name(scenario), (scenario,))
    for scenario in rendering.scenarios(PIPELINES):
        yield Case("drone-pipelines", PIPELINES, rendering.scenario_name(scenario), (scenario,),
                   release=PIPELINES_RELEASE)


CATALOGUE: tuple[Case, ...] = tuple(_catalogue())
