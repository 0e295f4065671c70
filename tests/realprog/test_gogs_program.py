"""Gogs 0.14.3 (built from the module proxy) with the rendered app.ini, env and entrypoint scripts."""

from __future__ import annotations

import base64
import http.server
import json
import os
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drone_stack import wait_for

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing.loopback import serve
from homeci_testing.realprog import LOOPBACK, PublicNames
from homeci_testing.realprog_harness import (
    LoopbackGogs,
    LoopbackTraefik,
    binary,
    ini_value,
    render,
    stray_writes,
)
from homeci_testing.support import RELEASE


@pytest.fixture(scope="module")
def gogs(rendered: list[Manifest], tmp_path_factory: pytest.TempPathFactory,
         traefik: LoopbackTraefik) -> Iterator[LoopbackGogs]:
    with LoopbackGogs(rendered, tmp_path_factory.mktemp("gogs"), binary("gogs")) as server:
        traefik.route(f"{RELEASE}-gogs", server.port)
        yield server


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def admin_token(gogs: LoopbackGogs, admin: dict[str, str]) -> str:
    """An API token for the admin, created with HTTP Basic auth (as Drone does at login)."""
    wait_for(f"start.sh to create admin {admin['username']}",
              lambda: _get(f"{gogs.url}/api/v1/users/{admin['username']}")[0] == 200, timeout=60)
    basic = base64.b64encode(f"{admin['username']}:{admin['password']}".encode()).decode()
    req = urllib.request.Request(
        f"{gogs.url}/api/v1/users/{admin['username']}/tokens", method="POST",
        data=json.dumps({"name": "homeci-t2"}).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201, f"creating a token for {admin['username']} answered {resp.status}"
        return str(json.load(resp)["sha1"])


def _api(public: PublicNames, host: str, method: str, path: str, token: str, body: Any = None) -> Any:
    resp = public.request(method, f"https://{host}/api/v1{path}",
                          headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
                          body=json.dumps(body).encode() if body is not None else None)
    return resp


def test_starts_with_install_lock_and_migrated_database(gogs: LoopbackGogs) -> None:
    assert ini_value(gogs.rendered_ini, "security", "INSTALL_LOCK") == "true", (
        f"Secret/{RELEASE}-gogs-config app.ini [security] INSTALL_LOCK is not true"
    )
    status, _ = _get(f"{gogs.url}/healthcheck")
    assert status == 200, f"Gogs /healthcheck answered {status}"
    status, _ = _get(f"{gogs.url}/install")
    assert status == 404, f"Gogs /install answered {status}: the install wizard is reachable (INSTALL_LOCK)"
    with sqlite3.connect(gogs.database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = {"user", "repository", "webhook", "hook_task", "version"} - tables
    assert not missing, f"`gogs web` did not migrate {gogs.database}: tables {sorted(missing)} missing"


def test_admin_script_creates_admin_and_is_idempotent(gogs: LoopbackGogs, admin: dict[str, str],
                                                     admin_token: str) -> None:
    """start.sh ran create-admin.sh once (admin created); running it again changes nothing."""
    log = gogs.program.log_path.read_text(errors="replace")
    assert f"created admin '{admin['username']}'" in log, (
        f"files/start.sh did not report creating the admin; log {gogs.program.log_path}"
    )
    script = gogs.pod.host_path("/opt/homeci/create-admin.sh")
    for run in (2, 3):
        proc = subprocess.run(["/bin/sh", str(script)], env=gogs.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, (
            f"create-admin.sh run {run} exited {proc.returncode}: {proc.stderr.strip()}"
        )
        assert "already exists" in proc.stderr, f"create-admin.sh run {run} said: {proc.stderr.strip()}"
    with sqlite3.connect(gogs.database) as db:
        rows = db.execute("SELECT name, is_admin FROM user WHERE lower_name = ?",
                          (admin["username"].lower(),)).fetchall()
    assert rows == [(admin["username"], 1)], f"user table holds {rows} for the admin, expected one admin row"
    assert admin_token, "the admin could not authenticate with the rendered password"


def test_clone_urls_use_external_url_through_traefik(gogs: LoopbackGogs, public: PublicNames,
                                                     hosts: dict[str, str], admin: dict[str, str],
                                                     admin_token: str) -> None:
    external = ini_value(gogs.rendered_ini, "server", "EXTERNAL_URL")
    assert external == f"https://{hosts['git']}/", f"app.ini EXTERNAL_URL is {external!r}"
    resp = _api(public, hosts["git"], "POST", "/user/repos", admin_token,
                {"name": "clone-check", "auto_init": True, "readme": "Default"})
    assert resp.status == 201, (
        f"POST https://{hosts['git']}/api/v1/user/repos answered {resp.status} {resp.body[:300]!r}"
    )
    repo = resp.json()
    assert repo["clone_url"] == f"https://{hosts['git']}/{admin['username']}/clone-check.git", (
        f"Gogs clone_url is {repo['clone_url']!r}: not built from EXTERNAL_URL"
    )
    assert repo["html_url"] == f"https://{hosts['git']}/{admin['username']}/clone-check"


def test_registration_is_closed(gogs: LoopbackGogs, public: PublicNames, hosts: dict[str, str]) -> None:
    resp = public.request("GET", f"https://{hosts['git']}/user/sign_up")
    assert resp.status == 200, f"GET /user/sign_up answered {resp.status}"
    assert b"registration has been disabled" in resp.body, (
        "Gogs shows a sign-up form: app.ini [auth] DISABLE_REGISTRATION is not in effect"
    )


@pytest.fixture
def local_receiver() -> Iterator[tuple[int, list[str]]]:
    """A webhook receiver on 127.0.0.1 that records every request it gets."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as port:
        yield port, seen


def _drone_webhook_url(objects: list[Manifest]) -> str:
    """Where Drone registers its Gogs webhook: DRONE_SERVER_PROXY_PROTO://DRONE_SERVER_PROXY_HOST/hook."""
    dep = manifests.get(objects, "Deployment", f"{RELEASE}-drone")
    env: dict[str, str] = {}
    for _, c in dep.containers(init=False):
        env.update({e["name"]: str(e.get("value", "")) for e in c.get("env") or [] if "value" in e})
    host = env.get("DRONE_SERVER_PROXY_HOST") or env.get("DRONE_SERVER_HOST")
    proto = env.get("DRONE_SERVER_PROXY_PROTO") or env.get("DRONE_SERVER_PROTO") or "http"
    assert host, f"{dep.ref} sets neither DRONE_SERVER_PROXY_HOST nor DRONE_SERVER_HOST"
    return f"{proto}://{host}/hook"


def test_webhook_allowlist_admits_drone_and_blocks_other_local_hosts(
        gogs: LoopbackGogs, rendered: list[Manifest], public: PublicNames, hosts: dict[str, str],
        admin: dict[str, str], admin_token: str, local_receiver: tuple[int, list[str]]) -> None:
    """Drone creates its hook through the API, which Gogs does not check; the allow-list decides at
    delivery. A push must be delivered towards Drone's rendered webhook host and refused for another
    local address (a live receiver on 127.0.0.1 that must see nothing)."""
    drone_url = _drone_webhook_url(rendered)
    allow = ini_value(gogs.rendered_ini, "security", "LOCAL_NETWORK_ALLOWLIST") or ""
    drone_host = drone_url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    assert drone_host in [h.strip() for h in allow.split(",")], (
        f"app.ini LOCAL_NETWORK_ALLOWLIST {allow!r} lacks Drone's webhook host {drone_host!r}"
    )
    port, seen = local_receiver
    owner, repo = admin["username"], "hook-check"
    resp = _api(public, hosts["git"], "POST", "/user/repos", admin_token, {"name": repo, "auto_init": True,
                                                                           "readme": "Default"})
    assert resp.status == 201, f"creating {owner}/{repo} answered {resp.status} {resp.body[:300]!r}"
    hook_ids = {}
    for label, url in (("drone", drone_url), ("other", f"http://{LOOPBACK}:{port}/hook")):
        resp = _api(public, hosts["git"], "POST", f"/repos/{owner}/{repo}/hooks", admin_token, {
            "type": "gogs", "config": {"url": url, "content_type": "json", "secret": "s"},
            "events": ["push"], "active": True})
        assert resp.status == 201, (
            f"creating the {label} webhook ({url}) answered {resp.status} {resp.body[:300]!r}"
        )
        hook_ids[label] = resp.json()["id"]
    content = base64.b64encode(b"hello\n").decode()
    resp = _api(public, hosts["git"], "PUT", f"/repos/{owner}/{repo}/contents/hello.txt", admin_token,
                {"message": "trigger push hooks", "content": content})
    assert resp.status in (200, 201), f"PUT contents answered {resp.status} {resp.body[:300]!r}"

    def tasks() -> dict[str, tuple[int, str]] | None:
        with sqlite3.connect(gogs.database) as db:
            rows = db.execute("SELECT hook_id, is_delivered, response_content FROM hook_task").fetchall()
        by_hook = {hid: (int(delivered), str(content or "")) for hid, delivered, content in rows}
        found = {label: by_hook[hid] for label, hid in hook_ids.items() if hid in by_hook}
        return found if len(found) == 2 and all(c for _, c in found.values()) else None

    result = wait_for("Gogs to process both push deliveries", tasks, timeout=60)
    delivered, response = result["other"]
    assert "implicitly blocked" in response and not delivered, (
        f"the webhook to another local host (127.0.0.1) was not blocked: delivered={delivered} {response!r}"
    )
    assert not seen, f"the local receiver got {seen}: Gogs delivered to a non-allow-listed local host"
    delivered, response = result["drone"]
    assert delivered and "implicitly blocked" not in response, (
        f"the webhook to Drone ({drone_url}) was refused by the allow-list: {response!r}"
    )


def test_gogs_writes_only_to_its_volumes(gogs: LoopbackGogs, admin_token: str) -> None:
    """readOnlyRootFilesystem: after start-up, admin creation and API use, nothing was written outside
    the pod's volumes (HOME, data and /tmp all point into them)."""
    assert admin_token
    stray = stray_writes(gogs.pod.root, gogs.binary_dir, gogs.binary_dir_before)
    assert not stray, f"Gogs wrote outside its mounted volumes: {stray}"


def test_rendered_app_ini_has_no_secret_literals(gogs: LoopbackGogs) -> None:
    """SECRET_KEY arrives by ${VAR} expansion, so app.ini itself carries no secret; the pod has no secret
    variable either: start.sh reads the key from its file in the secrets volume and hands it to Gogs."""
    assert ini_value(gogs.rendered_ini, "security", "SECRET_KEY") == "${GOGS_SECRET_KEY}"
    assert "GOGS_SECRET_KEY" not in gogs.env, f"{gogs.pod.ref} env carries GOGS_SECRET_KEY itself"
    key_file = Path(gogs.env["HOMECI_SECRETS_DIR"]) / "GOGS_SECRET_KEY"
    assert key_file.read_text(), f"{gogs.pod.ref}: the secrets volume has no GOGS_SECRET_KEY file"
    assert gogs.program.proc is not None
    shell = gogs.program.proc.pid  # start.sh; `gogs web` is its child
    children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    environs = [dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                     if b"=" in item) for pid in children]
    key = key_file.read_bytes().rstrip(b"\n")
    assert any(e.get(b"GOGS_SECRET_KEY") == key for e in environs), (
        "start.sh did not hand the key file's content to `gogs web` as GOGS_SECRET_KEY"
    )


def test_gogs_accepts_every_rendered_app_ini_option(gogs: LoopbackGogs) -> None:
    """Gogs warns at start-up about sections/options it ignores (renamed in 0.12-0.14): none may be left."""
    log = gogs.program.log_path.read_text(errors="replace")
    ignored = [line.split("]", 1)[-1].strip() for line in log.splitlines()
               if "WARN" in line and ("is invalid" in line or "no longer used" in line)]
    assert not ignored, (
        f"Secret/{RELEASE}-gogs-config app.ini has options Gogs 0.14.3 ignores: {'; '.join(ignored)}"
    )


def test_git_clone_and_push_over_https_through_traefik(gogs: LoopbackGogs, traefik: LoopbackTraefik,
                                                       ca_file: Path, public: PublicNames,
                                                       hosts: dict[str, str], admin: dict[str, str],
                                                       admin_token: str, tmp_path: Path) -> None:
    """Real git against the clone URL Gogs advertises, through Traefik, trusting only the homeci CA.

    Rewritten for loopback: the URL gets Traefik's websecure port and git resolves the public name to
    127.0.0.1 (http.curloptResolve); GIT_SSL_CAINFO carries the CA as steps' git config does.
    """
    owner, repo = admin["username"], "git-check"
    resp = _api(public, hosts["git"], "POST", "/user/repos", admin_token,
                {"name": repo, "auto_init": True, "readme": "Default", "private": True})
    assert resp.status == 201, f"creating {owner}/{repo} answered {resp.status} {resp.body[:300]!r}"
    clone_url = str(resp.json()["clone_url"])
    port = traefik.ports["websecure"]
    host = hosts["git"]
    url = clone_url.replace(f"https://{host}/", f"https://{host}:{port}/", 1)
    assert url != clone_url, f"clone URL {clone_url} is not on https://{host}/"
    auth = urllib.parse.quote(admin["username"]) + ":" + urllib.parse.quote(admin["password"], safe="")
    authed = url.replace("https://", f"https://{auth}@", 1)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0",
           "GIT_SSL_CAINFO": str(ca_file), "GIT_CONFIG_NOSYSTEM": "1"}
    resolve = ["-c", f"http.curloptResolve={host}:{port}:{LOOPBACK}"]

    def git(*args: str, cwd: Path = tmp_path) -> str:
        proc = subprocess.run(["git", *resolve, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr.strip()}"
        return proc.stdout

    anonymous = subprocess.run(["git", *resolve, "ls-remote", url], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=60, check=False)
    assert anonymous.returncode != 0, "a private repository was readable without credentials"
    assert "username" in anonymous.stderr.lower() or "authentication" in anonymous.stderr.lower(), (
        f"anonymous ls-remote failed for another reason than missing credentials: {anonymous.stderr.strip()}"
    )
    git("clone", authed, "work")
    work = tmp_path / "work"
    assert (work / "README.md").is_file(), "the clone lacks the auto-initialised README.md"
    (work / "app.txt").write_text("pushed through Traefik\n")
    git("-c", "user.name=t2", "-c", "user.email=t2@example.invalid", "add", "app.txt", cwd=work)
    git("-c", "user.name=t2", "-c", "user.email=t2@example.invalid", "commit", "-m", "t2 push", cwd=work)
    git("push", "origin", "HEAD", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).strip()
    branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=work).strip()
    resp = _api(public, host, "GET", f"/repos/{owner}/{repo}/branches/{branch}", admin_token)
    assert resp.status == 200 and resp.json()["commit"]["id"] == head, (
        f"Gogs does not show the pushed commit {head} on {branch}: {resp.status} {resp.body[:200]!r}"
    )


@pytest.fixture(scope="module")
def gogs_ssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackGogs, list[Manifest]]]:
    """Gogs of the `ssh` umbrella scenario (built-in SSH server on), without Traefik (SSH is plain TCP)."""
    objects = render("ssh")
    with LoopbackGogs(objects, tmp_path_factory.mktemp("gogs-ssh"), binary("gogs")) as server:
        yield server, objects


