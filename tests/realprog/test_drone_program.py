"""The real Drone 2.28.2 server (built from the pinned source archive, the same code as the drone/drone
image the chart deploys) next to the real Gogs 0.14.3, both from the umbrella's render, wired as in the
cluster: in-cluster Service names resolve to 127.0.0.1 (homeci_testing.realprog.ClusterNames: a private
/etc/hosts per process) and only their ports are rewritten to the programs' loopback ports.

The flow, in test order: the chart's bootstrap Job (form login through the Gogs bridge, repository
sync) -> the machine token from DRONE_USER_CREATE -> sync lists a repository created in Gogs ->
activation creates the Gogs webhook on the rendered in-cluster host (the bridge's `hooks` port) -> the
drone-pipelines registration Job registers the template and organisation secrets -> `git push` of
examples/sample-app -> Gogs delivers the webhook through the bridge ->
Drone creates build #1, expanded from the registered template by Drone itself, pending for a runner ->
the real drone-runner-kube with the rendered RPC secret polls and is handed that stage.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from drone_stack import (
    Api,
    assert_gone,
    call,
    git,
    git_env,
    gogs_api,
    gogs_token_names,
    pipelines_for,
    push_url,
    register,
    secret_data,
    wait_for,
)
from drone_stack import gogs_token as gogs_token_of

from homeci import contract, manifests, paths, toolchain
from homeci.manifests import Manifest
from homeci_testing import drone as drone_chart
from homeci_testing.realprog import LOOPBACK, ClusterNames, LoopbackPod, Program
from homeci_testing.realprog_harness import (
    LoopbackDrone,
    LoopbackGogs,
    binary,
    loopback_env,
    run_job,
    stray_writes,
)
from homeci_testing.support import PIPELINES_RELEASE, RELEASE

SAMPLE_APP = paths.sample_app()
REPO_NAME = "sample-app"
TEMPLATE = "homeci-build-deploy.yaml"
T = TypeVar("T")


# -- the stack: names, gogs, drone, admin, machine_token and api are conftest.py's fixtures -------
@pytest.fixture(scope="module")
def gogs_token(gogs: LoopbackGogs, admin: dict[str, str]) -> str:
    """A Gogs API token of the admin (created by start.sh) for the test's own Gogs calls."""
    return gogs_token_of(gogs, admin["username"], admin["password"], "homeci-t2-drone")


