"""Helpers of the T2 modules that run Gogs, the Drone server and its Gogs bridge together
(test_drone_program.py, test_bridge_program.py): JSON calls, Drone's API with a token, the Gogs API,
waiting, git over HTTP, Drone's form login, and drone-pipelines' registration Job. The programs and
fixtures themselves are in realprog_harness.py and conftest.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from homeci import manifests, rendering
from homeci.manifests import Manifest
from homeci_testing.realprog import ClusterNames, Program
from homeci_testing.realprog_harness import LoopbackGogs, public_hosts, run_job
from homeci_testing.support import KUBE_VERSION, NAMESPACE, PIPELINES, PIPELINES_RELEASE, RELEASE

T = TypeVar("T")
SESSION_COOKIE = "_session_"


def secret_data(objects: list[Manifest], name: str) -> dict[str, str]:
    """The decoded keys of a rendered Secret."""
    obj = manifests.get(objects, "Secret", name).obj
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return out


def call(method: str, url: str, *, headers: dict[str, str] | None = None,
         body: Any = None) -> tuple[int, Any]:
    """One JSON call: (status, decoded body, or its text when it is not JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


class Api:
    """Drone's REST API with a token (Authorization: Bearer) or a session cookie."""

    def __init__(self, url: str, token: str = "", cookie: str = "") -> None:
        self.url, self.token, self.cookie = url, token, cookie

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
        return call(method, f"{self.url}{path}", headers=headers, body=body)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def gogs_api(gogs: LoopbackGogs, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Gogs' API on its loopback port with an access token."""
    return call(method, f"{gogs.url}/api/v1{path}", headers={"Authorization": f"token {token}"}, body=body)


def gogs_token(gogs: LoopbackGogs, user: str, password: str, name: str) -> str:
    """A new Gogs access token of ``user`` for the test's own calls (HTTP Basic auth, like Drone), once
    Gogs knows the user (start.sh creates the admin after Gogs has migrated its database)."""
    known = f"{gogs.url}/api/v1/users/{user}"
    wait_for(f"Gogs user {user}", lambda: call("GET", known)[0] == 200, timeout=90)
    status, body = call("POST", f"{gogs.url}/api/v1/users/{user}/tokens", headers=basic(user, password),
                        body={"name": name})
    assert status == 201, f"creating Gogs token {name} for {user} answered {status}: {body!r}"
    return str(body["sha1"])


def gogs_token_names(gogs: LoopbackGogs, user: str, password: str) -> list[str]:
    status, tokens = call("GET", f"{gogs.url}/api/v1/users/{user}/tokens", headers=basic(user, password))
    assert status == 200, f"listing the Gogs tokens of {user} answered {status}: {tokens!r}"
    return sorted(str(t["name"]) for t in tokens)


@dataclass
class Login:
    """What Drone's form login answered: the redirect and the session cookie (empty when none)."""

    status: int
    location: str
    cookie: str

    @property
    def error(self) -> str | None:
        """The message of Drone's /login/error page, or None."""
        split = urllib.parse.urlsplit(self.location)
        if split.path != "/login/error":
            return None
        return urllib.parse.parse_qs(split.query).get("message", [""])[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def form_login(drone_url: str, user: str, password: str, cookie: str = "") -> Login:
    """POST /login as the browser's login form does (``cookie``: a session the browser still has)."""
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    req = urllib.request.Request(f"{drone_url}/login", data=data, method="POST", headers=headers)
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(req, timeout=30) as resp:
            status, got = int(resp.status), resp.headers
    except urllib.error.HTTPError as exc:
        status, got = exc.code, exc.headers
    session = ""
    for value in got.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        if name == SESSION_COOKIE:
            session = rest.split(";", 1)[0]
    return Login(status, got.get("Location") or "", session)


def git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout.strip()


def git_env(home: Path) -> dict[str, str]:
    """A git environment that reads no system or user configuration."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t2", "GIT_AUTHOR_EMAIL": "t2@example.invalid",
            "GIT_COMMITTER_NAME": "t2", "GIT_COMMITTER_EMAIL": "t2@example.invalid"}


def push_url(gogs: LoopbackGogs, user: str, password: str, repo: str) -> str:
    """HTTP push URL of ``repo`` with credentials. Rewritten for loopback: the clone URL
    (https://git.<domain>/...) -> Gogs' own port on 127.0.0.1."""
    auth = urllib.parse.quote(user) + ":" + urllib.parse.quote(password, safe="")
    return f"http://{auth}@127.0.0.1:{gogs.port}/{repo}.git"


def pipelines_for(rendered: list[Manifest], scenario: str, owners: list[str]) -> list[Manifest]:
    """charts/drone-pipelines as installed next to this umbrella (its default scenario on the scenario's
    domain and registry host, ``owners`` as the owners of the target namespace), plus the umbrella's
    machine-token Secret its Job reads."""
    hosts = public_hosts(scenario)
    domain = hosts["git"].split(".", 1)[1]
    sets = [f"stack.domain={domain}", f"registry.host={hosts['registry']}"]
    sets += [f"targets[0].owners[{i}]={owner}" for i, owner in enumerate(owners)]
    objs = rendering.render(PIPELINES, [PIPELINES / "ci" / "default-values.yaml"], sets=tuple(sets),
                            release=PIPELINES_RELEASE, namespace=NAMESPACE, kube_version=KUBE_VERSION)
    return [*objs, manifests.get(rendered, "Secret", f"{RELEASE}-drone-machine")]


def register(pipelines: list[Manifest], names: ClusterNames, root: Path,
             **env: str) -> subprocess.CompletedProcess[str]:
    """drone-pipelines' registration Job, run once as rendered, against the real Drone. Its first part,
    labelling the target namespaces, needs a Kubernetes API that T2 does not have: HOMECI_NAMESPACES is
    emptied here (tests/unit runs that part against a stand-in API, tests/sim with the Job's own
    ServiceAccount on a real API server)."""
    return run_job(pipelines, f"{PIPELINES_RELEASE}-register", "register", root, names,
                   **{"HOMECI_NAMESPACES": "", **env})


def assert_gone(program: Program) -> None:
    """Nothing of ``program`` is left: its process and every process of its group have exited."""
    assert program.proc is not None and program.proc.poll() is not None, f"{program.name} still runs"
    try:
        os.killpg(program.proc.pid, 0)
    except ProcessLookupError:
        return
    pytest.fail(f"{program.name}: processes of group {program.proc.pid} outlived the test")
