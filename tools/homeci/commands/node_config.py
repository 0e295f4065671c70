"""``homeci node-config``: the node-side files that make containerd trust the homeci registry.

For clusters where the node-trust DaemonSet is off (or for checking what it writes), this prints
  * containerd ``certs.d/<registry host>/hosts.toml`` (kind >= 0.27, kubeadm, any containerd with
    ``config_path`` set; no restart needed), and
  * k3s ``/etc/rancher/k3s/registries.yaml`` (k3s rewrites containerd's config from it; restart k3s).
The registry host comes from ``--registry-host``, else ``<global.hosts.registry>.<global.domain>`` of a
values file (``-f``) or ``--domain``. ``--ca`` checks the CA certificate you are going to copy to the nodes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import yaml

from homeci import contract
from homeci.commands import params
from homeci.errors import UsageError
from homeci.manifests import DNS_LABEL

CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d"
K3S_REGISTRIES = "/etc/rancher/k3s/registries.yaml"
K3S_CA_PATH = "/etc/rancher/k3s/homeci-ca.crt"
_HOST_RE = re.compile(rf"^({DNS_LABEL}\.)*{DNS_LABEL}(:[0-9]{{1,5}})?$")
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def registry_host_from_values(path: Path) -> str:
    """``<global.hosts.registry>.<global.domain>`` of an umbrella values file (chart defaults if unset)."""
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UsageError(f"-f {path}: cannot read the values file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"-f {path}: not a text file (byte {exc.start} is not UTF-8); give the umbrella's "
                         "values YAML") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"-f {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"-f {path}: a values file must be a mapping")
    glob = data.get("global") or {}
    if not isinstance(glob, dict):
        raise UsageError(f"-f {path}: global must be a mapping")
    return contract.host("registry", data)


def check_host(host: str, flag: str) -> str:
    host = host.strip().lower().rstrip(".")
    if not _HOST_RE.match(host):
        raise UsageError(f"{flag} {host!r}: not a DNS name (expected e.g. registry.home.example)")
    port = host.partition(":")[2]
    if port and not 1 <= int(port) <= 65535:
        raise UsageError(f"{flag} {host!r}: port {port} is out of range (1-65535)")
    return host


def check_ca_file(path: Path) -> None:
    """The local CA file must hold a PEM CA certificate (what ConfigMap <release>-ca key ca.crt contains)."""
    from cryptography import x509

    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(
            f"--ca {path}: cannot read it ({exc.strerror}); export it with kubectl "
            "get configmap <release>-ca -o jsonpath='{.data.ca\\.crt}'"
        ) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--ca {path}: not a text file (byte {exc.start} is not UTF-8); expected a PEM "
                         f"certificate ({_PEM_BEGIN})") from None
    if _PEM_BEGIN not in text:
        raise UsageError(f"--ca {path}: no PEM certificate in it (expected {_PEM_BEGIN})")
    try:
        cert = x509.load_pem_x509_certificate(text.encode())
    except ValueError as exc:
        raise UsageError(f"--ca {path}: not a valid certificate ({exc})") from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise UsageError(
            f"--ca {path}: this certificate is not a CA (basicConstraints CA:TRUE missing); "
            "use the homeci CA, not the serving certificate"
        )


def hosts_toml(registry_host: str, ca_path: str, endpoint: str = "") -> str:
    """containerd ``hosts.toml`` for ``certs.d/<registry_host>/``."""
    server = f"https://{registry_host}"
    return (
        f'server = "{server}"\n\n'
        f'[host."{endpoint or server}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "{ca_path}"\n'
    )


def registries_yaml(registry_host: str, ca_path: str, endpoint: str = "") -> str:
    """k3s ``registries.yaml`` trusting the CA for the registry host."""
    doc = {
        "mirrors": {registry_host: {"endpoint": [endpoint or f"https://{registry_host}"]}},
        "configs": {registry_host: {"tls": {"ca_file": ca_path}}},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def render(
    registry_host: str, *, containerd: bool, k3s: bool, ca_path: str | None, endpoint: str, ca_source: str
) -> str:
    parts: list[str] = []
    if containerd:
        node_dir = f"{CONTAINERD_CERTS_DIR}/{registry_host}"
        path = ca_path or f"{node_dir}/ca.crt"
        parts.append(
            f"# containerd: {node_dir}/hosts.toml (read on every pull; no restart)\n"
            f"# Copy the CA to every node first: install -D -m 0644 {ca_source} {path}\n"
            + hosts_toml(registry_host, path, endpoint)
        )
    if k3s:
        path = ca_path or K3S_CA_PATH
        parts.append(
            f"# k3s: {K3S_REGISTRIES} on every node (servers and agents), then restart k3s / k3s-agent\n"
            f"# Copy the CA to every node first: install -D -m 0644 {ca_source} {path}\n"
            "# Pulls need credentials too unless the registry allows anonymous reads: add\n"
            "# configs.<host>.auth {username, password} or use imagePullSecrets in the pods.\n"
            + registries_yaml(registry_host, path, endpoint)
        )
    parts.append(
        f"# Every node must also resolve {registry_host} to Traefik (DNS or /etc/hosts):\n"
        "# containerd pulls with the node's resolver, not the cluster DNS.\n"
    )
    return "\n".join(parts)


@click.command(name="node-config")
@click.option(
    "-f",
    "--values",
    "values_file",
    type=params.ValuesFile(),
    help="Umbrella values file to read global.domain and global.hosts.registry from.",
)
@click.option("--domain", help="Public DNS suffix (global.domain; default: the chart's).")
@click.option("--registry-host", help="Registry host name (default registry.<domain>).")
@click.option(
    "--ca",
    "ca_file",
    type=params.ReadableFile(),
    help="Local copy of the homeci CA certificate to check (ConfigMap <release>-ca, key ca.crt).",
)
@click.option(
    "--ca-path",
    help=f"Where the CA file lives on the nodes (default: beside hosts.toml; {K3S_CA_PATH} for k3s).",
)
@click.option(
    "--endpoint", default="", help="Mirror URL the nodes pull from instead of https://<registry host>."
)
@click.option("--k3s", "only_k3s", is_flag=True, help="Print only the k3s registries.yaml.")
@click.option("--containerd", "only_containerd", is_flag=True, help="Print only the containerd hosts.toml.")
def command(
    values_file: Path | None,
    domain: str | None,
    registry_host: str | None,
    ca_file: Path | None,
    ca_path: str | None,
    endpoint: str,
    only_k3s: bool,
    only_containerd: bool,
) -> None:
    """Print containerd hosts.toml and k3s registries.yaml that make nodes trust the homeci registry."""
    if only_k3s and only_containerd:
        raise UsageError("--k3s and --containerd exclude each other: give one, or neither for both")
    if registry_host:
        host = check_host(registry_host, "--registry-host")
    elif domain:
        host = check_host(contract.host("registry", {"global": {"domain": domain}}), "--domain")
    elif values_file is not None:
        host = check_host(registry_host_from_values(values_file), f"-f {values_file}:")
    else:
        host = contract.host("registry")
    if ca_path is not None and not ca_path.startswith("/"):
        raise UsageError(f"--ca-path {ca_path!r}: give an absolute path on the nodes")
    if endpoint and not re.match(r"^https?://[^\s/]+$", endpoint):
        raise UsageError(
            f"--endpoint {endpoint!r}: expected a URL like https://10.0.0.5:443 (scheme and host only)"
        )
    if ca_file is not None:
        check_ca_file(ca_file)
    click.echo(
        render(
            host,
            containerd=not only_k3s,
            k3s=not only_containerd,
            ca_path=ca_path,
            endpoint=endpoint,
            ca_source=str(ca_file or "homeci-ca.crt"),
        ),
        nl=False,
    )
