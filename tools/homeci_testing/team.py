"""A team member who is not the admin, as the admin sets one up and as she then works.

The admin's part: a Gogs account (Gogs' admin API), an app namespace of the stack (the umbrella's
``global.appNamespaces``) and her name among the owners of a drone-pipelines target — the two ``helm
upgrade`` calls an operator runs. Her part: a Drone login through the same form a browser posts (so her
Drone API token is her own, not the machine token), her own repositories, pushes with plain ``git``.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeci import contract
from homeci.errors import HomeciError
from homeci.flow import driver
from homeci.flow.clients import Drone, Gogs
from homeci.flow.stack import Stack
from homeci.flow.web import basic, expect
from homeci.helm import Helm
from homeci.paths import charts_dir


@dataclass(frozen=True)
class Member:
    name: str
    password: str
    email: str
    namespace: str  # the app namespace she deploys to
    hosts: tuple[str, ...]  # host labels her apps may serve


def create_account(stack: Stack, member: Member) -> None:
    """The admin creates her Gogs account (Gogs' admin API). Idempotent."""
    gogs = Gogs(stack.web, stack.url("git"), stack.admin_user, stack.admin_password)
    resp = stack.web.request("GET", f"{stack.url('git')}/api/v1/users/{member.name}")
    if resp.status == 200:
        return
    gogs._call("POST", "/admin/users", {"username": member.name, "email": member.email,
                                         "password": member.password, "send_notify": False}, ok=(201,))


def grant_namespace(stack: Stack, member: Member, kubeconfig: Path, *, major: int = 3) -> None:
    """The operator's two upgrades: the umbrella serves one more app namespace, drone-pipelines lets her
    deploy there (hosts listed, so she cannot take anyone else's names)."""
    helm = Helm(major, kubeconfig=kubeconfig)
    umbrella_values = helm.get_values(stack.release, namespace=stack.namespace, all_values=True)
    apps = list((umbrella_values.get("global") or {}).get("appNamespaces") or [])
    if member.namespace not in {a["name"] for a in apps}:
        apps.append({"name": member.namespace, "create": True})
        helm.upgrade(stack.release, charts_dir() / "homeci-umbrella", namespace=stack.namespace,
                     install=False, timeout="10m",
                     extra=["--reuse-values", "--set-json", f"global.appNamespaces={json.dumps(apps)}"])
    pipelines = helm.get_values(contract.PIPELINES_RELEASE, namespace=stack.namespace)
    targets = list(pipelines.get("targets") or [])
    if not any(t.get("namespace") == member.namespace for t in targets):
        targets.append({"namespace": member.namespace, "owners": [member.name], "hosts": list(member.hosts)})
        helm.upgrade(contract.PIPELINES_RELEASE, charts_dir() / "drone-pipelines", namespace=stack.namespace,
                     install=False, timeout="5m",
                     extra=["--reuse-values", "--set-json", f"targets={json.dumps(targets)}"])


def drone_login(stack: Stack, user: str, password: str) -> tuple[int, str, str]:
    """POST the login form as a browser does: (status, Location, session cookie or "")."""
    body = urllib.parse.urlencode({"username": user, "password": password}).encode()
    resp = stack.web.request("POST", f"{stack.url('ci')}/login", body=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookie = ""
    for name, value in resp.headers.items():
        fresh = value.startswith("_session_=") and not value.startswith("_session_=;")
        if name.lower() == "set-cookie" and fresh:
            cookie = value.split(";", 1)[0]
    return resp.status, str(resp.headers.get("Location", "")), cookie


def drone_as(stack: Stack, member: Member) -> Drone:
    """Her own Drone API client: log in through the form, then ask for her API token with the session."""
    status, location, cookie = drone_login(stack, member.name, member.password)
    if not cookie:
        raise HomeciError(
            f"Drone login as {member.name}: HTTP {status} to {location or 'nowhere'}, no session")
    resp = stack.web.request("POST", f"{stack.url('ci')}/api/user/token", headers={"Cookie": cookie})
    token = str(expect(resp, (200,), f"Drone POST /api/user/token as {member.name}").json()["token"])
    return Drone(stack.web, stack.url("ci"), token)


def push_repository(stack: Stack, member: Member, source: Path, name: str, workdir: Path, *,
                    branch: str = "master", version: str | None = None) -> str:
    """Her repository ``<member>/<name>`` with ``source``'s files, pushed with plain git over HTTPS (her
    password, the homeci CA trusted; no verification switched off). Returns the pushed commit."""
    app = driver.App(source=source, owner=member.name, name=name, namespace=member.namespace,
                     host=f"{name}.{stack.domain}")
    repo = driver.prepare(app, workdir, domain=stack.domain)
    if version:
        (repo / "VERSION").write_text(version + "\n")
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSL_CAINFO": str(stack.ca_file), "GIT_AUTHOR_NAME": member.name,
           "GIT_AUTHOR_EMAIL": member.email, "GIT_COMMITTER_NAME": member.name,
           "GIT_COMMITTER_EMAIL": member.email, "HOME": str(workdir)}
    config = [f"http.curloptResolve={entry}" for entry in stack.git_resolve]
    auth = basic(member.name, member.password)["Authorization"]

    def git(*args: str) -> str:
        cmd = ["git"]
        for c in config:
            cmd += ["-c", c]
        cmd += ["-c", f"http.extraHeader=Authorization: {auth}"]
        proc = subprocess.run([*cmd, *args], cwd=repo, capture_output=True, text=True, check=False,
                              env={**_base_env(), **env})
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout).strip()[-400:]
            raise HomeciError(f"git {' '.join(args)} as {member.name}: {why}")
        return proc.stdout.strip()

    git("checkout", "-q", "-B", branch)
    git("add", "-A")
    git("commit", "-q", "-m", f"{name} {version or 'initial'}")
    git("push", "-q", "--force", f"{stack.url('git')}/{member.name}/{name}.git", f"HEAD:refs/heads/{branch}")
    return git("rev-parse", "HEAD")


def _base_env() -> dict[str, Any]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
