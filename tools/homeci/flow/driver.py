"""The push-to-deploy loop, driven from outside like a developer would: push, watch, request.

:func:`deliver` runs one round (a commit with a given version → Drone build → image in the registry →
rollout → the version served over HTTPS); :func:`run` does the whole smoke test: prepare the repository,
first push (the app is created), second push (it is updated). Every round returns :class:`Phase` rows
for the report table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homeci.errors import HomeciError
from homeci.flow.clients import Drone, Gogs, Registry
from homeci.flow.stack import Stack
from homeci.flow.web import basic

TEMPLATE = "homeci-build-deploy.yaml"
FINISHED = {"success", "failure", "error", "killed", "skipped", "declined"}
Progress = Callable[[str], None]


@dataclass
class Phase:
    name: str
    seconds: float | None
    status: str
    detail: str = ""


@dataclass
class Round:
    version: str
    sha: str
    build: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.status in ("ok", "success") for p in self.phases)


# The branch the flow pushes to deploy: new Gogs repositories default to it (gogs.config.defaultBranch).
DEPLOY_BRANCH = "main"


@dataclass
class App:
    """The app under test: a folder with .drone.yml, Dockerfile, VERSION and k8s/ (examples/sample-app)."""

    source: Path
    owner: str
    name: str
    namespace: str  # where it is deployed (the .drone.yml's `namespace` input)
    host: str  # sample-app.<domain>


def clients(stack: Stack) -> tuple[Gogs, Drone, Registry]:
    return (Gogs(stack.web, stack.url("git"), stack.admin_user, stack.admin_password),
            Drone(stack.web, stack.url("ci"), stack.machine_token),
            Registry(stack.web, stack.url("registry"), stack.registry_user, stack.registry_password))


def _git(repo: Path, *args: str, stack: Stack | None = None) -> str:
    cmd = ["git"]
    if stack is not None:
        cmd += ["-c", f"http.sslCAInfo={stack.ca_file}"]
        for entry in stack.git_resolve:
            cmd += ["-c", f"http.curloptResolve={entry}"]
        auth = basic(stack.admin_user, stack.admin_password)["Authorization"]
        cmd += ["-c", f"http.extraHeader=Authorization: {auth}"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "homeci smoke",
           "GIT_AUTHOR_EMAIL": "smoke@homeci.invalid", "GIT_COMMITTER_NAME": "homeci smoke",
           "GIT_COMMITTER_EMAIL": "smoke@homeci.invalid"}
    if stack is not None:
        # The environment wins over `-c http.sslCAInfo` in git: pin it too (some machines set it).
        env["GIT_SSL_CAINFO"] = str(stack.ca_file)
        env.pop("GIT_SSL_CAPATH", None)
    proc = subprocess.run([*cmd, *args], cwd=repo, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise HomeciError(f"git {args[0]} in {repo} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc.stdout.strip()


SAMPLE_DOMAIN = "homeci.localhost"


def prepare(app: App, workdir: Path, *, domain: str | None = None) -> Path:
    """A fresh git repository holding the app's files, on branch main.

    The sample app's manifests name the default domain (``homeci.localhost``); for a stack with another
    ``global.domain`` they are adapted the way a user would edit them (registry and Ingress host)."""
    if shutil.which("git") is None:
        raise HomeciError("git is not installed: apt-get install git (the flow pushes with it)")
    repo = workdir / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(app.source, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if domain and domain != SAMPLE_DOMAIN:
        for manifest in sorted((repo / "k8s").glob("*.y*ml")):
            manifest.write_text(manifest.read_text().replace(SAMPLE_DOMAIN, domain))
    _git(repo, "init", "-q", "-b", DEPLOY_BRANCH)
    return repo


def commit(repo: Path, version: str, *, edit: Callable[[Path], None] | None = None) -> str:
    (repo / "VERSION").write_text(version + "\n")
    if edit is not None:
        edit(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"homeci smoke: version {version}")
    return _git(repo, "rev-parse", "HEAD")


def push(stack: Stack, repo: Path, app: App, branch: str = DEPLOY_BRANCH) -> float:
    url = f"{stack.url('git')}/{app.owner}/{app.name}.git"
    started = time.time()
    _git(repo, "push", "-q", "--force", url, f"HEAD:refs/heads/{branch}", stack=stack)
    return started


def ensure_repository(stack: Stack, app: App) -> None:
    """The repository in Gogs, known to Drone and activated (webhook created); the template registered."""
    gogs, drone, _ = clients(stack)
    gogs.create_repo(app.owner, app.name)
    if drone.template(app.owner, TEMPLATE) is None:
        raise HomeciError(
            f"Drone has no template {TEMPLATE} for {app.owner}: install charts/drone-pipelines with "
            f"targets[].owners including {app.owner} and targets[].namespace {app.namespace}"
        )
    names = {f"{r.get('namespace')}/{r.get('name')}" for r in drone.sync()}
    if f"{app.owner}/{app.name}" not in names:
        raise HomeciError(
            f"Drone's repository sync does not list {app.owner}/{app.name} (has {sorted(names)})")
    repo = drone.activate(app.owner, app.name)
    branch = repo.get("default_branch")
    if branch and branch != DEPLOY_BRANCH:
        # The pipeline template deploys only the repository's default branch (other branches only build).
        raise HomeciError(
            f"{app.owner}/{app.name}: its default branch is {branch!r} in Drone, the flow pushes "
            f"{DEPLOY_BRANCH!r}, so its builds would not deploy: set the repository's default branch to "
            f"{DEPLOY_BRANCH} in Gogs (Settings → Branches; new repositories follow "
            "gogs.config.defaultBranch) and press Repair in Drone's repository settings")


def _ts(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def wait_build(drone: Drone, app: App, sha: str, *, timeout: float, progress: Progress | None = None,
               expect_none: bool = False) -> dict[str, Any] | None:
    """Follow the build of commit ``sha`` until it finishes; with ``expect_none``, prove none starts."""
    deadline = time.monotonic() + timeout
    number = None
    last = ""
    while time.monotonic() < deadline:
        if number is None:
            for b in drone.builds(app.owner, app.name):
                if b.get("after") == sha:
                    number = int(b["number"])
                    break
            if number is None:
                time.sleep(1)
                continue
            if expect_none:
                return drone.build(app.owner, app.name, number)
        build = drone.build(app.owner, app.name, number)
        steps = [s for st in build.get("stages") or [] for s in st.get("steps") or []]
        line = " ".join(f"{s['name']}:{s['status']}" for s in steps) or build.get("status", "")
        if progress and line != last:
            progress(f"build #{number} {line}")
            last = line
        if build.get("status") in FINISHED:
            return build
        time.sleep(1)
    if expect_none:
        return None
    where = f"build #{number}" if number else "no build"
    raise HomeciError(
        f"{app.owner}/{app.name}: {where} for commit {sha[:12]} did not finish in {timeout:.0f}s")


def failed_step_log(drone: Drone, app: App, build: dict[str, Any]) -> str:
    for stage in build.get("stages") or []:
        for step in stage.get("steps") or []:
            if step.get("status") not in ("success", "skipped", "pending", "running"):
                log = drone.logs(app.owner, app.name, int(build["number"]), int(stage["number"]),
                                 int(step["number"]))
                error = f" {step['error']}" if step.get("error") else ""
                return f"step {step['name']} ({step['status']}){error}:\n{log[-3000:]}"
    return ""


def wait_served(stack: Stack, app: App, version: str, *, timeout: float) -> float:
    """Request https://<app host>/ until it answers with ``version``; returns when it first did."""
    url = f"https://{app.host}" + ("" if stack.https_port == 443 else f":{stack.https_port}") + "/"
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            resp = stack.web.request("GET", url, timeout=10)
            seen = f"HTTP {resp.status} {resp.body.decode(errors='replace').strip()[:80]}"
            if resp.status == 200 and version in resp.body.decode(errors="replace"):
                return time.time()
        except (HomeciError, OSError) as exc:
            seen = str(exc)
        time.sleep(1)
    raise HomeciError(f"{url} did not answer with version {version} within {timeout:.0f}s (last: {seen})")


