"""``homeci ca init|show|verify``."""

from __future__ import annotations

from pathlib import Path

import click

from homeci import ca, ui
from homeci.commands import params
from homeci.errors import UsageError


@click.group(name="ca")
def group() -> None:
    """Create, inspect and verify the homeci certificate authority."""


@group.command()
@click.argument("directory", type=params.Directory())
@click.option("--cn", default=ca.DEFAULT_CN, show_default=True, help="Common name of the CA.")
@click.option("--days", type=click.IntRange(1, 36500), default=ca.DEFAULT_DAYS, show_default=True,
              help="Validity in days.")
@click.option("-n", "--namespace", type=params.NAMESPACE, default="homeci", show_default=True,
              help="Namespace used in the printed commands.")
@click.option("--domain", type=params.DnsName(), default=None,
              help="The only domain (with its subdomains) the CA may vouch for: global.domain. "
                   "[default: the chart's]")
@click.option("--dns-name", "dns_names", type=params.DnsName(), multiple=True,
              help="Another DNS name (and its subdomains) the CA may vouch for (certificates.extraDnsNames); "
                   "repeatable.")
@click.option("--ip", "ips", type=params.IpAddress(), multiple=True,
              help="An IP address the CA may vouch for (certificates.extraIpAddresses); repeatable. "
                   "Without one, no address at all.")
def init(directory: Path, cn: str, days: int, namespace: str, domain: str | None, dns_names: tuple[str, ...],
         ips: tuple[str, ...]) -> None:
    """Write a new CA into DIRECTORY (ca.crt, ca.key with mode 0600).

    DIRECTORY must be new or empty, so the key sits in a directory of its own; both files are written
    or neither (a failure leaves nothing behind). The CA carries X.509 name constraints: it can vouch for
    --domain, --dns-name and --ip only, so trusting it system-wide is safe even if its key leaks."""
    files = ca.init(directory, cn=cn, days=days, domain=domain, dns_names=dns_names, ips=ips)
    cert = ca.load_certs(files.cert)[0]
    lines = [
        f"wrote {files.cert} and {files.key} (mode 0600; keep it secret)",
        f"sha256 fingerprint {ca.fingerprint(cert)}; valid until {cert.not_valid_after_utc:%Y-%m-%d}",
        f"name constraints: {ca.constraints_text(cert)}",
        "make the umbrella use it:",
    ]
    for line in lines:
        ui.out.print(line, markup=False, soft_wrap=True)
    for line in ca.install_hints(files, namespace=namespace, domain=domain, dns_names=dns_names, ips=ips):
        ui.out.print(f"  {line}", markup=False, soft_wrap=True)


@group.command()
@click.argument("file", required=False, type=params.ReadableFile())
@click.option("--secret", type=params.OBJECT_NAME, default=None,
              help="Read the CA from this cluster Secret (tls.crt or ca.crt).")
@click.option("-n", "--namespace", type=params.NAMESPACE, default="homeci", show_default=True,
              help="Namespace of --secret.")
@click.option("--kubeconfig", default=None, type=params.ReadableFile(),
              help="kubeconfig for --secret (default: $KUBECONFIG or ~/.kube/config).")
def show(file: Path | None, secret: str | None, namespace: str, kubeconfig: Path | None) -> None:
    """Print subject, SHA-256 fingerprint and validity of a CA from FILE or --secret."""
    if (file is None) == (secret is None):
        raise UsageError("give exactly one of FILE or --secret NAME, e.g. `homeci ca show ./ca/ca.crt`")
    if file is not None:
        cert, source = ca.load_certs(file)[0], str(file)
    else:
        assert secret is not None
        cert, source = ca.secret_cert(secret, namespace, kubeconfig), f"secret {namespace}/{secret}"
    # plain "key: value" lines: never wrapped, easy to grep
    ui.out.print(f"source: {source}", markup=False, soft_wrap=True)
    for key, value in ca.describe(cert).items():
        ui.out.print(f"{key}: {value}", markup=False, soft_wrap=True)


@group.command()
@click.argument("target")
@click.option("--ca", "ca_file", required=True, type=params.ReadableFile(), help="The CA certificate.")
@click.option("--host", required=True, type=params.HOST,
              help="Hostname or IP address the certificate must cover (also the SNI sent).")
def verify(target: str, ca_file: Path, host: str) -> None:
    """Check that TARGET (a certificate file, or HOST:PORT serving TLS) chains to the CA and covers --host."""
    ui.out.print(ca.verify(target, ca_file, host), markup=False, soft_wrap=True)
