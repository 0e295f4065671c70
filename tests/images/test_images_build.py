"""Building real images from the toolchain's binaries: the cluster's pause and CoreDNS images are
deterministic, carry the config and files the cluster relies on, and import into a throwaway
containerd with ``ctr images import`` (where root, containerd and ctr are available); containers
started from them by that containerd (runc) honour the image config.

Nothing here builds a toolchain binary: a test whose binary is not in the cache skips and says how to
build it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeci import images, paths, toolchain
from homeci.errors import HomeciError
from homeci.images import oci


def _cached_tool(name: str) -> Path:
    try:
        return toolchain.resolve(name)
    except HomeciError as exc:
        pytest.skip(f"toolchain binary {name} is not built ({exc}); run `homeci toolchain install {name}`")


@pytest.fixture
def image_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh image cache; the toolchain stays where it is."""
    monkeypatch.setenv("HOMECI_TOOLCHAIN", str(paths.toolchain_dir()))
    monkeypatch.setenv("HOMECI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def test_pause_image_is_deterministic_and_valid(image_cache: Path) -> None:
    _cached_tool("pause")
    first = images.build([images.PAUSE_IMAGE])[images.PAUSE_IMAGE]
    assert first.parent.parent == image_cache
    assert first.name == f"{images.digest(images.require(images.PAUSE_IMAGE))}.tar"
    data = first.read_bytes()
    again = images.build([images.PAUSE_IMAGE], force=True)[images.PAUSE_IMAGE]
    assert again.read_bytes() == data, "two builds of the same recipe differ"
    info = oci.read_archive(first)
    assert info["index"]["manifests"][0]["annotations"][oci.NAME_ANNOTATION] == images.PAUSE_IMAGE
    config = info["config"]["config"]
    assert config["Entrypoint"] == ["/pause"] and config["User"] == "65535:65535"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "3.10.2"
    assert "from source" in labels["io.homeci.image.built-by"]
    assert "toolchain pause 3.10.2" in labels["io.homeci.image.pins"]
    assert list(oci.iter_layer_names(first)) == ["pause"]


def test_coredns_image_runs_as_nonroot_with_its_files(image_cache: Path) -> None:
    _cached_tool("coredns")
    archive = images.build([images.COREDNS_IMAGE])[images.COREDNS_IMAGE]
    info = oci.read_archive(archive)
    config = info["config"]["config"]
    assert config["Entrypoint"] == ["/coredns"]
    assert config["User"] == "65532:65532"  # numeric: kubelet can check runAsNonRoot
    assert set(config["ExposedPorts"]) == {"53/tcp", "53/udp"}
    names = set(oci.iter_layer_names(archive))
    assert {"coredns", "etc/passwd", "etc/group", "tmp", "etc/ssl/certs"} <= names


def test_a_mirror_name_gets_its_own_archive(image_cache: Path) -> None:
    _cached_tool("pause")
    mirrored = "mirror.lan:5000/pause:3.10.2"
    built = images.build([mirrored, images.PAUSE_IMAGE])
    assert set(built) == {mirrored, images.PAUSE_IMAGE}
    mirror_info = oci.read_archive(built[mirrored])
    upstream_info = oci.read_archive(built[images.PAUSE_IMAGE])
    assert mirror_info["index"]["manifests"][0]["annotations"][oci.NAME_ANNOTATION] == mirrored
    assert mirror_info["manifest"] == upstream_info["manifest"]  # the same image under another name


# --- ctr import into a throwaway containerd ---------------------------------------------------


HOST_RUN = Path("/run/containerd")  # containerd's fixed place for shim sockets and runc state


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(ctr binary, socket) of a containerd with its own root, state, socket, /run and no CRI/NRI, so it
    shares nothing with a cluster on this machine and leaves nothing on the host."""
    if os.geteuid() != 0:
        pytest.skip("a throwaway containerd needs root")
    daemon, ctr = _cached_tool("containerd"), _cached_tool("ctr")
    host_run_before = HOST_RUN.exists()
    base = Path(os.environ.get("HOMECI_TEST_TMP", "/tmp")) / f"homeci-ctr-{os.getpid()}"
    base.mkdir(parents=True, exist_ok=True)  # short path: unix sockets allow ~100 bytes
    sock = base / "c.sock"
    config = tmp_path / "containerd.toml"
    config.write_text(
        "version = 3\n"
        f"root = '{base}/root'\nstate = '{base}/state'\n"
        "disabled_plugins = ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.runtime', "
        "'io.containerd.cri.v1.images', 'io.containerd.nri.v1.nri', "
        "'io.containerd.podsandbox.controller.v1.podsandbox']\n"
        f"[plugins.'io.containerd.internal.v1.opt']\n  path = '{base}/opt'\n"
        f"[plugins.'io.containerd.server.v1.grpc']\n  address = '{sock}'\n"
        f"[plugins.'io.containerd.server.v1.ttrpc']\n  address = '{sock}.ttrpc'\n"
    )
    log = (tmp_path / "containerd.log").open("w")
    # The shim and runc come from the toolchain when built (only `ctr run` needs them).
    bins = [str(toolchain.tool(n).cached_path.parent) for n in ("containerd-shim-runc-v2", "runc")]
    env = {**os.environ, "PATH": os.pathsep.join([*bins, os.environ.get("PATH", "")])}
    # containerd puts shim sockets under /run/containerd/s and runc's state under /run/containerd/runc
    # whatever its own state directory: a private mount namespace with its own /run keeps them off the host.
    # ctr's FIFOs go to base/fifo (ctr runs on the host; both see /tmp).
    start = 'mount -t tmpfs -o mode=755 homeci-run /run && exec "$0" --config "$1"'
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", start, str(daemon),
                             str(config)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("throwaway containerd did not start: "
                            + (tmp_path / "containerd.log").read_text()[-800:])
            time.sleep(0.1)
        yield ctr, sock
    finally:
        for task in _ctr_out(ctr, sock, "tasks", "list", "-q").split():  # whatever a test left running
            _ctr_out(ctr, sock, "tasks", "kill", "-s", "SIGKILL", task)
            for _ in range(50):
                if task not in _ctr_out(ctr, sock, "tasks", "list", "-q").split():
                    break
                time.sleep(0.1)
            _ctr_out(ctr, sock, "tasks", "delete", "-f", task)
        for container in _ctr_out(ctr, sock, "containers", "list", "-q").split():
            _ctr_out(ctr, sock, "containers", "delete", container)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["rm", "-rf", str(base)], check=False)
    left = HOST_RUN.exists() and not host_run_before
    assert not left, f"the throwaway containerd left {HOST_RUN} on the host: {sorted(os.listdir(HOST_RUN))}"


def _ctr(ctr: Path, sock: Path, *args: str) -> str:
    done = subprocess.run([str(ctr), "--address", str(sock), "--namespace", "k8s.io", *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"ctr {' '.join(args)} failed: {done.stderr.strip()[-600:]}"
    return done.stdout


def _ctr_out(ctr: Path, sock: Path, *args: str) -> str:
    """ctr for clean-up: never fails."""
    done = subprocess.run([str(ctr), "--address", str(sock), "--namespace", "k8s.io", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return done.stdout


@pytest.mark.parametrize("ref", [images.PAUSE_IMAGE, images.COREDNS_IMAGE])
def test_ctr_imports_and_unpacks_the_cluster_images(ref: str, image_cache: Path,
                                                     containerd: tuple[Path, Path]) -> None:
    ctr, sock = containerd
    _cached_tool(images.require(ref).tools[0])
    archive = images.build([ref])[ref]
    _ctr(ctr, sock, "images", "import", str(archive))
    listed = _ctr(ctr, sock, "images", "list", "-q").split()
    assert ref in listed, f"ctr did not import {ref}: {listed}"
    check = _ctr(ctr, sock, "images", "check", f"name=={ref}")
    assert "complete" in check and "true" in check.split()[-1], check  # all blobs present, unpacked
    digest = oci.read_archive(archive)["index"]["manifests"][0]["digest"]
    assert digest in _ctr(ctr, sock, "images", "list", f"name=={ref}")


def test_containers_start_with_the_image_config(containerd: tuple[Path, Path]) -> None:
    """The runtime honours the config: the placeholder idles whatever command the runner gives it and
    stops on SIGTERM; the clone image runs as its configured user. (`--cgroup ""`: no host cgroup is
    touched. Uses the real image cache: these images need the Debian base.)"""
    ctr, sock = containerd
    for name in ("containerd-shim-runc-v2", "runc", "pause"):
        _cached_tool(name)
    if not (images.is_cached("drone/git:1.2.1") or shutil.which("debootstrap")):
        pytest.skip("these images need a Debian layer; debootstrap is missing: `apt-get install debootstrap`")
    built = images.build(["drone/placeholder:1", "drone/git:1.2.1"])
    for archive in built.values():
        _ctr(ctr, sock, "images", "import", str(archive))
    placeholder = "docker.io/drone/placeholder:1"
    fifo = f"--fifo-dir={sock.parent / 'fifo'}"
    _ctr(ctr, sock, "run", "-d", fifo, "--cgroup", "", placeholder, "idle", "/bin/sh", "-c",
         'echo "$X" | /bin/sh')
    time.sleep(1.5)
    tasks = _ctr(ctr, sock, "tasks", "list")
    assert "idle" in tasks and "RUNNING" in tasks, f"the placeholder did not keep running: {tasks}"
    _ctr(ctr, sock, "tasks", "kill", "-s", "SIGTERM", "idle")  # the image swap stops it this way
    for _ in range(50):
        if "RUNNING" not in _ctr(ctr, sock, "tasks", "list"):
            break
        time.sleep(0.1)
    assert "RUNNING" not in _ctr(ctr, sock, "tasks", "list"), "the placeholder ignored SIGTERM"
    uid = _ctr(ctr, sock, "run", "--rm", fifo, "--cgroup", "", "docker.io/drone/git:1.2.1", "uid", "id",
               "-un")
    assert uid.strip() == "drone", f"drone/git runs as {uid.strip()!r}, not its configured user drone (1000)"
