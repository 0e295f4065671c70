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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homeci import contract
from homeci.errors import HomeciError
from homeci.flow import timeline
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
    # push → served cut into consecutive wait/work segments (empty without a Kubernetes API to watch)
    path: list[timeline.Segment] = field(default_factory=list)
    marks: list[timeline.Mark] = field(default_factory=list)  # what the watch saw (for benchmarks)

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
SAMPLE_NAME = "sample-app"


def prepare(app: App, workdir: Path, *, domain: str | None = None) -> Path:
    """A fresh git repository holding the app's files, on branch main.

    The sample app's manifests name the default domain (``homeci.localhost``) and the app
    ``sample-app``; for a stack with another ``global.domain``, or pushed as a repository of another
    name (a new app), they are adapted the way a user would edit them (registry, Ingress host, object
    names and labels)."""
    if shutil.which("git") is None:
        raise HomeciError("git is not installed: apt-get install git (the flow pushes with it)")
    repo = workdir / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(app.source, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for manifest in sorted((repo / "k8s").glob("*.y*ml")):
        text = manifest.read_text()
        if domain and domain != SAMPLE_DOMAIN:
            text = text.replace(SAMPLE_DOMAIN, domain)
        if app.name != SAMPLE_NAME:
            text = text.replace(SAMPLE_NAME, app.name)
        manifest.write_text(text)
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
               expect_none: bool = False,
               on_poll: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
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
        if on_poll is not None:
            on_poll(build)
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


def app_url(stack: Stack, app: App) -> str:
    return f"https://{app.host}" + ("" if stack.https_port == 443 else f":{stack.https_port}") + "/"


def wait_served(stack: Stack, app: App, version: str, *, timeout: float, interval: float = 1.0) -> float:
    """Request https://<app host>/ until it answers with ``version``; returns when it first did."""
    url = app_url(stack, app)
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
        time.sleep(interval)
    raise HomeciError(f"{url} did not answer with version {version} within {timeout:.0f}s (last: {seen})")


class ServedProbe:
    """Asks https://<app host>/ every ``interval`` seconds, once :meth:`arm` was called (the deploy step
    runs), whether it answers with ``version``; :attr:`served` is when it first did (this clock)."""

    def __init__(self, stack: Stack, app: App, version: str, interval: float = 0.2) -> None:
        self.stack, self.app, self.version, self.interval = stack, app, version, interval
        self.served: float | None = None
        self._armed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="homeci-served-probe")
        self._thread.start()

    def arm(self) -> None:
        self._armed.set()

    def stop(self) -> None:
        self._stop.set()
        self._armed.set()

    def _run(self) -> None:
        url = app_url(self.stack, self.app)
        self._armed.wait()
        while not self._stop.is_set() and self.served is None:
            try:
                resp = self.stack.web.request("GET", url, timeout=5)
                if resp.status == 200 and self.version in resp.body.decode(errors="replace"):
                    self.served = time.time()
                    return
            except (HomeciError, OSError):
                pass
            self._stop.wait(self.interval)


def step_phases(build: dict[str, Any]) -> list[Phase]:
    rows = []
    for stage in build.get("stages") or []:
        for step in stage.get("steps") or []:
            start, stop = _ts(step.get("started")), _ts(step.get("stopped"))
            secs = (stop - start) if start and stop else None
            rows.append(Phase(str(step["name"]), secs, str(step.get("status"))))
    return rows


def _deploying(build: dict[str, Any]) -> bool:
    steps = [s for st in build.get("stages") or [] for s in st.get("steps") or []]
    return any(s.get("name") == "deploy" and s.get("status") != "pending" for s in steps)


def _watch(stack: Stack, app: App) -> timeline.Watch | None:
    if stack.kube is None:
        return None
    try:
        watch = timeline.Watch(stack.kube, contract.Names(stack.release).build_namespace, app.namespace)
        watch.start()
    except Exception:  # without a watch the round still runs, only without sub-phases
        return None
    return watch