def test_builtin_ssh_server_serves_git_with_the_advertised_url(gogs_ssh: tuple[LoopbackGogs, list[Manifest]],
                                                               tmp_path: Path) -> None:
    server, objects = gogs_ssh
    assert server.ssh_port, "the ssh scenario's app.ini does not start Gogs' built-in SSH server"
    data = manifests.get(objects, "Secret", f"{RELEASE}-admin").obj["data"]
    user, password = (base64.b64decode(data[k]).decode() for k in ("username", "password"))
    wait_for("start.sh to create the admin", lambda: _get(f"{server.url}/api/v1/users/{user}")[0] == 200)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
               "Content-Type": "application/json"}

    def post(path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(f"{server.url}/api/v1{path}", method="POST", headers=headers,
                                     data=json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.load(resp)

    headers["Authorization"] = "token " + str(post(f"/users/{user}/tokens", {"name": "t2-ssh"})["sha1"])
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    post("/user/keys", {"title": "t2", "key": (tmp_path / "id_ed25519.pub").read_text().strip()})
    repo = post("/user/repos", {"name": "ssh-check", "auto_init": True, "readme": "Default"})
    host = ini_value(server.rendered_ini, "server", "SSH_DOMAIN")
    port = ini_value(server.rendered_ini, "server", "SSH_PORT")
    assert repo["ssh_url"] == f"ssh://git@{host}:{port}/{user}/ssh-check.git", (
        f"Gogs advertises {repo['ssh_url']!r} for SSH (app.ini SSH_DOMAIN {host}, SSH_PORT {port})"
    )
    ssh = (f"ssh -i {key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
           f"-p {server.ssh_port}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "GIT_SSH_COMMAND": ssh,
           "GIT_TERMINAL_PROMPT": "0"}
    # Rewritten for loopback: the advertised host:port -> 127.0.0.1 and the free listen port (in -p).
    proc = subprocess.run(["git", "clone", f"git@{LOOPBACK}:{user}/ssh-check.git", "work"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"git clone over Gogs' built-in SSH server failed: {proc.stderr.strip()}"
    assert (tmp_path / "work" / "README.md").is_file()
    # Host keys come from ssh-keygen run through toolchain/gomod/gogs/runshim (the stand-in for a dependency
    # the module proxy refuses): they must exist and be unencrypted (-N "").
    keys_dir = Path(ini_value(server.ini, "server", "APP_DATA_PATH") or "") / "ssh"
    host_keys = sorted(p.name for p in keys_dir.glob("gogs.*") if p.suffix != ".pub")
    assert host_keys, f"no SSH host keys generated in {keys_dir}"


def test_gogs_answers_drones_login_calls_on_the_rendered_api_url(
        gogs: LoopbackGogs, rendered: list[Manifest], admin: dict[str, str], admin_token: str) -> None:
    """Drone logs in to Gogs by listing the user's tokens with HTTP Basic auth, creating a token named
    "drone" if missing, then calling the API with it; the Gogs bridge in Drone's pod forwards those
    calls to BRIDGE_GOGS_URL. Replay them against that URL as rendered, rewritten to Gogs' loopback port
    (Drone and the bridge themselves run in test_drone_program.py and test_bridge_program.py)."""
    dep = manifests.get(rendered, "Deployment", f"{RELEASE}-drone")
    env = {e["name"]: str(e.get("value", "")) for e in dep.container("gogs-bridge").get("env") or []}
    server = urllib.parse.urlsplit(env.get("BRIDGE_GOGS_URL", ""))
    gogs_port = ini_value(gogs.rendered_ini, "server", "HTTP_PORT")
    assert server.scheme and server.port == int(gogs_port or 0), (
        f"{dep.ref} containers[gogs-bridge] BRIDGE_GOGS_URL {env.get('BRIDGE_GOGS_URL')!r} is not on Gogs' "
        f"HTTP_PORT {gogs_port}"
    )
    base = f"{gogs.url}{server.path.rstrip('/')}/api/v1"
    basic = "Basic " + base64.b64encode(f"{admin['username']}:{admin['password']}".encode()).decode()

    def call(method: str, path: str, auth: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"{base}{path}", method=method, headers={
            "Authorization": auth, "Content-Type": "application/json"},
            data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return int(resp.status), json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert admin_token  # the admin exists (created by start.sh)
    status, tokens = call("GET", f"/users/{admin['username']}/tokens", basic)
    assert status == 200, f"listing tokens with Basic auth answered {status}: {tokens!r}"
    drone_token = next((t["sha1"] for t in tokens if t.get("name") == "drone"), None)
    if drone_token is None:
        status, created = call("POST", f"/users/{admin['username']}/tokens", basic, {"name": "drone"})
        assert status == 201, f"creating the drone token answered {status}: {created!r}"
        drone_token = created["sha1"]
    status, user = call("GET", "/user", f"token {drone_token}")
    assert status == 200 and user.get("username", user.get("login")) == admin["username"], (
        f"GET /api/v1/user with the drone token answered {status}: {user!r}"
    )
    status, repos = call("GET", "/user/repos", f"token {drone_token}")
    assert status == 200 and isinstance(repos, list), f"repository sync call answered {status}: {repos!r}"