@pytest.fixture(scope="module")
def bootstrap(rendered: list[Manifest], drone: LoopbackDrone, gogs_token: str, names: ClusterNames,
              tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The chart's bootstrap Job (post-install hook), run once as rendered."""
    return run_job(rendered, f"{RELEASE}-drone-bootstrap", "bootstrap",
                   tmp_path_factory.mktemp("bootstrap"), names, BOOTSTRAP_INTERVAL="1")


@pytest.fixture(scope="module")
def sample_repo(gogs: LoopbackGogs, gogs_token: str, admin: dict[str, str]) -> str:
    """An empty repository in Gogs, created after the bootstrap's sync (so only a later sync finds it)."""
    status, body = gogs_api(gogs, gogs_token, "POST", "/user/repos", {"name": REPO_NAME, "private": True})
    assert status == 201, f"creating {admin['username']}/{REPO_NAME} in Gogs answered {status}: {body!r}"
    return f"{admin['username']}/{REPO_NAME}"


# -- start-up --------------------------------------------------------------------------------------
def test_server_is_the_pinned_build_and_healthy(drone: LoopbackDrone) -> None:
    status, body = call("GET", f"{drone.url}/version")
    # 2.28.1, not 2.28.2: upstream did not bump version/version.go for the v2.28.2 tag; the toolchain
    # checks the binary's build info (built from the pinned v2.28.2 archive) instead.
    assert status == 200 and body == {"version": "2.28.1"}, f"Drone /version answered {status} {body!r}"
    assert toolchain.tool("drone-server").version == "v2.28.2"
    status, _ = call("GET", f"{drone.url}/healthz")
    assert status == 200, f"Drone /healthz answered {status}"
    assert drone.rendered_env["DRONE_DATABASE_DRIVER"] == "sqlite3"
    database = Path(drone.env["DRONE_DATABASE_DATASOURCE"])
    assert database.is_file() and drone.pod.host_path("/data") in database.parents, (
        f"Deployment/{RELEASE}-drone env DRONE_DATABASE_DATASOURCE: no SQLite database at {database}"
    )


def test_enterprise_features_homeci_uses_are_compiled_in(api: Api) -> None:
    """Templates and organisation secrets exist only in the non-`oss` build (the drone/drone image);
    the Apache-2.0 `oss` build answers 501 here and could not run homeci's pipelines."""
    # No licence key: the built-in trial licence, which for Gogs has no limits (0 = unlimited; the
    # build limit itself is not exposed, /varz shows users ("seats") and repositories).
    status, varz = api("GET", "/varz")
    assert status == 200 and varz["license"]["kind"] == "trial", f"GET /varz answered {status} {varz!r}"
    assert (varz["license"].get("seats", 0), varz["license"].get("repos", 0)) == (0, 0), varz["license"]
    for path in ("/api/templates", "/api/secrets"):
        status, body = api("GET", path)
        assert status == 200 and isinstance(body, list), (
            f"GET {path} answered {status} {body!r}: this Drone build lacks what drone-pipelines uses"
        )


# -- bootstrap: the admin, its Gogs token, the machine token ---------------------------------------
def test_bootstrap_job_logs_in_through_gogs_and_syncs(bootstrap: subprocess.CompletedProcess[str],
                                                      gogs: LoopbackGogs, admin: dict[str, str]) -> None:
    assert bootstrap.returncode == 0, (
        f"Job/{RELEASE}-drone-bootstrap exited {bootstrap.returncode}: {bootstrap.stderr.strip()[-500:]}"
    )
    assert f"logged in as '{admin['username']}'" in bootstrap.stdout, bootstrap.stdout
    # Drone's form login asked Gogs (Basic auth, through the bridge) for a token named "drone": it
    # now exists in Gogs.
    tokens = gogs_token_names(gogs, admin["username"], admin["password"])
    assert tokens.count("drone") == 1, f"Gogs holds {tokens} after the bootstrap Job: one drone expected"


def test_machine_token_from_user_create_is_the_admins_api_token(api: Api, admin: dict[str, str],
                                                                bootstrap: Any) -> None:
    status, user = api("GET", "/api/user")
    assert status == 200, f"GET /api/user with the Secret/{RELEASE}-drone-machine token: {status} {user!r}"
    assert user["login"] == admin["username"] and user["admin"] is True and user["machine"] is False, (
        f"DRONE_USER_CREATE made {user!r}, expected the admin {admin['username']!r} (admin, not machine)"
    )
    assert user["active"] is True
    status, _ = Api(api.url, "not-the-machine-token")("GET", "/api/user")
    assert status == 401, f"a wrong token was answered {status}"


def test_bootstrap_job_is_idempotent(rendered: list[Manifest], bootstrap: Any, gogs: LoopbackGogs,
                                     admin: dict[str, str], names: ClusterNames, tmp_path: Path) -> None:
    again = run_job(rendered, f"{RELEASE}-drone-bootstrap", "bootstrap", tmp_path, names,
                    BOOTSTRAP_INTERVAL="1")
    assert again.returncode == 0, f"second bootstrap run exited {again.returncode}: {again.stderr.strip()}"
    # Every run logs in again: through the Gogs bridge Drone reuses the admin's token.
    assert f"logged in as '{admin['username']}'" in again.stdout, again.stdout
    tokens = gogs_token_names(gogs, admin["username"], admin["password"])
    assert [n for n in tokens if n.startswith("drone")] == ["drone"], (
        f"the second login changed the admin's Gogs tokens: {tokens}"
    )


def test_bootstrap_job_with_a_wrong_machine_token_fails_in_one_line(
        rendered: list[Manifest], drone: LoopbackDrone, names: ClusterNames, tmp_path: Path) -> None:
    proc = run_job(rendered, f"{RELEASE}-drone-bootstrap", "bootstrap", tmp_path, names,
                   DRONE_TOKEN="wrong-token-0000", BOOTSTRAP_TIMEOUT="30", BOOTSTRAP_INTERVAL="1")
    err = proc.stderr.strip()
    assert proc.returncode == 1, f"bootstrap with a wrong token exited {proc.returncode}: {err}"
    one_line = err.count("\n") == 0
    assert one_line and err.startswith("bootstrap: error: Drone rejects the machine token (HTTP 401"), (
        f"expected one error line naming the rejected token, got: {err!r}"
    )
    assert "wrong-token-0000" not in err


# -- repositories: sync, activation, webhook --------------------------------------------------------
def test_sync_lists_a_repository_created_in_gogs(api: Api, bootstrap: Any, sample_repo: str) -> None:
    status, repos = api("POST", "/api/user/repos")
    assert status == 200, f"POST /api/user/repos (sync) answered {status}: {repos!r}"
    slugs = {r["slug"] for r in repos}
    assert sample_repo in slugs, f"Drone's sync does not list {sample_repo} (got {sorted(slugs)})"
    repo = next(r for r in repos if r["slug"] == sample_repo)
    assert repo["private"] is True and repo["active"] is False, f"Drone holds {sample_repo} as {repo!r}"


def test_activation_creates_the_gogs_webhook_on_the_internal_host(
        api: Api, drone: LoopbackDrone, gogs: LoopbackGogs, gogs_token: str, sample_repo: str,
        names: ClusterNames) -> None:
    status, _ = api("POST", "/api/user/repos")
    status, repo = api("POST", f"/api/repos/{sample_repo}")
    assert status == 200 and repo["active"] is True, f"activating {sample_repo} answered {status}: {repo!r}"
    status, hooks = gogs_api(gogs, gogs_token, "GET", f"/repos/{sample_repo}/hooks")
    assert status == 200 and len(hooks) == 1, f"Gogs lists {hooks!r} as hooks of {sample_repo}"
    hook = hooks[0]
    url = urllib.parse.urlsplit(hook["config"]["url"])
    rendered_host = drone.rendered_env["DRONE_SERVER_PROXY_HOST"]
    proto = drone.rendered_env["DRONE_SERVER_PROXY_PROTO"]
    rendered_name = rendered_host.rsplit(":", 1)[0]
    assert (url.scheme, url.hostname, url.path) == (proto, rendered_name, "/hook"), (
        f"Drone registered the webhook {hook['config']['url']}, expected "
        f"{proto}://{rendered_host}/hook (DRONE_SERVER_PROXY_PROTO/HOST of Deployment/{RELEASE}-drone)"
    )
    # Only the port is the loopback stand-in for the Service port `hooks`: the Gogs bridge's webhook
    # listener, which forwards to Drone.
    assert url.port == drone.bridge.hooks_port and names.rewrite(rendered_host) == url.netloc
    assert hook["type"] == "gogs" and hook["config"]["content_type"] == "json" and hook["active"], hook
    assert "push" in hook["events"], f"the Drone webhook does not fire on push: {hook['events']}"
    allow = [h.strip() for h in (gogs.ini.split("LOCAL_NETWORK_ALLOWLIST", 1)[1].split("\n", 1)[0]
                                 .strip(" =").split(","))]
    assert rendered_name in allow, f"Gogs' LOCAL_NETWORK_ALLOWLIST {allow} lacks Drone's webhook host"


# -- drone-pipelines: the registration Job against the real API ------------------------------------
@pytest.fixture(scope="module")
def pipelines(rendered: list[Manifest], scenario: str, admin: dict[str, str]) -> list[Manifest]:
    """charts/drone-pipelines next to this umbrella, the admin owning the target namespace."""
    return pipelines_for(rendered, scenario, [admin["username"]])


def _register(pipelines: list[Manifest], names: ClusterNames, root: Path,
              **env: str) -> subprocess.CompletedProcess[str]:
    return register(pipelines, names, root, **env)


@pytest.fixture(scope="module")
def registered(pipelines: list[Manifest], drone: LoopbackDrone, bootstrap: Any, names: ClusterNames,
               tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    return _register(pipelines, names, tmp_path_factory.mktemp("register"))


def test_registration_job_creates_templates_and_org_secrets(registered: subprocess.CompletedProcess[str],
                                                            pipelines: list[Manifest], api: Api) -> None:
    assert registered.returncode == 0, (
        f"Job/{PIPELINES_RELEASE}-register exited {registered.returncode}: {registered.stderr.strip()[-500:]}"
    )
    owners = str(next(e["value"] for _, c in manifests.get(pipelines, "Job", f"{PIPELINES_RELEASE}-register")
                      .containers() for e in c["env"] if e["name"] == "HOMECI_OWNERS")).split(",")
    rendered_templates = manifests.get(pipelines, "ConfigMap", f"{PIPELINES_RELEASE}-templates").obj["data"]
    for owner in owners:
        for name, text in rendered_templates.items():
            assert f"template {owner}/{name}: created" in registered.stdout, registered.stdout
            status, tpl = api("GET", f"/api/templates/{owner}/{name}")
            assert status == 200 and tpl["data"] == text, (
                f"Drone's template {owner}/{name} ({status}) is not ConfigMap/{PIPELINES_RELEASE}-templates"
            )
        status, secrets = api("GET", f"/api/secrets/{owner}")
        assert status == 200, f"GET /api/secrets/{owner} answered {status}: {secrets!r}"
        got = {s["name"]: s for s in secrets}
        for name in ("homeci_registry_username", "homeci_registry_password"):
            assert name in got, f"organisation secret {owner}/{name} missing in Drone (have {sorted(got)})"
            # Drone omits false booleans ("omitempty"): a missing pull_request means false.
            assert not got[name].get("pull_request"), f"secret {owner}/{name} is exposed to pull requests"
            assert not got[name].get("data"), f"Drone's API returned the value of secret {owner}/{name}"


def test_registration_job_rerun_is_unchanged_and_updates_a_changed_template(
        registered: Any, pipelines: list[Manifest], api: Api, names: ClusterNames, admin: dict[str, str],
        tmp_path: Path) -> None:
    owner = admin["username"]
    again = _register(pipelines, names, tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert f"template {owner}/{TEMPLATE}: unchanged" in again.stdout, again.stdout
    templates = manifests.get(pipelines, "ConfigMap", f"{PIPELINES_RELEASE}-templates")
    rendered_text = templates.obj["data"][TEMPLATE]
    # Someone changed the template in Drone (or the chart's template changed): the Job puts it back.
    status, body = api("PATCH", f"/api/templates/{owner}/{TEMPLATE}", {"data": "kind: pipeline\n# older\n"})
    assert status == 200, f"PATCH /api/templates/{owner}/{TEMPLATE} answered {status}: {body!r}"
    third = _register(pipelines, names, tmp_path / "third")
    assert third.returncode == 0, third.stderr
    assert f"template {owner}/{TEMPLATE}: updated" in third.stdout, third.stdout
    status, tpl = api("GET", f"/api/templates/{owner}/{TEMPLATE}")
    assert tpl["data"] == rendered_text, "the registration Job did not restore the rendered template"


def test_registration_job_with_a_wrong_token_fails_in_one_line(pipelines: list[Manifest],
                                                               drone: LoopbackDrone,
                                                               names: ClusterNames, tmp_path: Path) -> None:
    proc = _register(pipelines, names, tmp_path, HOMECI_DRONE_TOKEN="wrong-token-1f3a")
    err = proc.stderr.strip()
    assert proc.returncode == 1, f"registration with a wrong token exited {proc.returncode}: {err}"
    assert err.startswith("ERROR: ") and "\n" not in err and "401" in err, f"one error line expected: {err!r}"
    assert "Secret homeci/homeci-drone-machine key token" in err and "wrong-token-1f3a" not in err, err


# -- push -> webhook -> build #1 --------------------------------------------------------------------
@pytest.fixture(scope="module")
def pushed(api: Api, gogs: LoopbackGogs, admin: dict[str, str], sample_repo: str, registered: Any,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """examples/sample-app pushed to the activated Gogs repository; returns commit and branch."""
    status, repo = api("GET", f"/api/repos/{sample_repo}")
    if not repo.get("active"):
        api("POST", "/api/user/repos")
        status, repo = api("POST", f"/api/repos/{sample_repo}")
    assert status == 200 and repo["active"], f"{sample_repo} is not active in Drone: {repo!r}"
    branch = str(repo.get("default_branch") or "master")
    work = tmp_path_factory.mktemp("push") / "sample-app"
    shutil.copytree(SAMPLE_APP, work)
    env = git_env(work.parent)
    git(["init", "-q", "-b", branch], work, env)
    git(["add", "-A"], work, env)
    git(["commit", "-q", "-m", "sample app"], work, env)
    git(["push", "-q", push_url(gogs, admin["username"], admin["password"], sample_repo), f"HEAD:{branch}"],
        work, env)
    return {"commit": git(["rev-parse", "HEAD"], work, env), "branch": branch}


@pytest.fixture(scope="module")
def build(api: Api, pushed: dict[str, str], sample_repo: str) -> dict[str, Any]:
    def first_build() -> dict[str, Any] | None:
        status, body = api("GET", f"/api/repos/{sample_repo}/builds/1")
        return body if status == 200 and body.get("stages") else None

    return wait_for(f"Drone build #1 of {sample_repo} (Gogs push webhook -> Drone)", first_build, timeout=60)


def test_push_is_delivered_by_gogs_to_drones_internal_host(build: dict[str, Any], gogs: LoopbackGogs,
                                                          drone: LoopbackDrone) -> None:
    with sqlite3.connect(gogs.database) as db:
        rows = db.execute("SELECT url, is_delivered, is_succeed, response_content FROM hook_task").fetchall()
    host = drone.rendered_env["DRONE_SERVER_PROXY_HOST"].rsplit(":", 1)[0]
    push = [r for r in rows if r[0].startswith(f"http://{host}:{drone.bridge.hooks_port}/")]
    assert push, f"Gogs recorded no delivery to the bridge on Drone's internal host: {[r[0] for r in rows]}"
    url, delivered, succeeded, response = push[-1]
    assert delivered and succeeded, f"Gogs' delivery to {url} failed: {response[:300]!r}"


def test_push_creates_build_one_pending_for_a_runner(build: dict[str, Any], pushed: dict[str, str],
                                                     admin: dict[str, str]) -> None:
    assert build["number"] == 1 and build["event"] == "push", build
    assert build["after"] == pushed["commit"], f"build #1 is for {build['after']}, pushed {pushed['commit']}"
    assert build["ref"] == f"refs/heads/{pushed['branch']}" and build["target"] == pushed["branch"], build
    assert build["status"] == "pending", f"build #1 is {build['status']!r}: {build.get('error')!r}"
    assert not build.get("error"), f"build #1 error: {build['error']}"
    assert build["sender"] == admin["username"], build
    [stage] = build["stages"]
    assert (stage["kind"], stage["type"], stage["name"]) == ("pipeline", "kubernetes", "build-deploy"), (
        f"build #1 stage is {stage['kind']}/{stage['type']} {stage['name']!r}: not homeci-build-deploy's"
    )
    assert stage["status"] == "pending" and not stage.get("machine"), stage
    # Steps exist in Drone only once a runner accepted the stage: the API shows none yet.
    assert not stage.get("steps"), f"a pending stage already has steps: {stage['steps']}"


@pytest.fixture(scope="module")
def details(build: dict[str, Any], drone: LoopbackDrone) -> dict[str, Any]:
    """What a runner receives for build #1's stage (GET /rpc/v2/stage/{id}, read-only, with the rendered
    RPC secret): the only place Drone exposes the pipeline it expanded from the template."""
    stage_id = build["stages"][0]["id"]
    status, body = call("GET", f"{drone.url}/rpc/v2/stage/{stage_id}",
                         headers={"X-Drone-Token": drone.env["DRONE_RPC_SECRET"]})
    assert status == 200, f"GET /rpc/v2/stage/{stage_id} answered {status}: {body!r}"
    assert isinstance(body, dict)
    return body


def _config_text(details: dict[str, Any]) -> str:
    """The expanded pipeline (core.File{Data []byte}: no JSON tag, so key "Data", base64)."""
    return base64.b64decode(details["config"]["Data"]).decode()


def test_drone_expands_the_registered_template(details: dict[str, Any], pipelines: list[Manifest],
                                               hosts: dict[str, str], admin: dict[str, str]) -> None:
    text = _config_text(details)
    doc = yaml.safe_load(text)
    assert doc["kind"] == "pipeline" and doc["type"] == "kubernetes" and doc["name"] == "build-deploy", (
        f"Drone's expansion of {TEMPLATE} is not the kubernetes pipeline: {text[:300]!r}"
    )
    sample = yaml.safe_load((SAMPLE_APP / ".drone.yml").read_text())
    namespace = sample["data"]["namespace"]
    deployer = contract.deployer_account(admin["username"], PIPELINES_RELEASE)
    assert doc["service_account_name"] == deployer, (
        f"expanded service_account_name {doc['service_account_name']!r} is not {deployer}, the deployer of "
        f"the repository's owner {admin['username']}"
    )
    accounts = {m.name for m in manifests.by_kind(pipelines, "ServiceAccount")}
    assert doc["service_account_name"] in accounts, (
        f"expanded service_account_name {doc['service_account_name']!r} is not rendered by drone-pipelines "
        f"({sorted(accounts)})"
    )
    steps = {s["name"]: s for s in doc["steps"]}
    assert list(steps) == ["test", "build", "deploy"], list(steps)
    assert steps["test"]["image"] == sample["data"]["test_image"]
    assert steps["test"]["commands"] == sample["data"]["test_commands"]
    settings = steps["build"]["settings"]
    assert settings["registry"] == hosts["registry"], f"build.settings.registry {settings['registry']!r}"
    assert settings["repo"] == f"{hosts['registry']}/${{DRONE_REPO,,}}", settings["repo"]
    assert settings["registry_certificate"].startswith(f"{hosts['registry']}=/etc/homeci/"), (
        f"build.settings.registry_certificate {settings['registry_certificate']!r}: not the node CA mount"
    )
    assert settings["username"] == {"from_secret": "homeci_registry_username"}
    assert settings["password"] == {"from_secret": "homeci_registry_password"}
    assert steps["deploy"]["environment"]["DEPLOY_NAMESPACE"] == namespace


def test_drone_expansion_equals_the_offline_renderer(details: dict[str, Any], pipelines: list[Manifest],
                                                     admin: dict[str, str], pushed: dict[str, str],
                                                     tmp_path: Path) -> None:
    """homeci_testing.drone.GoTemplateRenderer (used by the fast unit tests) must produce what Drone does."""
    if shutil.which("go") is None:
        pytest.skip("Go is needed for the offline template renderer")
    sample = yaml.safe_load((SAMPLE_APP / ".drone.yml").read_text())
    registered = manifests.get(pipelines, "ConfigMap", f"{PIPELINES_RELEASE}-templates").obj["data"][TEMPLATE]
    offline = drone_chart.GoTemplateRenderer().render(
        registered, drone_chart.template_data(sample["data"], owner=admin["username"], name=REPO_NAME,
                                              branch=pushed["branch"], commit=pushed["commit"]),
        workdir=tmp_path)
    assert yaml.safe_load(offline) == yaml.safe_load(_config_text(details)), (
        "homeci_testing.drone.GoTemplateRenderer and Drone expand the sample app's .drone.yml differently"
    )


def test_org_secrets_reach_the_build_with_the_registry_credentials(details: dict[str, Any],
                                                                   pipelines: list[Manifest]) -> None:
    creds = secret_data(pipelines, f"{PIPELINES_RELEASE}-registration")
    got = {s["name"]: s.get("data") for s in details.get("secrets") or []}
    for name, key in (("homeci_registry_username", "registry-username"),
                      ("homeci_registry_password", "registry-password")):
        assert got.get(name) == creds[key], (
            f"build #1 does not get secret {name} = Secret/{PIPELINES_RELEASE}-registration key {key}"
        )


def test_drone_writes_only_to_its_volumes(drone: LoopbackDrone, build: dict[str, Any]) -> None:
    stray = stray_writes(drone.pod.root, drone.binary_dir, drone.binary_dir_before)
    assert not stray, f"Drone wrote outside its mounted volumes: {stray}"


# -- the runner ------------------------------------------------------------------------------------
def _runner(rendered: list[Manifest], names: ClusterNames, root: Path, **over: str) -> Program:
    """Deployment/<release>-drone-runner's container as a process. Rewritten: DRONE_RPC_HOST's port
    (names); DRONE_RUNNER_NAME (a fieldRef: the pod name) -> a fixed name; the in-cluster Kubernetes
    client (ServiceAccount token at a fixed path) -> DRONE_KUBERNETES_CONFIG naming a kubeconfig for
    an API server that is not there: the runner talks to Kubernetes only when it runs a stage."""
    pod = LoopbackPod(rendered, "Deployment", f"{RELEASE}-drone-runner", "runner", root)
    env = {k: names.rewrite(v) for k, v in loopback_env(pod).items() if not k.startswith("KUBERNETES_")}
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": f"https://{LOOPBACK}:1"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {"token": "none"}}]}))
    env.update(DRONE_RUNNER_NAME="homeci-drone-runner-t2", DRONE_KUBERNETES_CONFIG=str(kubeconfig),
               DRONE_DEBUG="true", **over)
    argv = [str(binary("drone-runner-kube")), *pod.args] if pod.args else [str(binary("drone-runner-kube"))]
    return Program("drone-runner-kube", argv, log_dir=root / "logs", env=env, cwd=root, names=names)


def test_runner_with_a_wrong_rpc_secret_is_refused(rendered: list[Manifest], drone: LoopbackDrone,
                                                   names: ClusterNames, tmp_path: Path) -> None:
    with _runner(rendered, names, tmp_path, DRONE_RPC_SECRET="not-the-rpc-secret") as runner:
        wait_for("the runner to report the failed ping",
                  lambda: "cannot ping the remote server" in runner.log_tail(50), timeout=30)
    assert_gone(runner)


def test_runner_polls_with_the_rendered_secret_and_is_handed_build_one(
        rendered: list[Manifest], drone: LoopbackDrone, names: ClusterNames, api: Api, sample_repo: str,
        build: dict[str, Any], details: dict[str, Any], tmp_path: Path) -> None:
    """Last: the runner takes build #1's stage (the server saw it poll) and then fails to create the
    build's Kubernetes objects, since there is no cluster on loopback."""
    with _runner(rendered, names, tmp_path) as runner:
        wait_for("the runner's successful ping", lambda: "successfully pinged the remote server"
                  in runner.log_tail(50), timeout=30)

        def taken() -> dict[str, Any] | None:
            status, body = api("GET", f"/api/repos/{sample_repo}/builds/1")
            stage = (body.get("stages") or [{}])[0] if status == 200 else {}
            return stage if stage.get("machine") else None

        stage = wait_for("Drone to hand build #1's stage to the runner", taken, timeout=60)
    assert_gone(runner)
    assert stage["machine"] == "homeci-drone-runner-t2", (
        f"build #1's stage went to {stage['machine']!r}, not the runner started with the rendered env"
    )


def test_build_clones_the_public_url_with_drones_gogs_token(details: dict[str, Any], hosts: dict[str, str],
                                                            sample_repo: str, gogs: LoopbackGogs) -> None:
    """The clone step gets the repository's clone URL (Gogs' EXTERNAL_URL) and a netrc for its host
    carrying the Gogs token Drone got at the bootstrap login (DRONE_GIT_ALWAYS_AUTH: also for public
    repositories), which Gogs accepts."""
    repo = details["repository"]
    assert repo["git_http_url"] == f"https://{hosts['git']}/{sample_repo}.git", (
        f"build #1 clones {repo['git_http_url']!r}: not the public URL from Gogs' EXTERNAL_URL"
    )
    netrc = details.get("netrc") or {}
    assert netrc.get("machine") == hosts["git"] and netrc.get("login"), (
        f"build #1 netrc is for {netrc.get('machine')!r}, expected {hosts['git']} with Drone's Gogs token"
    )
    status, _ = gogs_api(gogs, str(netrc["login"]), "GET", "/user")
    assert status == 200, f"Gogs rejects the token Drone hands to the clone step (HTTP {status})"