def _build_log(drone: Drone, app: App, build: dict[str, Any], step_name: str) -> str:
    for stage in build.get("stages") or []:
        for step in stage.get("steps") or []:
            if step.get("name") == step_name:
                try:
                    return drone.logs(app.owner, app.name, int(build["number"]), int(stage["number"]),
                                      int(step["number"]))
                except HomeciError:
                    return ""
    return ""


def deliver(stack: Stack, app: App, repo: Path, version: str, *, timeout: float = 900,
            progress: Progress | None = None, edit: Callable[[Path], None] | None = None) -> Round:
    """One round: commit ``version``, push, follow the build, check the image and the served version.

    With a Kubernetes API (``stack.kube``) the round also records where the time went
    (:attr:`Round.path`, see :mod:`homeci.flow.timeline`)."""
    _, drone, registry = clients(stack)
    sha = commit(repo, version, edit=edit)
    rnd = Round(version=version, sha=sha)
    watch = _watch(stack, app)
    probe = ServedProbe(stack, app, version)
    try:
        pushed = push(stack, repo, app)
        if progress:
            progress(f"pushed {sha[:12]} (version {version})")
        build = wait_build(drone, app, sha, timeout=timeout, progress=progress,
                           on_poll=lambda b: probe.arm() if _deploying(b) else None)
        assert build is not None
        rnd.build = build
        created = _ts(build.get("created"))
        # Drone stamps whole seconds: a fast webhook can look earlier than the push; clamp at zero.
        rnd.phases.append(Phase("webhook", max(0.0, created - pushed) if created else None, "ok",
                                f"push → build #{build['number']} created"))
        rnd.phases.extend(step_phases(build))
        if build.get("status") != "success":
            rnd.phases.append(Phase("build", None, str(build.get("status")),
                                    failed_step_log(drone, app, build)))
            return rnd
        image = f"{app.owner}/{app.name}"
        found = registry.manifest(image, sha)
        where = f"{stack.hosts['registry']}/{image}:{sha[:12]}"
        rnd.phases.append(Phase("image", None, "ok" if found else "missing",
                                f"{where} {found[0][:19] if found else ''}"))
        finished = _ts(build.get("finished")) or time.time()
        probe.arm()
        served = probe.served or wait_served(stack, app, version, timeout=180, interval=0.2)
        served = min(served, probe.served or served)
        rnd.phases.append(Phase("first request", max(0.0, served - finished), "ok",
                                f"https://{app.host}/ → {version}"))
        rnd.phases.append(Phase("total", served - pushed, "ok", "push → new version served"))
        if watch is not None:
            time.sleep(0.5)  # the last events (the deploy container's end) reach the watch
            rnd.marks = watch.snapshot()
            rnd.path = timeline.critical_path(rnd.marks, timeline.Inputs(
                pushed=pushed, served=served, build_created=created, build_number=int(build["number"]),
                build_namespace=contract.Names(stack.release).build_namespace,
                app_namespace=app.namespace, deployment=app.name,
                steps=[p.name for p in step_phases(build)], repo=f"{app.owner}/{app.name}",
                kaniko=timeline.kaniko_timings(_build_log(drone, app, build, "build"))))
        return rnd
    finally:
        probe.stop()
        if watch is not None:
            watch.stop()


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
    them (``library/<name>:<tag>``): what an air-gapped operator does once (see docs/app-developers.md)."""
    from homeci.flow.clients import dockerfile_bases, mirror_path, push_oci_layout, read_oci_archive

    _, _, registry = clients(stack)
    registry.wait_answering()  # `up` seeds as soon as the registry's pod is Ready, maybe before its route
    seeded = []
    for base in dockerfile_bases(dockerfile):
        path = mirror_path(base)
        repo, _, tag = path.rpartition(":")
        blobs, manifest = read_oci_archive(archive_for(base))
        push_oci_layout(registry, blobs, manifest, repo, tag or "latest")
        seeded.append(f"{stack.hosts['registry']}/{path}")
    return seeded
