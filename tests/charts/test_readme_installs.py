"""The README's `helm install` commands, taken from README.md as written (release, chart, namespace, every
``--set``), render with the project's Helm wrapper, and their values take effect: the umbrella serves its
hosts under ``global.domain``, drone-pipelines deploys into the target namespace for its owner. ``helm
install``'s install-only flags (``--create-namespace``) have no ``helm template`` counterpart: dropped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from homeci import manifests as mf
from homeci_testing.readme import Command, readme_commands
from homeci_testing.support import KUBE_VERSION, ROOT, render, require_tool

INSTALL_ONLY_FLAGS = {"--create-namespace", "--wait", "--atomic"}


@dataclass(frozen=True)
class Install:
    command: Command
    release: str
    chart: Path
    namespace: str
    sets: tuple[str, ...]

    def render(self) -> list[mf.Manifest]:
        require_tool("helm3")
        return render(self.chart, (), self.sets, release=self.release, namespace=self.namespace,
                      kube_version=KUBE_VERSION)


def parse_install(command: Command) -> Install:
    """``helm install RELEASE CHART [-n NS] [--set k=v]...``; any other flag fails, naming it."""
    argv = command.argv()
    assert argv[:2] == ["helm", "install"], f"README.md:{command.line}: not a helm install: {command.text}"
    positional: list[str] = []
    namespace = "default"
    sets: list[str] = []
    rest = argv[2:]
    while rest:
        arg = rest.pop(0)
        if arg in ("-n", "--namespace"):
            namespace = rest.pop(0)
        elif arg.startswith("--namespace="):
            namespace = arg.partition("=")[2]
        elif arg == "--set":
            sets.append(rest.pop(0))
        elif arg.startswith("--set="):
            sets.append(arg.partition("=")[2])
        elif arg in INSTALL_ONLY_FLAGS:
            continue
        elif arg.startswith("-"):
            pytest.fail(f"README.md:{command.line}: flag {arg} of `{command.text}` is not known to this "
                        "test: teach parse_install what it means for a render")
        else:
            positional.append(arg)
    assert len(positional) == 2, f"README.md:{command.line}: want RELEASE CHART, got {positional}"
    chart = ROOT / positional[1]
    assert (chart / "Chart.yaml").is_file(), f"README.md:{command.line}: {positional[1]} is not a chart"
    return Install(command, positional[0], chart, namespace, tuple(sets))


def readme_install(chart: str) -> Install:
    found = [parse_install(c) for c in readme_commands() if c.text.startswith("helm install ")
             and len(c.argv()) > 3 and c.argv()[3] == chart]
    assert len(found) == 1, f"README.md: want one `helm install ... {chart}` command, found {len(found)}"
    return found[0]


def test_umbrella_install_renders() -> None:
    install = readme_install("charts/homeci-umbrella")
    assert (install.release, install.namespace) == ("homeci", "homeci"), install
    domain = dict(s.split("=", 1) for s in install.sets).get("global.domain")
    assert domain, f"README.md:{install.command.line}: the umbrella install sets no global.domain"
    objects = install.render()
    ingresses = [o for o in objects if o.kind == "Ingress"]
    assert ingresses, f"README.md:{install.command.line}: the render has no Ingress"
    served: set[str] = set()
    for ing in ingresses:
        hosts = [str(rule.get("host", "")) for rule in ing.obj["spec"].get("rules", [])]
        assert hosts and all(h.endswith("." + domain) for h in hosts), (
            f"{ing.ref} ({ing.source}): hosts {hosts} are not under global.domain={domain}")
        served.update(hosts)
    want = {f"git.{domain}", f"ci.{domain}", f"registry.{domain}"}
    assert want <= served, f"Ingress hosts {sorted(served)}, want {sorted(want)}"


def test_pipelines_install_renders() -> None:
    install = readme_install("charts/drone-pipelines")
    assert install.namespace == "homeci", (
        f"README.md:{install.command.line}: drone-pipelines goes into the umbrella's namespace, not "
        f"{install.namespace}")
    values = dict(s.split("=", 1) for s in install.sets)
    target, owner = values.get("targets[0].namespace"), values.get("targets[0].owners[0]")
    assert target and owner, f"README.md:{install.command.line}: no target namespace and owner in {values}"
    objects = install.render()
    in_target = [o for o in objects if o.namespace == target]
    assert in_target, f"drone-pipelines renders nothing into the target namespace {target}"
    bindings = [o for o in in_target if o.kind == "RoleBinding"
                and any(owner in str(s.get("name", "")) for s in o.obj.get("subjects", []))]
    assert bindings, (f"no RoleBinding in {target} for {owner}'s deployer: "
                      f"{sorted(o.ref for o in in_target)}")
    # drone-pipelines does not make its target namespace: the README's umbrella install does
    # (global.appNamespaces), so the README needs no `kubectl create namespace` line.
    assert not [o for o in objects if o.kind == "Namespace" and o.name == target], (
        f"drone-pipelines renders Namespace/{target}")
    umbrella = readme_install("charts/homeci-umbrella")
    assert umbrella.command.line < install.command.line, "README.md: the umbrella must be installed first"
    made = [o for o in umbrella.render() if o.kind == "Namespace" and o.name == target]
    assert made, (f"README.md:{install.command.line}: target namespace {target} is made neither by the "
                  "README's umbrella install (global.appNamespaces) nor by a command before it")
    assert made[0].annotations.get("helm.sh/resource-policy") == "keep", (
        f"Namespace/{target} ({made[0].source}) is not kept on uninstall")
