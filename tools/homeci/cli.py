"""The ``homeci`` command line. Each sub-command lives in its own module under ``homeci.commands``
and is imported only when used, so ``homeci --help`` stays fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from homeci import __version__
from homeci.errors import HomeciError

# command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "lint": ("homeci.commands.lint", "command",
             "Lint charts: helm lint (Helm 3 and 4), schemas, Kubernetes validation."),
    "render": ("homeci.commands.render", "command", "Render a chart's manifests (helm template) to stdout."),
    "ca": ("homeci.commands.ca", "group", "Create, inspect and verify the homeci certificate authority."),
    "package": ("homeci.commands.package", "command",
                "Package the charts into dist/ and publish a repository index or OCI."),
    "toolchain": ("homeci.commands.toolchain", "group",
                  "Install and list the pinned external binaries (helm, kind, kwok, ...)."),
    "cluster": ("homeci.commands.cluster", "group",
                "Run local clusters (simulated control plane + kwok, or kind)."),
    "smoke": ("homeci.commands.smoke", "command",
              "Push a sample app through an installed stack and report every phase."),
    "node-config": ("homeci.commands.nodeconfig", "command",
                    "Print containerd hosts.toml / k3s registries.yaml for trusting the registry."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return _not_built(cmd_name)
            raise
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_built(name: str) -> click.Command:
    @click.command(name=name, help=COMMANDS[name][2], context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args: Any) -> None:
        raise HomeciError(f"`homeci {name}` is not built yet in this checkout")

    return stub


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="homeci")
def cli() -> None:
    """homeci: self-hosted push-to-deploy for Kubernetes (Traefik, registry, Gogs, Drone, one CA)."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="homeci", standalone_mode=False)
    except HomeciError as exc:
        click.echo(f"homeci: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("homeci: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("homeci: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
