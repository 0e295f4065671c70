"""Option and argument types shared by the commands: each one checks its input when the command line is
parsed, so bad input fails in one line naming the option before any work (a render, a cluster) starts."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path
from typing import Any

import click
import yaml

from homeci.manifests import DNS_LABEL

# Local cluster names end up in paths, network namespace and cgroup names: the local provider's limit.
CLUSTER_NAME_LIMIT = 20
# Values files are small; a bound keeps `-f /dev/zero` from reading forever.
VALUES_LIMIT = 16 << 20

Ctx = click.Context | None
Param = click.Parameter | None


class ValuesFile(click.Path):
    """A Helm values file: an existing, readable UTF-8 YAML file whose top level is a mapping (or empty,
    so ``-f /dev/null`` means "no values")."""

    name = "values file"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, readable=True, path_type=Path)

    def convert(self, value: Any, param: Param, ctx: Ctx) -> Any:
        path = super().convert(value, param, ctx)
        shown = repr(str(path))
        try:
            if stat.S_ISFIFO(os.stat(path).st_mode):
                self.fail(f"{shown} is a pipe, which can be read only once; save the values to a file and "
                          "pass that", param, ctx)
            with open(path, "rb") as fh:
                raw = fh.read(VALUES_LIMIT + 1)
            if len(raw) > VALUES_LIMIT:
                self.fail(f"{shown} is larger than {VALUES_LIMIT >> 20} MiB; give a values YAML file",
                          param, ctx)
            data = yaml.safe_load(raw.decode("utf-8"))
        except OSError as exc:
            self.fail(f"cannot read {shown} ({exc.strerror}); check the path and permissions", param, ctx)
        except UnicodeDecodeError as exc:
            self.fail(f"{shown} is not a text file (byte {exc.start} is not UTF-8); give a values YAML file",
                      param, ctx)
        except yaml.reader.ReaderError as exc:
            self.fail(f"{shown} is not a text file (character {exc.character!r} at byte {exc.position}); "
                      "give a values YAML file", param, ctx)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            self.fail(f"{shown} is not valid YAML{where} ({problem}); fix the syntax", param, ctx)
        if data is not None and not isinstance(data, dict):
            self.fail(f"{shown} must hold a mapping of values (key: value), not a {type(data).__name__}",
                      param, ctx)
        return path


class ReadableFile(click.Path):
    """An existing, readable regular file (a certificate, a kubeconfig); the command checks its content."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, readable=True, path_type=Path)


class Directory(click.Path):
    """A directory to write into: it need not exist, but nothing on its path may be a file."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: Param, ctx: Ctx) -> Any:
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        for parent in (path, *path.parents):
            if parent.exists() and not parent.is_dir():
                self.fail(f"{str(parent)!r} is a file, so {str(path)!r} cannot be a directory; give a "
                          "directory path", param, ctx)
        return path


class Name(click.types.StringParamType):
    """A DNS-1123 label of at most ``limit`` characters: namespaces, release and cluster names."""

    name = "name"

    def __init__(self, limit: int = 63) -> None:
        self.limit = limit

    def convert(self, value: Any, param: Param, ctx: Ctx) -> str:
        text = str(value)
        if len(text) > self.limit or not re.fullmatch(DNS_LABEL, text):
            self.fail(f"{text!r} is not a valid name (lower-case letters, digits and '-', starting and "
                      f"ending with a letter or digit, at most {self.limit} characters)", param, ctx)
        return text


class DnsName(click.types.StringParamType):
    """A DNS name (dot-separated DNS-1123 labels, at most 253 characters): a domain, a Secret name."""

    name = "dns name"

    def convert(self, value: Any, param: Param, ctx: Ctx) -> str:
        text = str(value)
        if len(text) > 253 or not re.fullmatch(rf"({DNS_LABEL}\.)*{DNS_LABEL}", text):
            self.fail(f"{text!r} is not a DNS name (dot-separated lower-case labels), e.g. home.example",
                      param, ctx)
        return text


class Host(click.types.StringParamType):
    """A host name (any case) or an IP address, as a TLS client would be asked to connect to."""

    name = "host"

    def convert(self, value: Any, param: Param, ctx: Ctx) -> str:
        text = str(value)
        try:
            ipaddress.ip_address(text)
            return text
        except ValueError:
            pass
        if len(text) > 253 or not re.fullmatch(rf"({DNS_LABEL}\.)*{DNS_LABEL}\.?", text.lower()):
            self.fail(f"{text!r} is neither a host name nor an IP address, e.g. git.home.example",
                      param, ctx)
        return text


class IpAddress(click.types.StringParamType):
    """An IPv4 or IPv6 address."""

    name = "address"

    def convert(self, value: Any, param: Param, ctx: Ctx) -> str:
        text = str(value)
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.fail(f"{text!r} is not an IPv4 or IPv6 address, e.g. 192.168.1.10", param, ctx)


class KubeVersion(click.types.StringParamType):
    """A Kubernetes version as Helm's --kube-version takes it: 1.33, 1.33.2 or v1.33.2."""

    name = "version"

    def convert(self, value: Any, param: Param, ctx: Ctx) -> str:
        text = str(value)
        if not re.fullmatch(r"v?\d+\.\d+(\.\d+)?", text):
            self.fail(f"{text!r} is not a Kubernetes version, e.g. 1.33.0", param, ctx)
        return text


NAMESPACE = Name(63)
RELEASE = Name(53)  # Helm's limit for release names
CLUSTER_NAME = Name(CLUSTER_NAME_LIMIT)
OBJECT_NAME = DnsName()  # Secret and ConfigMap names are DNS-1123 subdomains
HOST = Host()


F = Any  # a click command function


def stack_options(func: F) -> F:
    """--kubeconfig, -n/--namespace and --release: where an installed homeci stack is (the commands that
    talk to one: smoke, backup, status)."""
    func = click.option("--release", type=RELEASE, default="homeci", show_default=True,
                        help="Umbrella release name.")(func)
    func = click.option("-n", "--namespace", type=NAMESPACE, default="homeci", show_default=True,
                        help="Namespace of the umbrella release.")(func)
    return click.option("--kubeconfig", type=ReadableFile(), default=None,
                        help="Kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config).")(func)
