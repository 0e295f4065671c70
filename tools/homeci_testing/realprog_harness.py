"""Harness for T2: the real Traefik, registry and Gogs programs on 127.0.0.1, configured from the
umbrella's render.

Every fixture takes the REAL rendered configuration (container args, Secret/ConfigMap files, env) via
:class:`homeci_testing.realprog.LoopbackPod` and rewrites only what cannot be the same on loopback:

* container paths -> folders under a pytest tmp dir (every volume the pod mounts is materialised there);
* listen addresses -> 127.0.0.1 with free ports (the in-cluster ports 3000/5000/8000/8443/8080 may be
  taken and are not ours to bind);
* in-cluster routing -> Traefik's file provider: there is no Kubernetes API here, so the Kubernetes
  Ingress provider flags are dropped and each rendered Ingress becomes a file-provider router whose
  service URL is the loopback port of the program behind the Ingress's Service.

Each rewrite is named where it happens. Processes are always stopped (context managers / finalizers).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

import pytest
import yaml

from homeci import manifests, rendering, toolchain
from homeci.errors import HomeciError
from homeci.manifests import Manifest
from homeci_testing import certs, realprog, support
from homeci_testing.realprog import LOOPBACK, ClusterNames, LoopbackPod, Program, PublicNames
from homeci_testing.support import RELEASE

UMBRELLA = support.UMBRELLA  # HOMECI_TEST_CHARTS renders another copy of charts/


def kube_version() -> str:
    """Render for the Kubernetes version the simulated cluster runs (the newest we support)."""
    try:
        return toolchain.tool("kube-apiserver").version
    except HomeciError:
        return "v1.36.0"


# The umbrella scenarios (ci/*-values.yaml) T2 runs. The others cannot run on loopback as rendered:
# existing-ca (credentials come from Secrets the render does not contain), external-postgres and
# s3-registry (external services), k3s-traefik (no Traefik of ours); the rest change nothing T2 sees.
SCENARIOS = ("default", "custom-domain")


def scenario_file(name: str) -> Path:
    path = UMBRELLA / "ci" / f"{name}-values.yaml"
    if not path.is_file():
        raise HomeciError(f"{path} is missing: T2 runs the umbrella scenario {name!r}")
    return path


def render(scenario: str = "default", *sets: str) -> list[Manifest]:
    """The umbrella rendered for ``scenario`` (plus ``--set`` overrides) with the CA, the serving certificate
    and ConfigMap <release>-ca its certificate hook Job creates before anything starts (the program the
    render ships, run offline); both cached, so one CA per scenario."""
    values = [scenario_file(scenario)]
    return certs.with_certificates(rendering.render(UMBRELLA, values, sets=tuple(sets),
                                                    kube_version=kube_version()))


def public_hosts(scenario: str) -> dict[str, str]:
    """Public host per component: global.hosts + global.domain from the defaults and the scenario."""
    glob = dict(yaml.safe_load((UMBRELLA / "values.yaml").read_text())["global"])
    over = (yaml.safe_load(scenario_file(scenario).read_text()) or {}).get("global") or {}
    domain = over.get("domain", glob["domain"])
    labels = {**glob["hosts"], **(over.get("hosts") or {})}
    return {key: f"{label}.{domain}" for key, label in labels.items()}


def binary(name: str) -> Path:
    """A toolchain binary, or a skip saying how to build it (the only reason a T2 test skips)."""
    try:
        return toolchain.resolve(name)
    except HomeciError as exc:
        pytest.skip(f"{name} is not available: {exc}")


def ingress_routes(objects: list[Manifest], service: str, url: str) -> dict[str, Any]:
    """File-provider routers equivalent to what Traefik's Kubernetes Ingress provider builds from the
    rendered Ingresses that point at ``service`` (rewritten: the Service becomes ``url`` on loopback)."""
    routers: dict[str, Any] = {}
    for ing in manifests.by_kind(objects, "Ingress"):
        spec = ing.obj["spec"]
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        entrypoints = ing.annotations.get("traefik.ingress.kubernetes.io/router.entrypoints")
        for i, rule in enumerate(spec.get("rules") or []):
            host = rule.get("host")
            for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
                if path["backend"]["service"]["name"] != service:
                    continue
                match = f"Host(`{host}`)" if host else "PathPrefix(`/`)"
                p = path.get("path") or "/"
                if path.get("pathType") == "Exact":
                    match += f" && Path(`{p}`)"
                elif p != "/":
                    match += f" && PathPrefix(`{p}`)"
                router: dict[str, Any] = {"rule": match, "service": service}
                if host in tls_hosts:
                    router["tls"] = {}
                if entrypoints:
                    router["entryPoints"] = entrypoints.split(",")
                routers[f"{ing.name}-{i}-{j}"] = router
    if not routers:
        raise HomeciError(f"no rendered Ingress routes to Service/{service}")
    return {"http": {"routers": routers,
                     "services": {service: {"loadBalancer": {"servers": [{"url": url}]}}}}}


class _Running:
    """``with server:`` starts the program and always stops it (also when it never became ready)."""

    program: Program

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.program.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.program.stop()


class LoopbackTraefik(_Running):
    """The rendered Traefik Deployment's container, run on loopback.

    Rewritten: entrypoint addresses -> 127.0.0.1:<free port>; the Kubernetes Ingress provider flags
    are dropped (no API server; :meth:`route` turns rendered Ingresses into file-provider routers);
    paths -> the materialised volumes; added ``--api.insecure`` on the internal ``traefik`` entrypoint
    so tests can read the configuration Traefik actually runs with (/api/entrypoints).
    """

    def __init__(self, objects: list[Manifest], root: Path) -> None:
        self.objects = objects
        self.pod = LoopbackPod(objects, "Deployment", f"{RELEASE}-traefik", "traefik", root)
        self.ports: dict[str, int] = {}
        args: list[str] = []
        for arg in self.pod.args:
            if arg.lower().startswith("--providers.kubernetesingress"):
                continue
            m = re.fullmatch(r"--entryPoints\.(\w+)\.address=:(\d+)(/\w+)?", arg)
            if m:
                ep = m.group(1)
                self.ports[ep] = realprog.free_port()
                arg = f"--entryPoints.{ep}.address={LOOPBACK}:{self.ports[ep]}{m.group(3) or ''}"
            args.append(self.pod.rewrite(arg))
        args += ["--api=true", "--api.insecure=true", "--api.dashboard=false"]
        self.args = args
        dirs = [a.split("=", 1)[1] for a in args if a.startswith("--providers.file.directory=")]
        if not dirs:
            raise HomeciError("rendered Traefik args have no --providers.file.directory")
        self.dynamic = Path(dirs[0])
        # The rendered dynamic files name certificate paths inside the container: point them here.
        for file in self.dynamic.iterdir():
            if file.is_file():
                file.write_text(self.pod.rewrite(file.read_text()))
        self.program = Program("traefik", [realprog.traefik_binary(), *args], log_dir=root / "logs",
                               env=loopback_env(self.pod), cwd=root)

    @property
    def api(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['traefik']}"

    def start(self) -> None:
        self.program.start()
        self.program.wait_ready(realprog.http_check(f"{self.api}/ping"), timeout=30, what="answering /ping")

    def route(self, service: str, port: int) -> None:
        """Serve the rendered Ingresses of ``service`` from 127.0.0.1:``port``; wait until loaded."""
        config = ingress_routes(self.objects, service, f"http://{LOOPBACK}:{port}")
        (self.dynamic / f"zz-loopback-{service}.yaml").write_text(yaml.safe_dump(config))
        names = list(config["http"]["routers"])
        url = f"http://{LOOPBACK}:{port}"

        def loaded() -> bool:
            if not all(realprog.http_check(f"{self.api}/api/http/routers/{n}@file")() for n in names):
                return False
            try:
                with urllib.request.urlopen(f"{self.api}/api/http/services/{service}@file", timeout=2) as r:
                    servers = json.load(r).get("loadBalancer", {}).get("servers", [])
            except OSError:
                return False
            return [s.get("url") for s in servers] == [url]

        self.program.wait_ready(loaded, timeout=20, what=f"routing {service} to {url}")

    def names(self, ca_file: Path) -> PublicNames:
        return PublicNames({"https": self.ports["websecure"], "http": self.ports["web"]}, ca_file)


def loopback_env(pod: LoopbackPod, **extra: str) -> dict[str, str]:
    """The container's resolved env with container paths rewritten, plus this machine's PATH."""
    env = {k: pod.rewrite(v) for k, v in pod.env().items()}
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    env.update(extra)
    return env


def set_ini(text: str, section: str, values: dict[str, str]) -> str:
    """Set ``key = value`` lines in one ``[section]`` of an ini text (added when missing)."""
    lines = text.splitlines()
    out: list[str] = []
    current = ""
    pending = dict(values)
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if current == section:
                out.extend(f"{k} = {v}" for k, v in pending.items())
                pending = {}
            current = stripped[1:-1]
        elif current == section and "=" in stripped:
            key = stripped.split("=", 1)[0].strip()
            if key in pending:
                out.append(f"{key} = {pending.pop(key)}")
                continue
        out.append(line)
    if pending:
        if current != section:
            out.append(f"[{section}]")
        out.extend(f"{k} = {v}" for k, v in pending.items())
    return "\n".join(out) + "\n"


def ini_value(text: str, section: str, key: str) -> str | None:
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and "=" in stripped and stripped.split("=", 1)[0].strip() == key:
            return stripped.split("=", 1)[1].strip()
    return None


class LoopbackGogs(_Running):
    """Deployment/<release>-gogs run on loopback through its own entrypoint (files/start.sh, which runs
    `gogs web` and then files/create-admin.sh), with the rendered app.ini and env.

    Rewritten: container paths -> the materialised volumes (app.ini, env, script paths);
    ``[server] HTTP_ADDR/HTTP_PORT/LOCAL_ROOT_URL`` (and SSH_LISTEN_HOST/PORT when the built-in SSH
    server is on) -> 127.0.0.1:<free port>; env GOGS_BIN (the image's
    /app/gogs/gogs -> the built binary) and GOGS_URL (the script's default http://127.0.0.1:3000 -> the
    free port); TMPDIR -> the pod's /tmp volume.
    """

    def __init__(self, objects: list[Manifest], root: Path, gogs_bin: Path,
                 names: ClusterNames | None = None) -> None:
        self.pod = LoopbackPod(objects, "Deployment", f"{RELEASE}-gogs", "gogs", root)
        self.binary_dir = gogs_bin.parent
        self.binary_dir_before = snapshot(self.binary_dir)
        self.port = realprog.free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        env = loopback_env(self.pod)
        if "GOGS_CONFIG" not in env:
            raise HomeciError(f"{self.pod.ref} env has no GOGS_CONFIG (the app.ini path start.sh uses)")
        self.ini_path = Path(env["GOGS_CONFIG"])
        self.rendered_ini = self.ini_path.read_text()
        ini = set_ini(self.pod.rewrite(self.rendered_ini), "server", {
            "HTTP_ADDR": LOOPBACK, "HTTP_PORT": str(self.port), "LOCAL_ROOT_URL": f"{self.url}/",
        })
        self.ssh_port: int | None = None
        if ini_value(ini, "server", "START_SSH_SERVER") == "true":
            # The built-in SSH server: listen address -> loopback, listen port -> a free one; the
            # advertised SSH_PORT (clone URLs) stays as rendered.
            self.ssh_port = realprog.free_port()
            ini = set_ini(ini, "server", {"SSH_LISTEN_HOST": LOOPBACK, "SSH_LISTEN_PORT": str(self.ssh_port)})
        self.ini_path.write_text(ini)
        self.ini = ini
        env.update(GOGS_BIN=str(gogs_bin), GOGS_URL=self.url, TMPDIR=str(self.pod.host_path("/tmp")))
        self.env = env
        argv = [self.pod.rewrite(a) for a in [*self.pod.command, *self.pod.args]]
        if names is not None:
            # In-cluster names (webhook deliveries to Drone's Service) resolve; Gogs' own Service -> us.
            names.serve(manifests.get(objects, "Service", f"{RELEASE}-gogs"), self.port)
        self.program = Program("gogs", argv, log_dir=root / "logs", env=env, cwd=root, names=names)

    @property
    def database(self) -> Path:
        path = ini_value(self.ini, "database", "PATH")
        if not path:
            raise HomeciError(f"{self.pod.ref}: app.ini has no [database] PATH (SQLite expected)")
        return Path(path)

    def start(self) -> None:
        self.program.start()
        self.program.wait_ready(realprog.http_check(f"{self.url}/healthcheck"), timeout=90,
                                what="answering /healthcheck")


class LoopbackRegistry(_Running):
    """Deployment/<release>-registry (distribution v3) run on loopback with the rendered config.yml
    (Secret <release>-registry-config) and htpasswd (Secret <release>-registry-auth).

    Rewritten: container paths in config.yml and args -> the materialised volumes (storage root,
    htpasswd path); ``http.addr`` -> 127.0.0.1:<free port>; a ``http.debug.addr``, if rendered, ->
    another free loopback port. ``http.host`` (the public URL used in Location headers) stays as
    rendered: clients reach it through Traefik on loopback.
    """

    def __init__(self, objects: list[Manifest], root: Path, registry_bin: Path) -> None:
        self.pod = LoopbackPod(objects, "Deployment", f"{RELEASE}-registry", "registry", root)
        self.binary_dir = registry_bin.parent
        self.binary_dir_before = snapshot(self.binary_dir)
        self.port = realprog.free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        args = [self.pod.rewrite(a) for a in self.pod.args]
        configs = [a for a in args if a.endswith((".yml", ".yaml"))]
        if not configs:
            raise HomeciError(f"{self.pod.ref} args {self.pod.args} name no config file")
        self.config_path = Path(configs[-1])
        self.rendered_config: dict[str, Any] = yaml.safe_load(self.config_path.read_text())
        config = yaml.safe_load(self.pod.rewrite(self.config_path.read_text()))
        config.setdefault("http", {})["addr"] = f"{LOOPBACK}:{self.port}"
        if (config["http"].get("debug") or {}).get("addr"):
            config["http"]["debug"]["addr"] = f"{LOOPBACK}:{realprog.free_port()}"
        self.config_path.write_text(yaml.safe_dump(config))
        self.config = config
        env = loopback_env(self.pod)
        command = self.pod.command or ["registry"]
        argv = [str(registry_bin), *command[1:], *args]
        self.program = Program("registry", argv, log_dir=root / "logs", env=env, cwd=root)

    def start(self) -> None:
        self.program.start()
        self.program.wait_ready(realprog.http_check(f"{self.url}/"), timeout=30, what="answering GET /")


OCI = "application/vnd.oci.image.manifest.v1+json"


class Direct:
    """Plain HTTP to the registry's loopback port with the rendered credentials (no Traefik needed:
    what is under test is the registry's own answer)."""

    def __init__(self, server: LoopbackRegistry, objects: list[Manifest]) -> None:
        data = manifests.get(objects, "Secret", f"{RELEASE}-registry-auth").obj["data"]
        user, password = (base64.b64decode(data[k]).decode() for k in ("username", "password"))
        self.url = server.url
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(path)
        target = self.url + parts.path + (f"?{parts.query}" if parts.query else "")
        req = urllib.request.Request(target, data=body, method=method,
                                     headers={"Authorization": self.auth, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    def push_blob(self, repo: str, data: bytes) -> tuple[int, bytes]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers, body = self.call("POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202:
            return status, body
        loc = headers["location"]
        sep = "&" if "?" in loc else "?"
        status, _, body = self.call("PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", data,
                                    {"Content-Type": "application/octet-stream"})
        return status, body

    def push_image(self, repo: str, tag: str, text: str) -> tuple[int, str, list[str]]:
        """(manifest PUT status, manifest digest, blob digests) of a one-layer image."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("file.txt")
            content = text.encode()
            info.size, info.mtime = len(content), 0
            tar.addfile(info, io.BytesIO(content))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
        for blob in (config, layer):
            status, body = self.push_blob(repo, blob)
            assert status == 201, f"blob push to {repo} answered {status} {body[:200]!r}"
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI,
            "config": _desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)]}).encode()
        status, _, _ = self.call("PUT", f"/v2/{repo}/manifests/{tag}", manifest, {"Content-Type": OCI})
        return status, "sha256:" + hashlib.sha256(manifest).hexdigest(), [_desc("", b)["digest"]
                                                                            for b in (config, layer)]

    def pulls_intact(self, repo: str, tag: str) -> list[str]:
        """What is wrong with pulling ``repo:tag`` (empty: manifest and every blob match their digests)."""
        status, _, body = self.call("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI})
        if status != 200:
            return [f"manifest {repo}:{tag} answered {status}"]
        problems = []
        doc = json.loads(body)
        for desc in [doc["config"], *doc["layers"]]:
            status, _, blob = self.call("GET", f"/v2/{repo}/blobs/{desc['digest']}")
            if status != 200 or "sha256:" + hashlib.sha256(blob).hexdigest() != desc["digest"]:
                problems.append(f"blob {desc['digest']} of {repo}:{tag}: HTTP {status}, {len(blob)} bytes")
        return problems


def _desc(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def _loopback_port(value: str, what: str, expected: str) -> str:
    """A rendered ``127.0.0.1:<port>`` URL or address; refuses any other (the pod's own loopback)."""
    if not value.startswith(expected):
        raise HomeciError(f"{what} is {value!r}, expected it to start with {expected!r}")
    return value


class LoopbackBridge(_Running):
    """Container gogs-bridge of Deployment/<release>-drone (files/gogs-bridge.py, run by this machine's
    python3) with the rendered env, in the same pod folder as Drone (it shares Drone's /data volume).

    Rewritten: container paths (the script, /data, the machine-token file, the CA) -> the materialised
    volumes; BRIDGE_LISTEN 127.0.0.1:<rendered port> and BRIDGE_HOOKS_LISTEN :<rendered port> ->
    127.0.0.1:<free ports>; BRIDGE_DRONE_URL (Drone's 127.0.0.1:8080) -> Drone's loopback port; the port
    of the Gogs Service in BRIDGE_GOGS_URL -> Gogs' loopback port (``names``, which also serves the
    Service port ``hooks`` of <release>-drone from the webhook listener).
    """

    def __init__(self, objects: list[Manifest], root: Path, names: ClusterNames, drone_url: str) -> None:
        self.pod = LoopbackPod(objects, "Deployment", f"{RELEASE}-drone", "gogs-bridge", root)
        self.rendered_env = self.pod.env()
        ref = self.pod.ref
        self.rendered_listen = _loopback_port(self.rendered_env.get("BRIDGE_LISTEN", ""),
                                              f"{ref} env BRIDGE_LISTEN", f"{LOOPBACK}:")
        _loopback_port(self.rendered_env.get("BRIDGE_DRONE_URL", ""), f"{ref} env BRIDGE_DRONE_URL",
                       f"http://{LOOPBACK}:8080")
        hooks = self.rendered_env.get("BRIDGE_HOOKS_LISTEN", "")
        if not hooks.startswith(":"):
            raise HomeciError(f"{ref} env BRIDGE_HOOKS_LISTEN is {hooks!r}, expected ':<port>'")
        self.rendered_hooks_port = int(hooks[1:])
        self.api_port = realprog.free_port()
        self.hooks_port = realprog.free_port()
        self.api_url = f"http://{LOOPBACK}:{self.api_port}"
        self.hooks_url = f"http://{LOOPBACK}:{self.hooks_port}"
        names.serve(manifests.get(objects, "Service", f"{RELEASE}-drone"), self.hooks_port,
                    service_port=self.rendered_hooks_port)
        env = {k: names.rewrite(v) for k, v in loopback_env(self.pod).items()}
        env.update(BRIDGE_LISTEN=f"{LOOPBACK}:{self.api_port}",
                   BRIDGE_HOOKS_LISTEN=f"{LOOPBACK}:{self.hooks_port}", BRIDGE_DRONE_URL=drone_url)
        self.env = env
        self.store = Path(env["BRIDGE_STORE"])
        argv = [self.pod.rewrite(a) for a in [*self.pod.command, *self.pod.args]]
        self.program = Program("gogs-bridge", argv, log_dir=root / "logs", env=env, cwd=root, names=names)

    def start(self) -> None:
        self.program.start()
        self.program.wait_ready(realprog.http_check(f"{self.hooks_url}/healthz"), timeout=30,
                                what="answering /healthz on its hooks port")

    def log_lines(self) -> list[str]:
        try:
            return self.program.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []


class LoopbackDrone(_Running):
    """Deployment/<release>-drone (the Drone server and its Gogs bridge) run on loopback with the
    rendered env.

    Rewritten: container paths (/data: SQLite database, XDG cache) -> the materialised volumes;
    DRONE_SERVER_PORT ``:8080`` -> 127.0.0.1:<free port>, which also serves Service/<release>-drone
    for :class:`ClusterNames`; DRONE_GOGS_SERVER (the bridge on the pod's 127.0.0.1) -> the bridge's
    free port (:class:`LoopbackBridge`, started first and stopped last); the ports (only) of in-cluster
    names in the env (DRONE_SERVER_PROXY_HOST, ...) -> the loopback ports of the programs behind those
    Services. The process resolves those names through ``names`` (its own /etc/hosts).
    """

    def __init__(self, objects: list[Manifest], root: Path, drone_bin: Path, names: ClusterNames) -> None:
        self.pod = LoopbackPod(objects, "Deployment", f"{RELEASE}-drone", "drone", root)
        self.binary_dir = drone_bin.parent
        self.binary_dir_before = snapshot(self.binary_dir)
        self.port = realprog.free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        names.serve(manifests.get(objects, "Service", f"{RELEASE}-drone"), self.port)
        self.bridge = LoopbackBridge(objects, root, names, self.url)
        self.rendered_env = self.pod.env()
        env = {k: names.rewrite(v) for k, v in loopback_env(self.pod).items()}
        if self.rendered_env.get("DRONE_SERVER_PORT") != ":8080":
            raise HomeciError(f"{self.pod.ref} env DRONE_SERVER_PORT is "
                              f"{self.rendered_env.get('DRONE_SERVER_PORT')!r}, expected ':8080'")
        if self.rendered_env.get("DRONE_GOGS_SERVER") != f"http://{self.bridge.rendered_listen}":
            raise HomeciError(f"{self.pod.ref} env DRONE_GOGS_SERVER is "
                              f"{self.rendered_env.get('DRONE_GOGS_SERVER')!r}, not the Gogs bridge's "
                              f"BRIDGE_LISTEN {self.bridge.rendered_listen!r}")
        env["DRONE_SERVER_PORT"] = f"{LOOPBACK}:{self.port}"
        env["DRONE_GOGS_SERVER"] = self.bridge.api_url
        env["TMPDIR"] = str(self.pod.host_path("/tmp"))
        self.env = env
        argv = [str(drone_bin), *[self.pod.rewrite(a) for a in self.pod.args]]
        self.program = Program("drone", argv, log_dir=root / "logs", env=env, cwd=root, names=names)

    def start(self) -> None:
        self.bridge.start()
        self.program.start()
        self.program.wait_ready(realprog.http_check(f"{self.url}/healthz"), timeout=60,
                                what="answering /healthz")

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.program.stop()
            self.bridge.program.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.program.stop()
        self.bridge.program.stop()


def run_job(objects: list[Manifest], job: str, container: str, root: Path, names: ClusterNames, *,
            timeout: float = 180, **env_over: str) -> subprocess.CompletedProcess[str]:
    """Run a rendered Job's container to completion on this machine: its command (``python3`` is this
    machine's), its resolved env with container paths -> materialised volumes and in-cluster ports ->
    loopback ports (``names``; the names themselves resolve through its /etc/hosts)."""
    pod = LoopbackPod(objects, "Job", job, container, root)
    env = {k: names.rewrite(v) for k, v in loopback_env(pod).items()}
    if "/tmp" in pod.mounts:
        env["TMPDIR"] = str(pod.host_path("/tmp"))
    env.update(env_over)
    argv = [pod.rewrite(a) for a in [*pod.command, *pod.args]]
    if not argv:
        raise HomeciError(f"{pod.ref} has no command")
    return subprocess.run(names.wrap(argv), env=env, cwd=root, capture_output=True, text=True,
                          timeout=timeout, check=False)


def snapshot(directory: Path) -> set[str]:
    """Names in ``directory`` now (to compare after a program ran)."""
    return {p.name for p in directory.iterdir()}


def stray_writes(root: Path, binary_dir: Path, before: set[str]) -> list[str]:
    """Files a program created outside its pod's volumes: in its working directory (``root``, which
    holds only ``volumes/`` and ``logs/``) or beside its binary (the image's read-only /app), compared
    with the ``before`` snapshot of that directory (the toolchain keeps its own files there)."""
    stray = [str(p) for p in root.iterdir() if p.name not in ("volumes", "logs")]
    stray += [str(binary_dir / n) for n in sorted(snapshot(binary_dir) - before)]
    return stray
