"""What the charts run inside the images works: each image is built (into the image cache, from
toolchain binaries already built), unpacked, and its programs are run with chroot as the user the
charts use. Needs root (chroot, debootstrap); a missing toolchain binary or debootstrap skips and says
what to install."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from homeci import images, paths, toolchain
from homeci.errors import HomeciError
from homeci.images import oci

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
CHART_SCRIPTS = sorted(paths.charts_dir().rglob("files/*.py"))
PYTHON = "docker.io/library/python:3.13.14-alpine3.24"


def unpack(ref: str, dest: Path) -> Path:
    if os.geteuid() != 0 or not Path(CHROOT).exists():
        pytest.skip("running image content needs root and chroot")
    recipe = images.require(ref)
    for name in recipe.tools:
        try:
            toolchain.resolve(name)
        except HomeciError:
            pytest.skip(f"toolchain binary {name} is not built: run `homeci toolchain install {name}`")
    has_debootstrap = shutil.which("debootstrap") or Path("/usr/sbin/debootstrap").exists()
    if not images.is_cached(ref) and not has_debootstrap:
        pytest.skip(f"{ref} is not built and debootstrap is missing: `apt-get install debootstrap`")
    archive = images.build([ref])[images.normalize(ref)]
    info = oci.read_archive(archive)
    with tarfile.open(archive) as tar:
        for layer in info["manifest"]["layers"]:
            blob = tar.extractfile("blobs/sha256/" + layer["digest"].removeprefix("sha256:"))
            assert blob is not None
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read()))) as inner:
                inner.extractall(dest, numeric_owner=True, filter="fully_trusted")
    # a container runtime gives every container /dev/null; the chroot has to make its own (git opens it)
    (dest / "dev").mkdir(exist_ok=True)
    if not (dest / "dev" / "null").exists():
        os.mknod(dest / "dev" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod(dest / "dev" / "null", 0o666)
    return dest


class Unpacked:
    """An image's file system, unpacked; ``run`` starts a program in it with chroot."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *argv: str, user: str = "0:0") -> subprocess.CompletedProcess[str]:
        return subprocess.run([CHROOT, f"--userspec={user}", str(self.root), *argv], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/local/bin:/usr/bin:/bin"})


Opener = Callable[[str], Unpacked]


@pytest.fixture
def image(tmp_path: Path) -> Opener:
    return lambda ref: Unpacked(unpack(ref, tmp_path / "root"))


def test_python_stand_in_runs_every_chart_script_import(image: Opener) -> None:
    """The charts' scripts target Python 3.13.14; the stand-in is Debian's 3.13.5: every script compiles and
    every module it imports exists there (run as nobody, as the bootstrap Job does)."""
    img = image(PYTHON)
    assert CHART_SCRIPTS, "no chart scripts found"
    for script in CHART_SCRIPTS:
        shutil.copy(script, img.root / "tmp" / script.name)
        check = (
            "import ast, importlib, sys\n"
            f"src = open('/tmp/{script.name}').read()\n"
            "tree = ast.parse(src)\n"
            "compile(src, 'x', 'exec')\n"
            "mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}\n"
            "mods |= {n.module for n in ast.walk(tree)\n"
            "         if isinstance(n, ast.ImportFrom) and n.module and not n.level}\n"
            "[importlib.import_module(m) for m in sorted(mods)]\n"
        )
        done = img.run("python3", "-c", check, user="65534:65534")
        where = script.relative_to(paths.charts_dir())
        assert done.returncode == 0, f"{where} under the Python stand-in: {done.stderr}"
    assert img.run("python", "--version").returncode == 0  # upstream's image answers to `python` too


def test_clone_scripts_get_a_shell_with_double_brackets(image: Opener) -> None:
    img = image("docker.io/drone/git:1.2.1")
    done = img.run("/bin/sh", "-c", '[[ -n "x" ]] && echo ok', user="1000:1000")
    assert done.stdout.strip() == "ok", f"/bin/sh lacks [[ ]], which the clone scripts use: {done.stderr}"
    for tool in ("git", "curl", "clone", "clone-commit", "clone-tag", "clone-pull-request"):
        assert img.run("/bin/sh", "-c", f"command -v {tool}").returncode == 0, tool


def test_clone_user_takes_the_root_owned_workspace_with_sudo(image: Opener) -> None:
    """The clone script runs as drone and starts with `sudo chown drone:drone $DRONE_WORKSPACE` (the
    workspace volume is root's); without it git refuses the directory ("dubious ownership")."""
    img = image("docker.io/drone/git:1.2.1")
    (img.root / "drone" / "src").mkdir(parents=True)
    script = ("sudo -n chown drone:drone /drone/src && cd /drone/src && git init -q . "
              "&& git status --porcelain && echo ok")
    done = img.run("/bin/sh", "-c", script, user="1000:1000")
    assert done.stdout.strip().endswith("ok"), f"drone/git: as drone: {script}: {done.stderr}"


def test_gogs_image_has_what_the_chart_scripts_use(image: Opener) -> None:
    img = image("docker.io/gogs/gogs:next-0.14.3")
    assert "0.14.3" in img.run("/app/gogs/gogs", "--version", user="1000:1000").stdout
    for tool in ("sh", "curl", "git", "ssh-keygen", "mkdir", "sleep", "tail", "gogs"):
        assert img.run("/bin/sh", "-c", f"command -v {tool}", user="1000:1000").returncode == 0, tool
    assert img.run("/bin/sh", "-c", "id -un", user="1000:1000").stdout.strip() == "git"


def test_drone_server_finds_its_shared_libraries(image: Opener) -> None:
    img = image("docker.io/drone/drone:2.28.2")
    done = img.run("/bin/drone-server", "--help", user="1000:1000")
    assert "Usage of /bin/drone-server" in done.stderr + done.stdout, done.stderr


@pytest.mark.parametrize(("ref", "argv", "says"), [
    ("docker.io/library/traefik:v3.7.15", ("/usr/local/bin/traefik", "version"), "3.7.15"),
    ("docker.io/library/registry:3.1.2", ("/bin/registry", "--version"), "v3.1.2"),
    ("docker.io/plugins/kaniko:1.13.9", ("/kaniko/executor", "version"), "v1.25.15"),
    ("registry.k8s.io/coredns/coredns:v1.14.7", ("/coredns", "-version"), "1.14.7"),
])
def test_static_programs_start(ref: str, argv: tuple[str, ...], says: str, image: Opener) -> None:
    done = image(ref).run(*argv, user="65532:65532")
    assert done.returncode == 0, f"{ref}: {' '.join(argv)}: {done.stderr}"
    assert says in done.stdout + done.stderr


def test_kubectl_image_runs_the_deploy_steps_shell(image: Opener) -> None:
    """Drone starts a `commands:` step with /bin/sh: the deploy step's image needs a shell and kubectl."""
    done = image("docker.io/alpine/kubectl:1.37.2").run("/bin/sh", "-c", "kubectl version --client")
    assert done.returncode == 0, f"alpine/kubectl: sh -c 'kubectl version --client': {done.stderr}"
    assert "v1.37.2" in done.stdout, f"alpine/kubectl: kubectl version says {done.stdout!r}"
