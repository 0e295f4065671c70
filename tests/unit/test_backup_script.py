"""The chart's backup script (files/backup.py, run by the scheduled-backup CronJob): against a fake API
server it writes an archive that `homeci restore` accepts, with the same members `homeci backup`
writes; its WebSocket exec reader handles fragmented and long frames; old archives are pruned."""

from __future__ import annotations

import base64
import gzip
import io
import json
import sqlite3
import struct
import tarfile
from pathlib import Path
from typing import IO, Any

import pytest

from homeci.backup import archive
from homeci.backup.script import SCRIPT


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _helm_secret(name: str, chart: str, values: dict[str, Any], version: int) -> dict[str, Any]:
    record = {"name": name, "version": version, "config": values,
              "chart": {"metadata": {"name": chart, "version": "0.1.0", "appVersion": "0.1.0"}}}
    blob = _b64(_b64(gzip.compress(json.dumps(record).encode())).encode())
    return {"metadata": {"name": f"sh.helm.release.v1.{name}.v{version}",
                         "labels": {"owner": "helm", "name": name, "status": "deployed",
                                    "version": str(version)}},
            "type": "helm.sh/release.v1", "data": {"release": blob}}


def _sqlite(tmp: Path) -> bytes:
    db = tmp / "drone.sqlite"
    con = sqlite3.connect(db)
    con.executescript("create table builds (id integer); insert into builds values (1), (2);"
                      "create table repos (repo_active boolean); insert into repos values (1);")
    con.commit()
    con.close()
    return db.read_bytes()


def _tar(members: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class FakeKube:
    def __init__(self, tmp: Path) -> None:
        self.netloc = "10.96.0.1:443"
        self.execs: list[tuple[str, str, str]] = []
        self.outputs = {
            "GOGS_DUMP": b"PK-fake-gogs-dump",
            "GOGS_TAR": _tar({"git/gogs-repositories/alice/app.git/HEAD": b"ref: refs/heads/main\n"},
                             dirs=("git/gogs-repositories/alice", "git/gogs-repositories/alice/app.git")),
            "DRONE_DUMP": _sqlite(tmp),
            "DRONE_TAR": _tar({"gogs-bridge/tokens.json": b"{}"}),
        }

    def get(self, path: str) -> Any:
        if path.startswith("/api/v1/namespaces/homeci/secrets?"):
            owner = "owner%3Dhelm%2Cname%3Dhomeci%2C" in path
            return {"items": [_helm_secret("homeci" if owner else "homeci-pipelines",
                                           "homeci-umbrella" if owner else "drone-pipelines", {}, 3)]}
        if path == "/api/v1/namespaces/homeci/secrets":
            return {"items": [
                {"metadata": {"name": "homeci-ca", "uid": "x", "resourceVersion": "1",
                              "annotations": {"helm.sh/resource-policy": "keep"}},
                 "type": "kubernetes.io/tls",
                 "data": {"tls.crt": _b64(b"cert")}},
                _helm_secret("homeci", "homeci-umbrella", {}, 3),
                {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"}]}
        if path.startswith("/api/v1/namespaces/homeci/pods?"):
            comp = "git" if "component%3Dgit" in path else "ci-server"
            return {"items": [{"metadata": {"name": f"{comp}-pod"},
                               "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}}]}
        if path.startswith("/apis/apps/v1/namespaces/homeci/deployments"):
            return {"items": [{"metadata": {"labels": {"app.kubernetes.io/component": "git",
                                                       "app.kubernetes.io/version": "0.14.3"}}}]}
        if path == "/version":
            return {"gitVersion": "v1.37.2"}
        raise AssertionError(f"unexpected GET {path}")

    def exec(self, namespace: str, pod: str, container: str, command: list[str], out: IO[bytes]) -> None:
        which = next(k for k in self.outputs if command[-1] == getattr(SCRIPT, k))
        self.execs.append((pod, container, which))
        out.write(self.outputs[which])


def test_the_scheduled_backup_writes_an_archive_restore_accepts(tmp_path: Path) -> None:
    kube = FakeKube(tmp_path)
    env = {"BACKUP_NAMESPACE": "homeci", "BACKUP_RELEASE": "homeci", "BACKUP_DIR": str(tmp_path),
           "BACKUP_REGISTRY": "false", "BACKUP_HOMECI_VERSION": "0.1.0"}
    dest = SCRIPT.run(kube, env, lambda line: None)
    manifest = archive.read(dest, tmp_path / "out")
    assert sorted(manifest.files) == ["drone/database.sqlite", "drone/files.tar", "gogs/database.zip",
                                      "gogs/files.tar", "helm/homeci-pipelines.json", "helm/homeci.json",
                                      "kubernetes/secrets.json"]
    assert manifest.contents["secrets"] == ["homeci-ca"], "Helm records and token Secrets are left out"
    assert manifest.contents["gogsRepositories"] == ["alice/app"]
    assert (manifest.contents["droneBuilds"], manifest.contents["droneActiveRepositories"]) == (2, 1)
    secrets = json.loads((tmp_path / "out/kubernetes/secrets.json").read_text())
    assert "uid" not in secrets[0]["metadata"] and "resourceVersion" not in secrets[0]["metadata"]
    assert json.loads((tmp_path / "out/helm/homeci.json").read_text())["chart"] == "homeci-umbrella"
    assert ("git-pod", "gogs", "GOGS_DUMP") in kube.execs
    assert ("ci-server-pod", "gogs-bridge", "DRONE_DUMP") in kube.execs
    assert not list(tmp_path.glob(".staging-*")), "the staging folder is removed"


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        return head + bytes([n]) + payload
    if n < 1 << 16:
        return head + bytes([126]) + struct.pack(">H", n) + payload
    return head + bytes([127]) + struct.pack(">Q", n) + payload


def test_websocket_frames_fragmented_and_long() -> None:
    big = b"x" * 70000
    stream = (_frame(2, b"\x01hello ", fin=False) + _frame(0, b"world") + _frame(2, b"\x02" + b"e" * 300)
              + _frame(2, b"\x01" + big) + _frame(2, b'\x03{"status":"Success"}') + _frame(8, b""))
    got = list(SCRIPT._frames(io.BytesIO(stream)))
    assert got == [(1, b"hello world"), (2, b"e" * 300), (1, big), (3, b'{"status":"Success"}')]


@pytest.mark.parametrize("keep", [1, 3])
def test_prune_keeps_the_newest(tmp_path: Path, keep: int) -> None:
    names = [f"homeci-backup-2026120{i}-020000.tar.gz" for i in range(1, 6)]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "homeci-backup-20261206-020000.tar.gz.partial").write_bytes(b"x")
    SCRIPT.prune(tmp_path, keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == names[-keep:]
