"""The ``homeci`` command line. Each sub-command lives in its own module under ``homeci.commands``
and is imported only when used, so ``homeci --help`` stays fast."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

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
    "docs": ("homeci.commands.docs", "command",
             "Regenerate values.schema.json (shared fragments, descriptions) and VALUES.md, or --check."),
    "release": ("homeci.commands.release", "command",
                "Prepare a release: version by the changelog rule, lint gate, Artifact Hub metadata."),
    "toolchain": ("homeci.commands.toolchain", "group",
                  "Install and list the pinned external binaries (helm, kind, kwok, ...)."),
    "cluster": ("homeci.commands.cluster", "group",
                "Clusters on this machine (sim, netns, kind): up, down, status, images, install."),
    "smoke": ("homeci.commands.smoke", "command",
              "Push a sample app through an installed stack and report every phase."),
    "node-config": ("homeci.commands.node_config", "command",
                    "Print containerd hosts.toml / k3s registries.yaml for trusting the registry."),
    "backup": ("homeci.commands.backup", "backup",
               "Write one archive with the stack's state: Gogs, Drone, registry images, Secrets, values."),
    "restore": ("homeci.commands.backup", "restore",
                "Restore a backup archive into a fresh install (Secrets first, then releases, then data)."),
    "status": ("homeci.commands.status", "command",
               "One table for a running stack: readiness, versions, certificates, volumes, last builds."),
    "scan": ("homeci.commands.scan", "command",
             "Security scan (checkov) of every chart scenario against toolchain/checkov-allowed.yaml."),
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


def usage_line(exc: click.UsageError) -> str:
    """click's usage error (unknown option, bad value, missing argument) as one line with the help to read."""
    message = " ".join(exc.format_message().split())
    path = exc.ctx.command_path if exc.ctx is not None else "homeci"
    command = path.partition(" ")[2]
    return f"{command + ': ' if command else ''}{message} (see `{path} --help`)"


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="homeci", standalone_mode=False)
    except HomeciError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130, prefix="homeci: ")
    except click.UsageError as exc:
        _fail(usage_line(exc), exc.exit_code)
    except click.ClickException as exc:
        _fail(" ".join(exc.format_message().split()), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130, prefix="homeci: ")
    except OSError as exc:
        # the machine refused something (disk full, permissions) that no check foresaw: name the file
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}; check the path, free space and permissions", 1)
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("HOMECI_DEBUG"):
            raise
        _fail(f"{type(exc).__name__}: {' '.join(str(exc).split())}; this is a bug in homeci, please report "
              "it with the command line (HOMECI_DEBUG=1 shows the traceback)", 70,
              prefix="homeci: internal error: ")


def _fail(message: str, code: int, *, prefix: str = "homeci: error: ") -> NoReturn:
    click.echo(f"{prefix}{message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
