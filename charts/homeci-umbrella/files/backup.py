#!/usr/bin/env python3
"""homeci backup archive: its format, the commands run inside the stack's containers, and the
scheduled backup (the umbrella's CronJob, `backup.enabled`).

This file is the one definition of the archive `homeci backup` writes and `homeci restore` reads: the
CLI imports FORMAT, ROOT, the in-container commands and pack() from here; in the cluster the CronJob
runs main(). A ``.tar.gz`` whose members live under ``homeci-backup/`` and whose last member is
``homeci-backup/manifest.json`` (format, version, source, contents, and the size and SHA-256 of every
other member): a cut-off archive has no manifest, a damaged one fails a checksum.

The scheduled backup reads what the CLI reads, through the API server with its own ServiceAccount:
the namespace's Secrets and Helm's release records, Gogs' own dump and a tar of its files (exec in the
Gogs container), Drone's database by SQLite's online backup (exec in the Gogs bridge container, which
shares Drone's volume), the registry's images through its API (in-cluster Service, the stack's
credentials). It writes ``homeci-backup-<UTC time>.tar.gz`` to BACKUP_DIR and keeps the newest
BACKUP_KEEP archives. Unlike the CLI it has no access to other namespaces: what the pipelines deployed
is not in its archives (restore deploys it again with the next push).

Environment: BACKUP_NAMESPACE, BACKUP_RELEASE, BACKUP_PIPELINES_RELEASE, BACKUP_DIR (/backup),
BACKUP_KEEP (7), BACKUP_REGISTRY ("true"/"false"), BACKUP_REGISTRY_URL (http://<release>-registry...:5000),
BACKUP_HOMECI_VERSION (the chart's). Only the Python standard library is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import struct
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

FORMAT = "homeci-backup"
FORMAT_VERSION = 1
ROOT = "homeci-backup"
MANIFEST = f"{ROOT}/manifest.json"
BUFFER = 1 << 20

# -- commands run inside the stack's containers (the CLI runs the same) ---------------------------------

GOGS_ENV = (
    ". /opt/homeci/secrets.sh; load_secret GOGS_SECRET_KEY; load_secret GOGS_DATABASE_PASSWORD; "
    'GOGS="${GOGS_BIN:-/app/gogs/gogs}"; CONF="${GOGS_CONFIG:-/etc/gogs/app.ini}"; '
)
# Gogs' portable dump of its database (every table as JSON), written on the data volume (the pod's
# /tmp is small), sent to stdout, removed. Gogs logs to stdout: sent to stderr.
GOGS_DUMP = GOGS_ENV + (
    'set -e; w=/data/.homeci-backup; rm -rf "$w"; mkdir -p "$w"; '
    '"$GOGS" backup --database-only --config "$CONF" --tempdir "$w" --target "$w" '
    '--archive-name database.zip >&2; cat "$w/database.zip"; rm -rf "$w"'
)
# What Gogs keeps beside its database: repositories, attachments, avatars, LFS objects, and homeci's own
# state (the admin-sync maintenance token, which the database knows too).
GOGS_FILES = ("git/gogs-repositories", "gogs/data", "homeci")
GOGS_EXCLUDE = ("gogs/data/gogs.db", "gogs/data/gogs.db-journal", "gogs/data/sessions", "gogs/data/tmp")
GOGS_TAR = (
    "set -e; cd /data; set --; for d in " + " ".join(GOGS_FILES) + '; do [ -e "$d" ] && set -- "$@" "$d"; '
    "done; tar -cf - " + " ".join(f"--exclude={x}" for x in GOGS_EXCLUDE) + ' "$@"'
)
# Python in the bridge container (Drone's image has no shell and no sqlite3). The online backup copies a
# consistent snapshot while Drone keeps writing; it is written next to the database, streamed, removed.
DRONE_DUMP = """
import os, sqlite3, sys
db, tmp = "/data/database.sqlite", "/data/.homeci-backup.sqlite"
src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
dst = sqlite3.connect(tmp)
src.backup(dst)
dst.close()
src.close()
with open(tmp, "rb") as f:
    while chunk := f.read(1 << 16):
        sys.stdout.buffer.write(chunk)
