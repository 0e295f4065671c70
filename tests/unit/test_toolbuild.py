"""Toolchain builds in parallel units: grouping, estimates from earlier builds, one go command per unit.

The install test runs a stand-in ``go`` (a Python script on PATH) that records each invocation and writes
binaries that report the pinned version, so the real build path (locks, verification, build.json) runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from homeci import toolbuild, toolchain
from homeci.errors import HomeciError


def names(unit: toolbuild.Unit) -> list[str]:
    return sorted(t.name for t in unit.tools)


def test_one_go_command_per_module_and_flags() -> None:
    tools = [toolchain.tool(n) for n in toolchain.default_tools()]
    units = {tuple(names(u)) for u in toolbuild.units(tools)}
    kube = ("kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet")
    assert kube in units, units
    assert ("cni-bridge", "cni-host-local", "cni-loopback", "cni-portmap") in units, units
    assert ("containerd", "containerd-shim-runc-v2", "ctr") in units, units
    assert ("kwok", "kwokctl") in units, units
    for alone in ("helm3", "helm4", "etcd", "drone-server", "checkov", "pause", "homeci-runner-compile"):
        assert (alone,) in units, f"{alone} builds alone: {units}"
    assert sum(len(u) for u in units) == len(tools)


def test_makespan_runs_the_longest_first() -> None:
    assert toolbuild.makespan([5, 3, 3, 2], jobs=2) == 7
    assert toolbuild.makespan([5, 3, 3, 2], jobs=1) == 13
    assert toolbuild.makespan([], jobs=2) == 0


def test_estimate_is_the_newest_recorded_build_of_any_version(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOMECI_TOOLCHAIN", str(tmp_path))
    t = toolchain.tool("helm4")
    assert toolbuild.previous_seconds(t) is None
    for version, seconds, age in (("v4.0.0", 300, 100), ("v4.1.0", 120, 10)):
        record = tmp_path / "helm4" / version / "build.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"seconds": seconds}))
        stamp = time.time() - age
        os.utime(record, (stamp, stamp))
    assert toolbuild.previous_seconds(t) == 120
    unit = toolbuild.units([t])[0]
    assert unit.estimate == 120
    line = toolbuild.plan_line([unit], jobs=2)
    assert line.startswith("1 tool(s) to build in 1 go command(s), 2 at a time; about 2 min"), line


FAKE_GO = r'''#!{python}
"""Stand-in go: records its arguments, sleeps, writes scripts that print the pinned version."""
import json, os, pathlib, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "start": time.time()}}) + "\n")
time.sleep(float(os.environ.get("FAKE_GO_SLEEP", "0")))
if os.environ.get("FAKE_GO_FAIL") and any(os.environ["FAKE_GO_FAIL"] in a for a in args):
    print("compile error: boom", flush=True)
    sys.exit(2)
def write(path, version):
    path.write_text(f"#!/bin/sh\necho {{version}}\n")
    path.chmod(0o755)
if args[0] == "install":
    for spec in [a for a in args if "@" in a]:
        pkg, version = spec.split("@")
        write(pathlib.Path(os.environ["GOBIN"]) / pkg.rsplit("/", 1)[1], version)
elif args[0] == "build":
    out = args[args.index("-o") + 1]
    pkgs = args[args.index("-o") + 2:]
    version = os.environ["FAKE_GO_VERSION"]
    if out.endswith("/"):
        for pkg in pkgs:
            write(pathlib.Path(out) / pkg.rsplit("/", 1)[1], version)
    else:
        write(pathlib.Path(out), version)
'''


def fake_tool(name: str, package: str, version: str, **kw: str) -> toolchain.Tool:
    return toolchain.Tool(name=name, version=version, binary=package.rsplit("/", 1)[1],
                          build=kw.get("build", "go-install"), package=package, env=f"FAKE_{name.upper()}",
                          version_args=("--version",), expect=version, accept=".",
                          ldflags=kw.get("ldflags", ""), module=kw.get("module", ""))


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(0o755)
    log = tmp_path / "go.log"
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("FAKE_GO_SLEEP", "2")
    monkeypatch.setenv("HOMECI_TOOLCHAIN", str(tmp_path / "cache"))
    tools = {t.name: t for t in (
        fake_tool("alpha", "example.org/alpha/cmd/alpha", "v1.0.0"),
        fake_tool("beta", "example.org/alpha/cmd/beta", "v1.0.0"),       # same module and flags as alpha
        fake_tool("gamma", "example.org/gamma/cmd/gamma", "v2.0.0", ldflags="-s -w"),
        # a wrapper module's commands (any module folder of toolchain/gomod serves: the build is faked)
        fake_tool("delta", "example.org/big/cmd/delta", "v3.0.0", build="go-wrapper", module="etcd"),
        fake_tool("epsilon", "example.org/big/cmd/epsilon", "v3.0.0", build="go-wrapper", module="etcd"),
    )}
    monkeypatch.setattr(toolchain, "load_pins", lambda path=None: tools)
    return log


def invocations(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_install_builds_each_unit_once_two_at_a_time(fake_go: Path) -> None:
    lines: list[str] = []
    start = time.monotonic()
    paths = toolbuild.install(["alpha", "beta", "gamma"], jobs=2, say=lines.append)
    elapsed = time.monotonic() - start
    calls = invocations(fake_go)
    assert len(calls) == 2, calls   # alpha and beta share one go install
    packages = sorted(sorted(a for a in c["args"] if "@" in a) for c in calls)  # type: ignore[attr-defined]
    assert packages == [["example.org/alpha/cmd/alpha@v1.0.0", "example.org/alpha/cmd/beta@v1.0.0"],
                        ["example.org/gamma/cmd/gamma@v2.0.0"]], packages
    starts = sorted(float(c["start"]) for c in calls)  # type: ignore[arg-type]
    # each takes 2 s: one after the other, the second would start 2 s or more after the first
    assert starts[1] - starts[0] < 2, f"the go commands ran one after the other ({elapsed:.1f}s in all)"
    assert set(paths) == {"alpha", "beta", "gamma"} and all(p.is_file() for p in paths.values())
    info = json.loads((paths["alpha"].parent / "build.json").read_text())
    assert info["together"] == ["beta"] and info["seconds"] >= 1, info
    assert lines[0].startswith("3 tool(s) to build in 2 go command(s), 2 at a time"), lines
    assert sum("] building " in ln for ln in lines) == 2 and sum("] built " in ln for ln in lines) == 2, lines
    assert lines[-1].startswith("built 3 tool(s) in"), lines
    # cached now: nothing is built again, and the next plan estimates from the records
    again: list[str] = []
    toolbuild.install(["alpha", "beta", "gamma"], jobs=2, say=again.append)
    assert len(invocations(fake_go)) == 2 and again == []
    estimate = toolbuild.units([toolchain.tool("gamma")])[0].estimate
    assert estimate is not None and estimate >= 1


def test_a_failing_unit_fails_the_install_with_its_output(fake_go: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "gamma")
    with pytest.raises(HomeciError) as exc:
        toolbuild.install(["alpha", "gamma"], jobs=2)
    message = str(exc.value)
    assert "gamma v2.0.0" in message and "compile error: boom" in message and "\n" not in message, message


def test_wrapper_commands_build_with_one_go_build(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_SLEEP", "0")
    monkeypatch.setenv("FAKE_GO_VERSION", "v3.0.0")
    paths = toolbuild.install(["delta", "epsilon"])
    (call,) = invocations(fake_go)
    args = call["args"]
    assert isinstance(args, list) and args[:2] == ["build", "-mod=mod"], args
    out = args[args.index("-o") + 1]
    assert out.endswith("/"), args
    assert args[-2:] == ["example.org/big/cmd/delta", "example.org/big/cmd/epsilon"], args
    for name in ("delta", "epsilon"):
        assert paths[name] == toolchain.tool(name).cached_path and paths[name].is_file(), name


def test_then_builds_its_tool_first_and_adds_what_it_names(fake_go: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_SLEEP", "0")
    asked: list[bool] = []

    def more() -> list[str]:
        asked.append(toolchain.tool("gamma").is_current())
        return ["alpha", "beta"]   # alpha is planned already: only beta is new (a unit of its own)

    lines: list[str] = []
    paths = toolbuild.install(["alpha"], jobs=1, say=lines.append, then=("gamma", more))
    calls = invocations(fake_go)
    first = [a for a in calls[0]["args"] if "@" in a]  # type: ignore[union-attr]
    assert first == ["example.org/gamma/cmd/gamma@v2.0.0"], calls
    assert asked == [True], "more() is asked once its tool is built"
    assert set(paths) == {"alpha", "beta", "gamma"} and len(calls) == 3, calls
    assert any(ln.startswith("1 more tool(s) to build: beta") for ln in lines), lines


def test_up_builds_the_provider_tools_and_helm_not_the_test_tools() -> None:
    from homeci.cluster import make, prebuild

    sim = prebuild.needs(make("sim", "x", domain=None, nodes=None, offline=None), major=4)
    assert sim == ["kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                   "helm4"], sim
    node = prebuild.needs(make("netns", "x", domain=None, nodes=None, offline=None), major=3, stack=False)
    assert {"kubelet", "containerd", "runc", "pause", "coredns"} <= set(node) and "helm3" not in node, node
    for test_only in ("checkov", "cosign", "homeci-runner-compile", "kind", "kubeadm"):
        assert test_only not in sim + node, test_only
