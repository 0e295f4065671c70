"""The uids the charts run their programs as (checkov CKV_K8S_40: >= 10000), proven with the real programs in
their images: the registry, the Drone server and the runner run as the pod's runAsUser/runAsGroup with
the pod's fsGroup as their only extra group (`chroot --userspec --groups`), configured from the
default render, with every volume of the pod owned the way the kubelet owns it for that fsGroup
(root:<fsGroup>, group-writable and setgid for emptyDir/PVC, group-readable for Secrets/ConfigMaps) and
no passwd entry for the uid. And Gogs' exception: ssh-keygen, which Gogs runs, refuses a uid without
a passwd entry, so Gogs keeps the image's git user (1000).

Needs root, chroot and the toolchain binaries (the images are built from them); skips saying what is
missing, like the other image tests."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_images_content import CHROOT, Unpacked, unpack

from homeci import rendering
from homeci.manifests import Manifest
from homeci_testing import realprog
from homeci_testing.realprog import LOOPBACK, LoopbackPod, Program
from homeci_testing.support import KUBE_VERSION, RELEASE, UMBRELLA

HIGH_UID = 10000
REGISTRY = "docker.io/library/registry:3.1.2"
DRONE = "docker.io/drone/drone:2.28.2"
RUNNER = "docker.io/drone/drone-runner-kube:1.0.0-rc.5"
GOGS = "docker.io/gogs/gogs:next-0.14.3"


@pytest.fixture(scope="module")
def rendered() -> list[Manifest]:
    """The default render plus what the certificate hook writes (the CA ConfigMap and Secrets pods mount)."""
    from homeci_testing.certs import with_certificates

    return with_certificates(rendering.render(UMBRELLA, [UMBRELLA / "ci" / "default-values.yaml"],
                                              kube_version=KUBE_VERSION))


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int
    fs_group: int

    @property
    def chroot_user(self) -> list[str]:
        return [f"--userspec={self.uid}:{self.gid}", f"--groups={self.fs_group}"]


def pod_ids(pod: LoopbackPod) -> Ids:
    """The container's effective runAsUser/runAsGroup and the pod's fsGroup; all >= 10000 (the claim)."""
    pod_sc = pod.spec.get("securityContext") or {}
    sc = {**pod_sc, **(pod.container.get("securityContext") or {})}
    ids = Ids(int(sc["runAsUser"]), int(sc["runAsGroup"]), int(pod_sc.get("fsGroup", sc["runAsGroup"])))
    assert min(ids.uid, ids.gid, ids.fs_group) >= HIGH_UID, f"{pod.ref} runs as {ids}, not ids >= {HIGH_UID}"
    return ids


def install_volumes(pod: LoopbackPod, root: Path, fs_group: int) -> None:
    """Put each volume of ``pod`` (materialised by LoopbackPod) at its mount path inside the image ``root``,
    owned as the kubelet owns a volume of a pod with ``fs_group``: root:<fsGroup>; emptyDir/PVC folders
    group-writable and setgid (no access for others); Secret/ConfigMap files group-readable."""
    volumes = {v["name"]: v for v in pod.spec.get("volumes") or []}
    for mount in pod.container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        writable = "emptyDir" in volume or "persistentVolumeClaim" in volume
        source = pod.mounts[mount["mountPath"].rstrip("/") or "/"]
        target = root / mount["mountPath"].lstrip("/")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
        for path in [target, *target.rglob("*")] if target.is_dir() else [target]:
            os.chown(path, 0, fs_group)
            if path.is_dir():
                path.chmod(0o2770 if writable else 0o2750)
            else:
                path.chmod(0o660 if writable else 0o640)


def chrooted(name: str, img: Unpacked, ids: Ids, argv: list[str], env: dict[str, str],
             log_dir: Path) -> Program:
    return Program(name, [CHROOT, *ids.chroot_user, str(img.root), *argv], log_dir=log_dir, env=env)


def owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    return tmp_path / "images"


def test_registry_stores_blobs_as_its_uid(rendered: list[Manifest], image_root: Path, tmp_path: Path) -> None:
    img = Unpacked(unpack(REGISTRY, image_root / "registry"))
    pod = LoopbackPod(rendered, "Deployment", f"{RELEASE}-registry", "registry", tmp_path / "pod")
    ids = pod_ids(pod)
    install_volumes(pod, img.root, ids.fs_group)
    config_arg = next(a for a in pod.args if a.endswith((".yml", ".yaml")))
    config_file = img.root / config_arg.lstrip("/")
    config = yaml.safe_load(config_file.read_text())
    port = realprog.free_port()
    config["http"]["addr"] = f"{LOOPBACK}:{port}"  # rewritten: the in-cluster port may be taken here
    if (config["http"].get("debug") or {}).get("addr"):
        config["http"]["debug"]["addr"] = f"{LOOPBACK}:{realprog.free_port()}"
    config_file.write_text(yaml.safe_dump(config))
    storage = Path(config["storage"]["filesystem"]["rootdirectory"])
    auth = pod.data("Secret", f"{RELEASE}-registry-auth")
    basic = base64.b64encode(auth["username"] + b":" + auth["password"]).decode()
    with chrooted("registry", img, ids, ["/bin/registry", *pod.args], pod.env(), tmp_path / "logs") as prog:
        url = f"http://{LOOPBACK}:{port}"
        prog.wait_ready(realprog.http_check(f"{url}/v2/", statuses=(401,)), timeout=30, what="answering /v2/")
        blob = b"uid check " * 100
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        start = urllib.request.Request(f"{url}/v2/uid-check/blobs/uploads/", method="POST",
                                       headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(start, timeout=10) as resp:
            # the Location names the public host (http.host): keep its path and query, go to loopback
            where = urllib.parse.urlsplit(resp.headers["Location"])
        location = f"{url}{where.path}?{where.query}"
        upload = urllib.request.Request(f"{location}{'&' if where.query else ''}digest={digest}",
                                        data=blob, method="PUT",
                                        headers={"Authorization": f"Basic {basic}",
                                                 "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(upload, timeout=10) as resp:
            assert resp.status == 201, f"{pod.ref}: blob upload as uid {ids.uid} answered {resp.status}"
    blobs = img.root / storage.relative_to("/") / "docker/registry/v2/blobs/sha256"
    stored = blobs / digest[7:9] / digest[7:] / "data"
    assert stored.read_bytes() == blob, f"{pod.ref}: the blob is not in {storage}; log {prog.log_tail()}"
    assert owner(stored) == (ids.uid, ids.fs_group), (
        f"{pod.ref}: the blob was written as {owner(stored)}, expected uid {ids.uid} in group {ids.fs_group}"
    )


def test_drone_server_and_runner_run_as_their_uid(rendered: list[Manifest], image_root: Path,
                                                  tmp_path: Path) -> None:
    """The server creates its SQLite database on the fsGroup-owned /data volume and serves /healthz; the
    runner (in-cluster config from a ServiceAccount volume as the kubelet writes it) reaches it over RPC."""
    server_img = Unpacked(unpack(DRONE, image_root / "drone"))
    runner_img = Unpacked(unpack(RUNNER, image_root / "runner"))
    server = LoopbackPod(rendered, "Deployment", f"{RELEASE}-drone", "drone", tmp_path / "server")
    runner = LoopbackPod(rendered, "Deployment", f"{RELEASE}-drone-runner", "runner", tmp_path / "runner")
    server_ids, runner_ids = pod_ids(server), pod_ids(runner)
    install_volumes(server, server_img.root, server_ids.fs_group)
    install_volumes(runner, runner_img.root, runner_ids.fs_group)
    port = realprog.free_port()
    server_env = {**server.env(), "DRONE_SERVER_PORT": f"{LOOPBACK}:{port}"}  # rewritten: free port
    # The runner's view of the cluster: the Service name resolves to loopback (the image's /etc/hosts),
    # its port is the server's; the kubelet's in-cluster variables and ServiceAccount files (mode 0644).
    service = f"{RELEASE}-drone.{rendering.DEFAULT_NAMESPACE}.svc"
    (runner_img.root / "etc/hosts").write_text(f"127.0.0.1 localhost {service}\n")
    account = runner_img.root / "var/run/secrets/kubernetes.io/serviceaccount"
    account.mkdir(parents=True)
    for name, text in (("token", "t"), ("namespace", rendering.DEFAULT_NAMESPACE), ("ca.crt", "")):
        (account / name).write_text(text)
        (account / name).chmod(0o644)
    runner_env = {**runner.env(), "DRONE_RPC_HOST": f"{service}:{port}",
                  "KUBERNETES_SERVICE_HOST": LOOPBACK, "KUBERNETES_SERVICE_PORT": "1"}
    assert runner.env()["DRONE_RPC_HOST"] == service, f"{runner.ref} DRONE_RPC_HOST"
    with chrooted("drone", server_img, server_ids, ["/bin/drone-server", *server.args], server_env,
                  tmp_path / "logs") as drone:
        drone.wait_ready(realprog.http_check(f"http://{LOOPBACK}:{port}/healthz"), timeout=60,
                         what="answering /healthz")
        database = server_img.root / "data" / "database.sqlite"
        assert owner(database) == (server_ids.uid, server_ids.fs_group), (
            f"{server.ref}: /data/database.sqlite is owned by {owner(database)}, expected uid "
            f"{server_ids.uid} in group {server_ids.fs_group}"
        )
        with chrooted("runner", runner_img, runner_ids, ["/bin/drone-runner-kube", *runner.args], runner_env,
                      tmp_path / "logs") as proc:
            proc.wait_ready(lambda: "successfully pinged the remote server" in proc.log_path.read_text(),
                            timeout=30, what="pinging the Drone server over RPC")


def test_gogs_ssh_keygen_needs_a_passwd_entry(image_root: Path) -> None:
    """Why Gogs stays uid 1000: Gogs runs ssh-keygen for its SSH host key and to fingerprint every SSH key a
    user adds; ssh-keygen refuses any uid the image's /etc/passwd does not list (only git, 1000)."""
    img = Unpacked(unpack(GOGS, image_root / "gogs"))
    tmp = img.root / "tmp"
    tmp.chmod(0o1777)
    as_git = img.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/tmp/git-key", user="1000:1000")
    assert as_git.returncode == 0 and (tmp / "git-key.pub").is_file(), f"ssh-keygen as git: {as_git.stderr}"
    assert img.run("ssh-keygen", "-lf", "/tmp/git-key.pub", user="1000:1000").returncode == 0
    for argv in (("-q", "-t", "ed25519", "-N", "", "-f", "/tmp/high-key"), ("-lf", "/tmp/git-key.pub")):
        high = img.run("ssh-keygen", *argv, user="65532:65532")
        assert high.returncode != 0 and "No user exists for uid 65532" in high.stderr, (
            f"ssh-keygen {' '.join(argv)} as uid 65532 (no passwd entry) was expected to fail: "
            f"rc {high.returncode}, {high.stderr.strip()!r}; if it works now, Gogs may run as a high uid"
        )
