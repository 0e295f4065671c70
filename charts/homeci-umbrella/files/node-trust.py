#!/usr/bin/env python3
"""homeci node trust (DaemonSet): make every node's containerd trust the homeci registry.

Every INTERVAL seconds: read the public CA certificate from ConfigMap CA_CONFIGMAP in CA_NAMESPACE
through the Kubernetes API (the DaemonSet lives in its own namespace, so it cannot mount that
ConfigMap), then write - only when the content changed, atomically -
  CERTS_DIR/ca.crt and CERTS_DIR/hosts.toml   containerd `certs.d/<registry host>/` (no restart needed)
  CA_DIR/ca.crt, CA_DIR/bundle.crt            (optional: hostPath step CA delivery) the Drone runner
                                              mounts CA_DIR at /etc/homeci in every step; bundle.crt =
                                              this image's public roots + the CA, for tools that take one
                                              file (GIT_SSL_CAINFO, SSL_CERT_FILE)
CERTS_DIR and CA_DIR are hostPath mounts of exactly those node directories, which homeci owns: every
pass also repairs them, so nothing else can make a node (or, with hostPath delivery, a build) trust
another certificate - a directory or symbolic link where a file belongs is replaced, and any other
entry (a planted extra *.crt, say) is removed. Each repair is logged.

Environment: CA_NAMESPACE, CA_CONFIGMAP, REGISTRY_HOST, NODE_CERTS_DIR (the registry directory's
path on the node, written into hosts.toml), CERTS_DIR, CA_DIR, ENDPOINT (optional mirror URL),
SYSTEM_BUNDLE (public roots to prepend in bundle.crt; default /etc/ssl/certs/ca-certificates.crt),
INTERVAL (default 300), HEALTH_DIR (probe files `heartbeat` and `ready`), ONCE (any value: one pass,
then exit with 0 or 1). Standard library only.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import sys
import time
import urllib.request
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


class NodeTrustError(Exception):
    pass


def hosts_toml(registry_host: str, node_ca_path: str, endpoint: str = "") -> str:
    """containerd hosts.toml: pull/resolve from the registry (or a mirror endpoint) trusting the CA."""
    server = f"https://{registry_host}"
    host = endpoint or server
    return (
        "# Written by homeci node-trust; rewritten when the CA changes. Do not edit.\n"
        f'server = "{server}"\n\n'
        f'[host."{host}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "{node_ca_path}"\n'
    )


def fetch_ca(namespace: str, name: str, api: str | None = None, sa_dir: Path = SA_DIR) -> str:
    if api is None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        api = f"https://{host}:{port}"
    token = (sa_dir / "token").read_text().strip()
    ctx = ssl.create_default_context(cafile=str(sa_dir / "ca.crt")) if api.startswith("https") else None
    url = f"{api}/api/v1/namespaces/{namespace}/configmaps/{name}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15, context=ctx) as resp:
            obj = json.load(resp)
    except Exception as exc:  # any failure is reported and retried on the next pass
        raise NodeTrustError(f"cannot read ConfigMap {namespace}/{name}: {exc}") from exc
    pem = str((obj.get("data") or {}).get("ca.crt", "")).strip()
    if not pem.startswith(PEM_BEGIN):
        raise NodeTrustError(f"ConfigMap {namespace}/{name} has no PEM certificate under key ca.crt")
    return pem + "\n"


def bundle(pem: str, system: Path) -> str:
    """Public roots (when the file exists) followed by the homeci CA: one file that trusts both."""
    roots = system.read_text() if system.is_file() else ""
    if roots and not roots.endswith("\n"):
        roots += "\n"
    return roots + pem


def write_if_changed(path: Path, content: str) -> bool:
    """Atomically replace path with content unless it already is a plain file holding exactly that with
    mode 0644; True if written. A directory or symbolic link in its place is removed first."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        remove(path)
    elif path.is_file() and path.read_text() == content and path.stat().st_mode & 0o7777 == 0o644:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        remove(tmp)
    tmp.write_text(content)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


def remove(path: Path) -> None:
    """Remove a file, symbolic link or directory tree (never following a link)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def prune(folder: Path, keep: set[str]) -> list[str]:
    """Remove every entry of folder except `keep` (and the temporary files of an interrupted write)."""
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.name not in keep:
            remove(entry)
            removed.append(str(entry))
    return removed


def sync(env: dict[str, str], fetch: object = None) -> tuple[list[str], list[str]]:
    """One pass: (files written, unexpected entries removed)."""
    fetcher = fetch if callable(fetch) else fetch_ca
    pem = fetcher(env["CA_NAMESPACE"], env["CA_CONFIGMAP"])
    node_ca = f"{env['NODE_CERTS_DIR'].rstrip('/')}/ca.crt"
    wanted: dict[Path, dict[str, str]] = {
        Path(env["CERTS_DIR"]): {
            "ca.crt": pem,
            "hosts.toml": hosts_toml(env["REGISTRY_HOST"], node_ca, env.get("ENDPOINT", "")),
        },
    }
    if env.get("CA_DIR"):
        system = Path(env.get("SYSTEM_BUNDLE") or SYSTEM_BUNDLE)
        wanted[Path(env["CA_DIR"])] = {"ca.crt": pem, "bundle.crt": bundle(pem, system)}
    changed: list[str] = []
    removed: list[str] = []
    for folder, files in wanted.items():
        removed += prune(folder, set(files))
        for name, content in files.items():
            if write_if_changed(folder / name, content):
                changed.append(str(folder / name))
    return changed, removed


def main() -> int:
    env = dict(os.environ)
    required = ("CA_NAMESPACE", "CA_CONFIGMAP", "REGISTRY_HOST", "NODE_CERTS_DIR", "CERTS_DIR")
    missing = [k for k in required if not env.get(k)]
    if missing:
        print(f"node-trust: error: missing environment {', '.join(missing)}", file=sys.stderr)
        return 1
    interval = float(env.get("INTERVAL", "300"))
    health = Path(env["HEALTH_DIR"]) if env.get("HEALTH_DIR") else None
    while True:
        ok = True
        try:
            changed, removed = sync(env)
            for path in removed:
                print(f"node-trust: repaired: removed unexpected {path} (only homeci's files belong there)",
                      flush=True)
            print(f"node-trust: {'wrote ' + ', '.join(changed) if changed else 'up to date'}", flush=True)
        except (NodeTrustError, OSError) as exc:
            ok = False
            print(f"node-trust: error: {exc}", file=sys.stderr, flush=True)
        if health is not None:
            mark_health(health, ok)
        if env.get("ONCE"):
            return 0 if ok else 1
        time.sleep(interval)


def mark_health(health: Path, ok: bool) -> None:
    """Probes: `heartbeat` is touched every pass (liveness), `ready` exists after a good pass (readiness)."""
    (health / "heartbeat").write_text(f"{time.time():.0f}\n")
    ready = health / "ready"
    if ok:
        ready.write_text("ok\n")
    elif ready.exists():
        ready.unlink()


if __name__ == "__main__":
    sys.exit(main())
