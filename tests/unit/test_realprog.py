"""homeci_testing.realprog: the loopback pod materialiser, the process wrapper and the Traefik resolver."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

import pytest

from homeci import manifests
from homeci.errors import HomeciError
from homeci_testing import realprog
from homeci_testing.realprog import LoopbackPod, Program

OBJECTS = """
apiVersion: v1
kind: Secret
metadata: {name: app-config}
data:
  app.ini: APP_INI
  other: OTHER
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-ca}
data:
  ca.crt: PEM
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  template:
    spec:
      containers:
        - name: main
          args: [--config=/etc/app/app.ini, --data=/data/app/data]
          env:
            - {name: HOME, value: /data/home}
            - {name: KEY, valueFrom: {secretKeyRef: {name: app-config, key: other}}}
            - {name: DERIVED, value: "$(HOME)/x"}
            - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
          volumeMounts:
            - {name: config, mountPath: /etc/app, readOnly: true}
            - {name: data, mountPath: /data}
            - {name: ca, mountPath: /etc/ssl/certs/app-ca.crt, subPath: ca.crt}
      volumes:
        - name: config
          secret: {secretName: app-config, items: [{key: app.ini, path: app.ini}]}
        - {name: data, persistentVolumeClaim: {claimName: app-data}}
        - name: ca
          configMap: {name: app-ca}
""".replace(
    "APP_INI", base64.b64encode(b"PATH = /data/app/data/db\nROOT = /srv/data\nLOG = /database/x\n").decode()
).replace("OTHER", base64.b64encode(b"s3cret").decode())


@pytest.fixture
def pod(tmp_path: Path) -> LoopbackPod:
    return LoopbackPod(manifests.parse(OBJECTS), "Deployment", "app", "main", tmp_path)


def test_volumes_are_materialised(pod: LoopbackPod, tmp_path: Path) -> None:
    assert (tmp_path / "volumes" / "config" / "app.ini").read_text().startswith("PATH = /data/app")
    assert not (tmp_path / "volumes" / "config" / "other").exists(), "items limit the files"
    assert (tmp_path / "volumes" / "data").is_dir()
    assert pod.host_path("/etc/ssl/certs/app-ca.crt").read_text() == "PEM"


def test_rewrite_replaces_whole_path_starts_only(pod: LoopbackPod, tmp_path: Path) -> None:
    text = pod.rewrite((tmp_path / "volumes" / "config" / "app.ini").read_text())
    assert f"PATH = {tmp_path}/volumes/data/app/data/db" in text
    assert "ROOT = /srv/data" in text and "LOG = /database/x" in text
    assert pod.rewrite("--config=/etc/app/app.ini") == f"--config={tmp_path}/volumes/config/app.ini"


def test_env_resolves_secrets_and_expansion(pod: LoopbackPod) -> None:
    env = pod.env()
    assert env["KEY"] == "s3cret"
    assert env["DERIVED"] == "/data/home/x"
    assert "NODE" not in env


def test_missing_objects_are_named(tmp_path: Path) -> None:
    objs = [m for m in manifests.parse(OBJECTS) if m.kind != "ConfigMap"]
    with pytest.raises(HomeciError, match="ConfigMap/app-ca"):
        LoopbackPod(objs, "Deployment", "app", "main", tmp_path)
    with pytest.raises(HomeciError, match="no container named 'nope'"):
        LoopbackPod(manifests.parse(OBJECTS), "Deployment", "app", "nope", tmp_path)


def test_program_reports_early_exit_with_log(tmp_path: Path) -> None:
    code = "print('bad config'); raise SystemExit(3)"
    prog = Program("boom", [sys.executable, "-c", code], log_dir=tmp_path)
    prog.start()
    with pytest.raises(HomeciError, match=r"boom exited with 3 .*bad config"):
        prog.wait_ready(lambda: False, timeout=10)
    prog.stop()


def test_program_stop_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    with Program("sleeper", [sys.executable, "-c", script], log_dir=tmp_path) as prog:
        prog.wait_ready(lambda: pid_file.is_file() and pid_file.read_text() != "", timeout=10)
        assert prog.running
        child = int(pid_file.read_text())
    assert not prog.running
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        try:
            if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
                return  # a zombie awaiting its (dead) parent's reaper: not running
        except FileNotFoundError:
            return
        time.sleep(0.1)
    pytest.fail(f"the grandchild {child} survived Program.stop()")


def test_traefik_binary_is_the_packaged_one() -> None:
    path = realprog.traefik_binary()
    assert path.name == "traefik" and path.is_file()


def test_free_port_is_bindable() -> None:
    import socket

    port = realprog.free_port()
    with socket.socket() as s:
        s.bind((realprog.LOOPBACK, port))