def step_phases(build: dict[str, Any]) -> list[Phase]:
    rows = []
    for stage in build.get("stages") or []:
        for step in stage.get("steps") or []:
            start, stop = _ts(step.get("started")), _ts(step.get("stopped"))
            secs = (stop - start) if start and stop else None
            rows.append(Phase(str(step["name"]), secs, str(step.get("status"))))
    return rows


def deliver(stack: Stack, app: App, repo: Path, version: str, *, timeout: float = 900,
            progress: Progress | None = None, edit: Callable[[Path], None] | None = None) -> Round:
    """One round: commit ``version``, push, follow the build, check the image and the served version."""
    _, drone, registry = clients(stack)
    sha = commit(repo, version, edit=edit)
    rnd = Round(version=version, sha=sha)
    pushed = push(stack, repo, app)
    if progress:
        progress(f"pushed {sha[:12]} (version {version})")
    build = wait_build(drone, app, sha, timeout=timeout, progress=progress)
    assert build is not None
    rnd.build = build
    created = _ts(build.get("created"))
    # Drone stamps whole seconds: a fast webhook can look earlier than the push; clamp at zero.
    rnd.phases.append(Phase("webhook", max(0.0, created - pushed) if created else None, "ok",
                            f"push → build #{build['number']} created"))
    rnd.phases.extend(step_phases(build))
    if build.get("status") != "success":
        rnd.phases.append(Phase("build", None, str(build.get("status")), failed_step_log(drone, app, build)))
        return rnd
    image = f"{app.owner}/{app.name}"
    found = registry.manifest(image, sha)
    rnd.phases.append(Phase("image", None, "ok" if found else "missing",
                            f"{stack.hosts['registry']}/{image}:{sha[:12]} {found[0][:19] if found else ''}"))
    finished = _ts(build.get("finished")) or time.time()
    served = wait_served(stack, app, version, timeout=180)
    rnd.phases.append(Phase("first request", max(0.0, served - finished), "ok",
                            f"https://{app.host}/ → {version}"))
    rnd.phases.append(Phase("total", served - pushed, "ok", "push → new version served"))
    return rnd


