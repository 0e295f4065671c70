"""distribution registry v3.1.2 (built from the module proxy) with the rendered config.yml and htpasswd,
reached through the rendered Traefik over TLS that only the homeci CA makes trusted."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.realprog import PublicNames, Response
from homeci_testing.realprog_harness import LoopbackRegistry, LoopbackTraefik, binary, stray_writes
from homeci_testing.support import RELEASE

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORY = "homeci/t2-smoke"


@pytest.fixture(scope="module")
def registry(rendered: list[Manifest], tmp_path_factory: pytest.TempPathFactory,
             traefik: LoopbackTraefik) -> Iterator[LoopbackRegistry]:
    with LoopbackRegistry(rendered, tmp_path_factory.mktemp("registry"), binary("registry")) as server:
        traefik.route(f"{RELEASE}-registry", server.port)
        yield server


@pytest.fixture(scope="module")
def credentials(rendered: list[Manifest]) -> tuple[str, str]:
    """username/password from the rendered Secret <release>-registry-auth (what pushers are given)."""
    data = manifests.get(rendered, "Secret", f"{RELEASE}-registry-auth").obj.get("data") or {}
    for key in ("username", "password", "htpasswd"):
        assert key in data, f"Secret/{RELEASE}-registry-auth has no key {key}"
    return base64.b64decode(data["username"]).decode(), base64.b64decode(data["password"]).decode()


class Client:
    """The minimal OCI distribution client a `docker push` amounts to, over PublicNames."""

    def __init__(self, public: PublicNames, host: str, auth: tuple[str, str] | None) -> None:
        self.public = public
        self.base = f"https://{host}"
        self.headers: dict[str, str] = {}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def call(self, method: str, url: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> Response:
        if url.startswith("/"):
            url = self.base + url
        return self.public.request(method, url, body=body, headers={**self.headers, **(headers or {})})

    def push_blob(self, name: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = self.call("POST", f"/v2/{name}/blobs/uploads/")
        assert start.status == 202, (
            f"POST /v2/{name}/blobs/uploads/ answered {start.status} {start.body[:200]!r}"
        )
        location = start.headers["location"]
        assert location.startswith(self.base + "/") or location.startswith("/"), (
            f"upload Location {location!r} does not use the rendered http.host {self.base}"
        )
        sep = "&" if "?" in location else "?"
        done = self.call("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", body=data,
                         headers={"Content-Type": "application/octet-stream"})
        assert done.status == 201, f"blob PUT for {digest} answered {done.status} {done.body[:200]!r}"
        return digest


def _layer() -> bytes:
    """A real gzipped tar layer with one file."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        content = b"hello from homeci T2\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def _descriptor(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_v2_requires_the_generated_credentials(registry: LoopbackRegistry, public: PublicNames,
                                               hosts: dict[str, str], credentials: tuple[str, str]) -> None:
    host = hosts["registry"]
    anonymous = Client(public, host, None).call("GET", "/v2/")
    assert anonymous.status == 401, f"GET https://{host}/v2/ without credentials answered {anonymous.status}"
    assert anonymous.headers.get("www-authenticate", "").lower().startswith("basic"), (
        f"401 without a Basic challenge: {anonymous.headers.get('www-authenticate')!r}"
    )
    wrong = Client(public, host, (credentials[0], credentials[1] + "x")).call("GET", "/v2/")
    assert wrong.status == 401, f"GET /v2/ with a wrong password answered {wrong.status}"
    ok = Client(public, host, credentials).call("GET", "/v2/")
    assert ok.status == 200, (
        f"GET https://{host}/v2/ with Secret/{RELEASE}-registry-auth username/password answered {ok.status}: "
        "the rendered htpasswd does not match them"
    )


def test_push_pull_and_delete_an_image_through_traefik(registry: LoopbackRegistry, public: PublicNames,
                                                       hosts: dict[str, str],
                                                       credentials: tuple[str, str]) -> None:
    client = Client(public, hosts["registry"], credentials)
    storage = registry.rendered_config.get("storage") or {}
    if ((storage.get("maintenance") or {}).get("readonly") or {}).get("enabled"):
        # The scenario renders the registry read-only (maintenance for garbage collection): pushes
        # must be refused by the registry itself, reads still answer.
        refused = client.call("POST", f"/v2/{REPOSITORY}/blobs/uploads/")
        assert refused.status == 405, f"a read-only registry answered {refused.status} to a blob upload"
        assert client.call("GET", "/v2/").status == 200
        return
    layer = _layer()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()]},
    }).encode()
    assert client.push_blob(REPOSITORY, config) == _descriptor("", config)["digest"]
    client.push_blob(REPOSITORY, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    put = client.call("PUT", f"/v2/{REPOSITORY}/manifests/v1", body=manifest,
                      headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 201, f"manifest PUT answered {put.status} {put.body[:300]!r}"
    assert put.headers.get("docker-content-digest") == digest

    pulled = client.call("GET", f"/v2/{REPOSITORY}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.status == 200 and pulled.body == manifest, f"pulling the manifest answered {pulled.status}"
    blob = client.call("GET", f"/v2/{REPOSITORY}/blobs/{_descriptor('', layer)['digest']}")
    if blob.status in (301, 302, 307):
        blob = client.call("GET", blob.headers["location"])
    assert blob.status == 200 and blob.body == layer, f"pulling the layer blob answered {blob.status}"
    tags = client.call("GET", f"/v2/{REPOSITORY}/tags/list").json()
    assert tags.get("tags") == ["v1"], f"tags/list answered {tags}"

    delete_enabled = bool((storage.get("delete") or {}).get("enabled"))
    gone = client.call("DELETE", f"/v2/{REPOSITORY}/manifests/{digest}")
    if delete_enabled:
        assert gone.status == 202, f"DELETE manifest answered {gone.status} with storage.delete.enabled"
        after = client.call("GET", f"/v2/{REPOSITORY}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert after.status == 404, f"the deleted manifest still answers {after.status}"
    else:
        assert gone.status == 405, f"DELETE answered {gone.status} although storage.delete is off"


def test_rendered_storage_and_auth_paths_are_the_mounted_volumes(registry: LoopbackRegistry) -> None:
    """The registry wrote its data under the data volume and read the htpasswd from the auth volume."""
    root = registry.pod.host_path("/var/lib/registry")
    assert registry.config["storage"]["filesystem"]["rootdirectory"] == str(root), (
        "config.yml storage.filesystem.rootdirectory is not on the data volume"
    )
    htpasswd = registry.config["auth"]["htpasswd"]["path"]
    assert htpasswd.startswith(str(registry.pod.root)), (
        f"auth.htpasswd.path {htpasswd} is on no mounted volume"
    )
    log = registry.program.log_path.read_text(errors="replace")
    assert "default user" not in log.lower(), (
        "the registry generated a default htpasswd user: the rendered htpasswd file was missing"
    )


def test_registry_writes_only_to_its_volumes(registry: LoopbackRegistry, public: PublicNames,
                                            hosts: dict[str, str], credentials: tuple[str, str]) -> None:
    """readOnlyRootFilesystem: the registry keeps everything on its data and /tmp volumes."""
    Client(public, hosts["registry"], credentials).call("GET", "/v2/_catalog")
    stray = stray_writes(registry.pod.root, registry.binary_dir, registry.binary_dir_before)
    assert not stray, f"the registry wrote outside its mounted volumes: {stray}"


def _helm_test_script(rendered: list[Manifest]) -> str:
    cm = manifests.get(rendered, "ConfigMap", f"{RELEASE}-tests")
    return str(cm.obj["data"]["helm-test.py"])


def _run_helm_test(script: str, tmp: Any, env: dict[str, str]) -> tuple[int, str]:
    import subprocess
    import sys

    path = tmp / "helm-test.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", **env}, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_helm_test_hook_passes_against_the_real_registry_and_fails_on_a_foreign_ca(
    rendered: list[Manifest], registry: LoopbackRegistry, traefik: LoopbackTraefik, hosts: dict[str, str],
    credentials: tuple[str, str], ca_file: Any, tmp_path: Any,
) -> None:
    """The umbrella's `helm test` script (ConfigMap <release>-tests), run against the real Traefik and
    registry: it passes with the rendered CA and credentials, and names the cause when the CA is wrong."""
    script = _helm_test_script(rendered)
    env = {"TRAEFIK_ADDR": f"127.0.0.1:{traefik.ports['websecure']}", "REGISTRY_HOST": hosts["registry"],
           "REGISTRY_USERNAME": credentials[0], "REGISTRY_PASSWORD": credentials[1], "CA_FILE": str(ca_file)}
    rc, out = _run_helm_test(script, tmp_path, env)
    assert rc == 0 and "2 passed, 0 failed" in out, f"helm test script against the real registry:\n{out}"

    rc, out = _run_helm_test(script, tmp_path, {**env, "REGISTRY_PASSWORD": "wrong"})
    assert rc == 1 and "registry authenticates" in out and "HTTP 401" in out, f"wrong password:\n{out}"

    from homeci import ca as camod

    foreign = camod.init(tmp_path / "other-ca", cn="not homeci")
    rc, out = _run_helm_test(script, tmp_path, {**env, "CA_FILE": str(foreign.cert)})
    assert rc == 1 and "certificate not trusted by the homeci CA" in out, f"foreign CA:\n{out}"
