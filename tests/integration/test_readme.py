"""The README's quick start, as a reader runs it: the smoke command `nox -s up` prints (`nox -s smoke -- ...`,
which runs `homeci smoke ...`; tests/unit/test_readme_commands.py checks that), on the session's stack. The
arguments are the README's, with the kubeconfig and the port this stack printed in place of the README's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from homeci.flow import setup
from homeci_testing.readme import readme_commands

SMOKE_FLAGS = ("--kubeconfig", "--connect")


def smoke_argv(kubeconfig: Path, port: int) -> list[str]:
    """The README's `nox -s smoke -- ARGS` as `homeci smoke ARGS`, with this stack's kubeconfig and port."""
    found = [c for c in readme_commands() if c.argv()[:3] == ["nox", "-s", "smoke"]]
    assert len(found) == 1, f"README.md: want one `nox -s smoke` command, found {[c.text for c in found]}"
    argv = found[0].argv()
    assert argv[3:4] == ["--"], f"README.md:{found[0].line}: `{found[0].text}` passes no arguments after --"
    args = argv[4:]
    flags = args[0::2]
    assert tuple(flags) == SMOKE_FLAGS and len(args) == 2 * len(SMOKE_FLAGS), (
        f"README.md:{found[0].line}: smoke arguments {args}; this test substitutes {SMOKE_FLAGS} only")
    assert args[3].startswith("127.0.0.1:"), f"README.md:{found[0].line}: --connect {args[3]}"
    homeci = Path(sys.executable).with_name("homeci")
    assert homeci.is_file(), f"{homeci}: the homeci CLI is not installed beside this Python"
    return [str(homeci), "smoke", "--kubeconfig", str(kubeconfig), "--connect", f"127.0.0.1:{port}"]


def test_quick_start_smoke(prepared: setup.Prepared) -> None:
    port = prepared.cluster.https_port()
    assert port, f"{prepared.cluster.describe()}: no loopback HTTPS port for --connect"
    argv = smoke_argv(prepared.kubeconfig, port)
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=2400, env=env, check=False)
    tail = f"\n--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}{tail}"
    assert "push to deploy" in proc.stdout, f"homeci smoke printed no phase table{tail}"
    for phase in ("webhook", "test", "build", "deploy", "image", "first request", "total"):
        assert phase in proc.stdout, f"homeci smoke's phase table has no {phase!r} row{tail}"