def run(stack: Stack, app: App, workdir: Path, *, rounds: int = 2, timeout: float = 900,
        progress: Progress | None = None) -> list[Round]:
    """The smoke test: repository ready, then ``rounds`` pushes, each served with its new version."""
    ensure_repository(stack, app)
    repo = prepare(app, workdir, domain=stack.domain)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    results = []
    for i in range(1, rounds + 1):
        # semantic versions with a unique pre-release part: the sample app's own test checks the format
        rnd = deliver(stack, app, repo, f"1.0.{i}-smoke.{stamp}", timeout=timeout, progress=progress)
        results.append(rnd)
        if not rnd.ok:
            break
    return results


def seed_base_images(stack: Stack, dockerfile: Path, archive_for: Callable[[str], Path]) -> list[str]:
    """Push the Dockerfile's base images into the stack's registry where kaniko's mirror lookup finds
    them (``library/<name>:<tag>``): what an air-gapped operator does once (see the README)."""
    from homeci.flow.clients import dockerfile_bases, mirror_path, push_oci_layout, read_oci_archive

    _, _, registry = clients(stack)
    seeded = []
    for base in dockerfile_bases(dockerfile):
        path = mirror_path(base)
        repo, _, tag = path.rpartition(":")
        blobs, manifest = read_oci_archive(archive_for(base))
        push_oci_layout(registry, blobs, manifest, repo, tag or "latest")
        seeded.append(f"{stack.hosts['registry']}/{path}")
    return seeded