sys.stdout.buffer.flush()
os.unlink(tmp)
"""
DRONE_TAR = """
import os, sys, tarfile
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
    if os.path.isdir("/data/gogs-bridge"):
        tar.add("/data/gogs-bridge", arcname="gogs-bridge")
"""


def keep_secret(secret: dict[str, Any]) -> bool:
    """Secrets the archive holds: all of the namespace but Helm's release records and token Secrets."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    kind = secret.get("type")
    skipped = ("helm.sh/release.v1", "kubernetes.io/service-account-token")
    return kind not in skipped and labels.get("owner") != "helm"


DROP_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink",
                 "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds")


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without what a cluster assigns (so it can be created on another one)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in DROP_METADATA}
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if k not in ("kubectl.kubernetes.io/last-applied-configuration",
                                        "deployment.kubernetes.io/revision")}
    out["metadata"] = meta
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(BUFFER):
            h.update(chunk)
    return h.hexdigest()


def pack(staging: Path, manifest: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Write every file under ``staging`` (sorted) and then the manifest, with ``files`` (size and SHA-256
    of each member) filled in, to ``dest`` (owner-only: it holds the CA key and every password). Written
    to ``<dest>.partial`` and renamed, so a reader never sees half an archive under the final name."""
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    doc = {**manifest, "format": FORMAT, "formatVersion": FORMAT_VERSION,
           "files": {p.relative_to(staging).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
                     for p in files}}

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o600
        return info

    tmp = dest.with_name(dest.name + ".partial")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        for p in files:
            tar.add(p, arcname=f"{ROOT}/{p.relative_to(staging).as_posix()}", recursive=False, filter=plain)
        data = json.dumps(doc, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(data), 0o600, 0
        tar.addfile(info, io.BytesIO(data))
    tmp.chmod(0o600)
    tmp.replace(dest)
    return doc


def helm_record(data: str) -> dict[str, Any]:
    """A Helm 3/4 release record (the ``release`` key of its Secret, base64 as the API returns it)."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    record: dict[str, Any] = json.loads(raw)
    return record


# -- the scheduled backup (in the cluster) -----------------------------------------------------------------

class BackupError(Exception):
    """One line saying what failed; the Job fails and keeps its log."""


SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Kube:
    """The few API calls the backup makes, with the pod's ServiceAccount token."""

    def __init__(self, host: str, port: int, token: str, ca_file: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.context = ssl.create_default_context(cafile=ca_file)

    def get(self, path: str) -> Any:
        req = urllib.request.Request(f"https://{self.netloc}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=60, context=self.context) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise BackupError(f"GET {path}: HTTP {exc.code} {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BackupError(f"GET {path}: {exc}") from None

    def exec(self, namespace: str, pod: str, container: str, command: list[str], out: IO[bytes]) -> None:
        """Run ``command`` in the container (exec over WebSocket, protocol v4.channel.k8s.io); its stdout
        goes to ``out``; a non-zero exit raises with the end of its stderr."""
        query = urllib.parse.urlencode([("container", container), ("stdout", "true"), ("stderr", "true"),
                                        *(("command", c) for c in command)])
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}"
        raw = socket.create_connection((self.host, self.port), timeout=600)
        sock = self.context.wrap_socket(raw, server_hostname=self.host)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {self.netloc}\r\nAuthorization: Bearer {self.token}\r\n"
                      f"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        reader = sock.makefile("rb")
        status_line = reader.readline().decode(errors="replace").strip()
        while reader.readline() not in (b"\r\n", b"\n", b""):
            pass
        if " 101 " not in f"{status_line} ":
            raise BackupError(f"exec in {pod}/{container}: {status_line}")
        err = bytearray()
        status: dict[str, Any] = {}
        try:
            for channel, payload in _frames(reader):
                if channel == 1:
                    out.write(payload)
                elif channel == 2:
                    err += payload
                elif channel == 3:
                    status = json.loads(payload or b"{}")
        finally:
            sock.close()
        if status.get("status") != "Success":
            tail = " / ".join(err.decode(errors="replace").strip().splitlines()[-3:])
            raise BackupError(f"`{' '.join(command)[:80]}` in {pod}/{container} failed: "
                              f"{status.get('message') or status} {tail}")


def _frames(reader: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(channel, payload) of each WebSocket message until the server closes (frames from the server are
    never masked; a fragmented message carries its channel byte in its first frame only)."""
    message = bytearray()
    while True:
        head = reader.read(2)
        if len(head) < 2:
            return
        fin, opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", reader.read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", reader.read(8))[0]
        if head[1] & 0x80:
            reader.read(4)  # a masked server frame would be a protocol error; skip the key
        payload = reader.read(length)
        if opcode == 8:
            return
        if opcode in (0, 1, 2):
            message += payload
            if fin:
                if message:
                    yield message[0], bytes(message[1:])
                message = bytearray()


def ready_pod(kube: Kube, namespace: str, release: str, component: str) -> str:
    sel = urllib.parse.quote(f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}")
    for pod in kube.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={sel}").get("items", []):
        st = pod.get("status") or {}
        if st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or []) \
                and not pod["metadata"].get("deletionTimestamp"):
            return str(pod["metadata"]["name"])
    raise BackupError(f"no Ready pod of component {component} in {namespace}: is the stack running?")


def latest_release(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    sel = urllib.parse.quote(f"owner=helm,name={name},status=deployed")
    items = kube.get(f"/api/v1/namespaces/{namespace}/secrets?labelSelector={sel}").get("items", [])
    if not items:
        return None
    newest = max(items, key=lambda s: int((s["metadata"].get("labels") or {}).get("version", "0")))
    rec = helm_record(newest["data"]["release"])
    meta = rec["chart"]["metadata"]
    return {"release": name, "namespace": namespace, "revision": int(rec.get("version", 0)),
            "chart": meta["name"], "version": meta["version"], "appVersion": meta.get("appVersion", ""),
            "values": rec.get("config") or {}}


# GET url with headers -> (status, body, headers)
Fetch = Callable[[str, dict[str, str]], tuple[int, bytes, dict[str, str]]]


class Registry:
    """The registry's /v2 API in the cluster (plain HTTP to its Service) with the stack's credentials."""

    ACCEPT = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json"])
    INDEX = ("application/vnd.oci.image.index.v1+json",
             "application/vnd.docker.distribution.manifest.list.v2+json")

    def __init__(self, url: str, user: str, password: str, fetch: Fetch | None = None) -> None:
        self.url = url.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.fetch = fetch  # how `homeci backup` reaches the registry (a port-forward); else urllib

    def get(self, path: str, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
        headers = {"Authorization": self.auth, **({"Accept": accept} if accept else {})}
        if self.fetch is not None:
            status, body, answered = self.fetch(self.url + path, headers)
            if status != 200:
                raise BackupError(f"registry GET {path}: HTTP {status}")
            return body, {k.lower(): v for k, v in answered.items()}
        try:
            req = urllib.request.Request(self.url + path, headers=headers)
            with urllib.request.urlopen(req, timeout=300) as r:
                return r.read(), {k.lower(): v for k, v in r.getheaders()}
        except urllib.error.HTTPError as exc:
            raise BackupError(f"registry GET {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BackupError(f"registry GET {path}: {exc}") from None

    def dump(self, into: Path) -> list[str]:
        blobs = into / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)

        def store(data: bytes, digest: str) -> None:
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                raise BackupError(f"registry sent content that does not match {digest}")
            (blobs / digest.split(":", 1)[1]).write_bytes(data)

        def manifest(repo: str, ref: str) -> tuple[str, str]:
            body, headers = self.get(f"/v2/{repo}/manifests/{ref}", self.ACCEPT)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            store(body, digest)
            doc = json.loads(body)
            media = str(doc.get("mediaType") or headers.get("content-type", "").split(";")[0])
            children = doc.get("manifests") or [] if media in self.INDEX else []
            for child in children:
                if not (blobs / child["digest"].split(":", 1)[1]).exists():
                    manifest(repo, child["digest"])
            if media not in self.INDEX:
                for desc in [doc.get("config"), *(doc.get("layers") or [])]:
                    if desc and not (blobs / desc["digest"].split(":", 1)[1]).exists():
                        store(self.get(f"/v2/{repo}/blobs/{desc['digest']}")[0], desc["digest"])
            return digest, media

        index: dict[str, Any] = {"repositories": {}}
        repos: list[str] = []
        page = "/v2/_catalog?n=500"  # the registry refuses pages above 1000
        while page:
            body, headers = self.get(page)
            repos += json.loads(body).get("repositories") or []
            link = headers.get("link", "")
            page = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
        for repo in sorted(repos):
            for tag in sorted(json.loads(self.get(f"/v2/{repo}/tags/list")[0]).get("tags") or []):
                digest, media = manifest(repo, tag)
                index["repositories"].setdefault(repo, {})[tag] = {"digest": digest, "mediaType": media}
        (into / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        return sorted(f"{r}:{t}" for r, tags in index["repositories"].items() for t in tags)


def run(kube: Kube, env: dict[str, str], log: Callable[[str], None]) -> Path:
    ns, rel = env["BACKUP_NAMESPACE"], env["BACKUP_RELEASE"]
    dest_dir = Path(env.get("BACKUP_DIR", "/backup"))
    stamp = dt.datetime.now(dt.UTC)
    dest = dest_dir / f"homeci-backup-{stamp:%Y%m%d-%H%M%S}.tar.gz"
    umbrella = latest_release(kube, ns, rel)
    if umbrella is None:
        raise BackupError(f"no deployed Helm release {rel} in {ns}")
    pipelines = latest_release(kube, ns, env.get("BACKUP_PIPELINES_RELEASE", "homeci-pipelines"))
    contents: dict[str, Any] = {"apps": "left out (scheduled backup: no access to other namespaces)"}
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=dest_dir) as tmp:
        staging = Path(tmp)

        def member(name: str) -> Path:
            p = staging / name
            p.parent.mkdir(parents=True, exist_ok=True)
            return p

        def put_json(name: str, data: Any) -> None:
            member(name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

        log("Secrets and Helm values")
        secrets = [clean({**s, "apiVersion": "v1", "kind": "Secret"})
                   for s in kube.get(f"/api/v1/namespaces/{ns}/secrets").get("items", []) if keep_secret(s)]
        secrets.sort(key=lambda s: str(s["metadata"]["name"]))
        put_json("kubernetes/secrets.json", secrets)
        contents["secrets"] = [s["metadata"]["name"] for s in secrets]
        put_json(f"helm/{rel}.json", {**umbrella, "role": "umbrella"})
        charts = {rel: {"chart": umbrella["chart"], "version": umbrella["version"]}}
        if pipelines is not None:
            put_json(f"helm/{pipelines['release']}.json", {**pipelines, "role": "pipelines"})
            charts[pipelines["release"]] = {"chart": pipelines["chart"], "version": pipelines["version"]}

        gogs = ready_pod(kube, ns, rel, "git")
        log(f"Gogs: gogs backup --database-only in {gogs}")
        with member("gogs/database.zip").open("wb") as f:
            kube.exec(ns, gogs, "gogs", ["sh", "-c", GOGS_DUMP], f)
        with member("gogs/files.tar").open("wb") as f:
            kube.exec(ns, gogs, "gogs", ["sh", "-c", GOGS_TAR], f)
        with tarfile.open(member("gogs/files.tar")) as tar:
            parts = [m.name.split("/") for m in tar.getmembers() if m.isdir()]
        contents["gogsRepositories"] = repositories(parts)
        drone = ready_pod(kube, ns, rel, "ci-server")
        db = ((umbrella["values"].get("drone") or {}).get("server") or {}).get("database") or {}
        if db.get("type", "sqlite3") == "sqlite3":
            log(f"Drone: SQLite online backup in {drone}")
            with member("drone/database.sqlite").open("wb") as f:
                kube.exec(ns, drone, "gogs-bridge", ["python3", "-c", DRONE_DUMP], f)
            import sqlite3

            con = sqlite3.connect(f"file:{member('drone/database.sqlite')}?mode=ro", uri=True)
            contents["droneBuilds"] = int(con.execute("select count(*) from builds").fetchone()[0])
            contents["droneActiveRepositories"] = int(
                con.execute("select count(*) from repos where repo_active").fetchone()[0])
            con.close()
        else:
            contents["droneDatabase"] = "external PostgreSQL: back it up with its own tools"
        with member("drone/files.tar").open("wb") as f:
            kube.exec(ns, drone, "gogs-bridge", ["python3", "-c", DRONE_TAR], f)

        if env.get("BACKUP_REGISTRY", "true") == "true":
            log("registry: images through its API")
            auth = next((s for s in secrets if s["metadata"]["name"] == f"{rel}-registry-auth"), None)
            if auth is None:
                raise BackupError(f"Secret {rel}-registry-auth not found: set backup.registry=false")
            data = {k: base64.b64decode(v).decode() for k, v in (auth.get("data") or {}).items()}
            reg = Registry(env["BACKUP_REGISTRY_URL"], data.get("username", ""), data.get("password", ""))
            contents["registryImages"] = reg.dump(staging / "registry")
        else:
            contents["registryImages"] = "left out (backup.registry=false)"

        deps = kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments?labelSelector="
                        + urllib.parse.quote(f"app.kubernetes.io/instance={rel}")).get("items", [])
        components = {d["metadata"]["labels"].get("app.kubernetes.io/component", "?"):
                      d["metadata"]["labels"].get("app.kubernetes.io/version", "") for d in deps}
        version = kube.get("/version").get("gitVersion", "")
        manifest = {"created": f"{stamp:%Y-%m-%dT%H:%M:%SZ}",
                    "homeciVersion": env.get("BACKUP_HOMECI_VERSION", ""),
                    "source": {"release": rel, "namespace": ns, "server": f"https://{kube.netloc}",
                               "kubernetesVersion": version, "scheduled": True,
                               "pipelinesRelease": pipelines["release"] if pipelines else None},
                    "components": components, "charts": charts, "contents": contents}
        log(f"writing {dest}")
        pack(staging, manifest, dest)
    return dest


def repositories(parts: list[list[str]]) -> list[str]:
    """``owner/name`` of every repository folder among the split member paths of Gogs' files tar."""
    return sorted({f"{p[2]}/{p[3].removesuffix('.git')}" for p in parts
                   if len(p) == 4 and p[:2] == ["git", "gogs-repositories"] and p[3].endswith(".git")})


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` archives (and leftovers of interrupted runs)."""
    archives = sorted(directory.glob("homeci-backup-*.tar.gz"))
    gone = archives[:-keep] if keep > 0 else []
    gone += list(directory.glob("homeci-backup-*.tar.gz.partial"))
    for p in gone:
        p.unlink()
    for p in directory.glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)
    return gone


def main() -> int:
    start = time.monotonic()

    def log(line: str) -> None:
        print(f"backup: {time.monotonic() - start:6.1f}s {line}", flush=True)

    env = dict(os.environ)
    host = env.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    try:
        kube = Kube(host, int(env.get("KUBERNETES_SERVICE_PORT", "443")), (SA / "token").read_text().strip(),
                    str(SA / "ca.crt"))
        dest = run(kube, env, log)
        gone = prune(dest.parent, int(env.get("BACKUP_KEEP", "7")))
    except (BackupError, OSError, KeyError, ValueError) as exc:
        print(f"backup: error: {exc}", file=sys.stderr, flush=True)
        return 1
    log(f"done: {dest} ({dest.stat().st_size / 1e6:.1f} MB); removed {len(gone)} older archive(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
