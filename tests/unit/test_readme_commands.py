"""Every command of README.md's ```sh blocks is run by a test: RUN_BY maps each command, exactly as the README
writes it (continuations joined, comments dropped; homeci_testing.readme), to the pytest node id of the test
that runs it. A README command without an entry fails here, and so does an entry whose test does not exist
(read with ast, nothing is run) or whose command the README no longer has. Output shown for illustration is
fenced ```text, not ```sh."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from homeci_testing.readme import Command, readme_commands, sh_commands
from homeci_testing.support import ROOT

RUN_BY: dict[str, str] = {
    # `nox -s up` runs `homeci cluster up` (test_nox_sessions_run_what_the_readme_says), which makes the stack
    # with homeci.flow.setup.prepare; the session stack of tests/integration and tests/providers
    # (`real_stack` in tests/conftest.py) is made by that same function, and this test asserts it is up.
    "nox -s up": "tests/providers/test_provider.py::test_status_reports_the_ready_cluster",
    # CI (.ci/run) runs `nox -s test` itself; this test checks that it does and that the session exists.
    "nox -s test": "tests/unit/test_readme_commands.py::test_ci_runs_the_offline_tests",
    # `nox -s smoke` runs `homeci smoke` (test_nox_sessions_run_what_the_readme_says); the test runs
    # `homeci smoke --kubeconfig <the stack's> --connect 127.0.0.1:<its port>` on the session stack.
    "nox -s smoke -- --kubeconfig ~/.cache/homeci/local/homeci/kubeconfig.yaml --connect 127.0.0.1:8443":
        "tests/integration/test_readme.py::test_quick_start_smoke",
    # Rendered offline with exactly these values (the install itself: tests/sim, homeci.cluster.install).
    "helm install homeci charts/homeci-umbrella -n homeci --create-namespace "
    "--set global.domain=home.example":
        "tests/charts/test_readme_installs.py::test_umbrella_install_renders",
    "helm install homeci-pipelines charts/drone-pipelines -n homeci --set 'targets[0].namespace=apps' "
    "--set 'targets[0].owners[0]=homeci'":
        "tests/charts/test_readme_installs.py::test_pipelines_install_renders",
}

# What each `nox -s NAME` of the README runs (the session's session.run calls, first words).
NOX_RUNS = {"up": ("homeci", "cluster", "up"), "smoke": ("homeci", "smoke"), "test": ("pytest",)}


def test_every_readme_command_has_a_test() -> None:
    commands = readme_commands()
    assert commands, "README.md has no ```sh block: the parser or the README changed"
    missing = [f"README.md:{c.line}: {c.text}" for c in commands if c.text not in RUN_BY]
    assert not missing, ("README commands no test runs (add each to RUN_BY in tests/unit/"
                         "test_readme_commands.py with the test that runs it):\n" + "\n".join(missing))


def test_every_entry_is_still_a_readme_command() -> None:
    written = {c.text for c in readme_commands()}
    stale = [command for command in RUN_BY if command not in written]
    assert not stale, "RUN_BY entries README.md no longer has (remove or correct them):\n" + "\n".join(stale)


def defined_tests(module: Path) -> set[str]:
    """``name`` and ``Class::name`` of every test ``module`` defines (read with ast, not imported)."""
    tree = ast.parse(module.read_text(), filename=str(module))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {f"{node.name}::{f.name}" for f in node.body
                      if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return {name for name in found if name.rsplit("::", 1)[-1].startswith("test")}


@pytest.mark.parametrize("command", sorted(RUN_BY))
def test_every_entry_names_an_existing_test(command: str) -> None:
    node = RUN_BY[command]
    path, sep, name = node.partition("::")
    assert sep and name, f"RUN_BY[{command!r}]: {node!r} is not a pytest node id (path::test_name)"
    module = ROOT / path
    assert module.is_file(), f"RUN_BY[{command!r}]: {path} does not exist"
    assert name in defined_tests(module), f"RUN_BY[{command!r}]: {path} defines no test {name}"


def nox_sessions() -> dict[str, list[tuple[str, ...]]]:
    """noxfile.py's sessions -> the literal leading arguments of each ``session.run(...)`` call in them."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    sessions: dict[str, list[tuple[str, ...]]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if not any(d == "nox.session" or d.startswith("nox.session(") for d in decorators):
            continue
        runs: list[tuple[str, ...]] = []
        for call in ast.walk(node):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "run" and ast.unparse(call.func.value) == "session"):
                words: list[str] = []
                for arg in call.args:
                    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                        break
                    words.append(arg.value)
                runs.append(tuple(words))
        sessions[node.name] = runs
    return sessions


def test_nox_sessions_run_what_the_readme_says() -> None:
    sessions = nox_sessions()
    named = sorted({c.argv()[2] for c in readme_commands() if c.argv()[:2] == ["nox", "-s"]})
    assert named, "README.md names no `nox -s` session"
    for name in named:
        assert name in sessions, f"README.md runs `nox -s {name}`: noxfile.py has no session {name}"
        want = NOX_RUNS.get(name)
        if want:
            assert any(run[:len(want)] == want for run in sessions[name]), (
                f"noxfile.py session {name} runs {sessions[name]}, not {' '.join(want)}")


def test_ci_runs_the_offline_tests(pytestconfig: pytest.Config) -> None:
    """CI runs the README's `nox -s test` as written; the session runs the offline tiers in lanes
    (homeci_testing.lanes) that between them select every test but the integration tier, each once."""
    import itertools

    from _pytest.mark.expression import Expression

    from homeci_testing import lanes

    script = (ROOT / ".ci" / "run").read_text()
    lines = [line.strip() for line in script.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert "nox -s test" in lines, ".ci/run: no line runs `nox -s test`"
    runs = nox_sessions()["test"]
    assert ("python", "-m", "homeci_testing.lanes") in runs, (
        f"noxfile.py session test runs {runs}, not the lanes")
    exprs = {lane.name: Expression.compile(lane.args[lane.args.index("-m") + 1])
             for lane in lanes.default_lanes(Path("/nonexistent"))}
    offline = Expression.compile("not integration")
    markers = sorted(line.split(":")[0] for line in pytestconfig.getini("markers") if ":" in line)
    assert {"sim", "netns", "providers", "realprog", "integration"} <= set(markers), markers
    for n in range(len(markers) + 1):
        for on in itertools.combinations(markers, n):
            picked = [name for name, e in exprs.items() if e.evaluate(lambda m, on=on: m in on)]
            want = 1 if offline.evaluate(lambda m, on=on: m in on) else 0
            assert len(picked) == want, (
                f"a test marked {set(on) or 'with no tier'} runs in {picked or 'no lane'}; "
                f"`nox -s test` must run it {want} time(s)")


def test_the_parser_joins_continuations_and_drops_comments() -> None:
    text = ("intro\n\n```sh\nnox -s up      # the main job\n\n# a whole comment\nhelm install a b \\\n"
            "  --set 'x=#1' \\\n  --set y=2   # trailing\n```\n\n```text\nnot a command\n```\n"
            "```console\n$ not sh either\n```\n")
    assert sh_commands(text) == [Command("nox -s up", 4),
                                 Command("helm install a b --set 'x=#1' --set y=2", 7)]
