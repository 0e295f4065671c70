"""The Gogs bridge (charts/.../drone/files/gogs-bridge.py, the second container of the Drone server pod)
between the real Drone 2.28.2 and the real Gogs 0.14.3, all three from the umbrella's render and wired as
in the cluster (realprog_harness.LoopbackDrone runs the bridge beside Drone; conftest.py's fixtures).

Issue 19, as a person meets it: the admin and a team member (`alice`, created by the admin in Gogs and
Drone) log in through Drone's form three times each (first, from a "new browser" without a cookie, and
again) and every time get a working session, with one Gogs token each; a `drone` token made before the
bridge existed does not break login and tokens stay bounded, also when the bridge's store is lost;
refused logins (wrong password, unknown user, Gogs stopped) end on Drone's error page with one bridge
log line naming the cause; a repository created empty (Gogs records `main`) whose first push is
`master` builds `master` as its default branch, and a repository whose `main` exists is never repaired.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from drone_stack import (
    Api,
    Login,
    form_login,
    git,
    git_env,
    gogs_api,
    gogs_token,
    gogs_token_names,
    pipelines_for,
    push_url,
    register,
    wait_for,
)

from homeci import paths
from homeci.manifests import Manifest
from homeci_testing.realprog import ClusterNames
from homeci_testing.realprog_harness import LoopbackDrone, LoopbackGogs

SAMPLE_APP = paths.sample_app()
PASSWORD = "alice-and-bob-Pa55word"  # the team members' Gogs password (created by the admin)


# -- users and helpers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin_gogs_token(gogs: LoopbackGogs, admin: dict[str, str]) -> str:
    return gogs_token(gogs, admin["username"], admin["password"], "t2-bridge-admin")


def _team_member(gogs: LoopbackGogs, api: Api, admin_token: str, name: str) -> dict[str, str]:
    """A Gogs user the admin creates (admin API) and adds to Drone (registration is closed there)."""
    status, body = gogs_api(gogs, admin_token, "POST", "/admin/users", {
        "username": name, "email": f"{name}@example.invalid", "password": PASSWORD, "send_notify": False,
        "source_id": 0, "login_name": name})
    assert status == 201, f"creating Gogs user {name} through the admin API answered {status}: {body!r}"
    status, body = api("POST", "/api/users", {"login": name, "email": f"{name}@example.invalid",
                                              "active": True})
    assert status == 200, f"creating Drone user {name} answered {status}: {body!r}"
    return {"username": name, "password": PASSWORD}


@pytest.fixture(scope="module")
def alice(gogs: LoopbackGogs, api: Api, admin_gogs_token: str) -> dict[str, str]:
    return _team_member(gogs, api, admin_gogs_token, "alice")


@pytest.fixture(scope="module")
def bob(gogs: LoopbackGogs, api: Api, admin_gogs_token: str) -> dict[str, str]:
    return _team_member(gogs, api, admin_gogs_token, "bob")


@pytest.fixture(scope="module")
def alice_token(gogs: LoopbackGogs, alice: dict[str, str]) -> str:
    """A Gogs token of alice's own for the test's calls (not a drone/drone-<n> name)."""
    return gogs_token(gogs, alice["username"], alice["password"], "t2-alice")


@pytest.fixture(scope="module")
def users(admin: dict[str, str], alice: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"admin": admin, "alice": alice}


class BridgeLog:
    """The bridge's log lines written since :meth:`mark`."""

    def __init__(self, drone: LoopbackDrone) -> None:
        self.drone = drone
        self.seen = len(drone.bridge.log_lines())

    def new(self) -> list[str]:
        return self.drone.bridge.log_lines()[self.seen:]


def drone_tokens(names: list[str]) -> list[str]:
    return [n for n in names if re.fullmatch(r"drone(-[0-9]+)?", n)]


def logged_in(drone: LoopbackDrone, login: Login, user: str, what: str) -> None:
    """``login`` was accepted: a session cookie that Drone's API accepts as ``user``."""
    assert login.status == 303 and login.error is None, (
        f"{what}: Drone's login of {user} answered {login.status} -> {login.location!r} "
        f"(bridge log: {drone.bridge.program.log_tail(5)})"
    )
    assert login.cookie, f"{what}: Drone set no _session_ cookie for {user} (-> {login.location!r})"
    status, me = Api(drone.url, cookie=login.cookie)("GET", "/api/user")
    assert status == 200 and me.get("login") == user, (
        f"{what}: GET /api/user with {user}'s new session answered {status}: {me!r}"
    )


# -- login, every time, for everyone ------------------------------------------------------------------
@pytest.mark.parametrize("who", ["admin", "alice"])
def test_every_login_works_and_reuses_one_gogs_token(drone: LoopbackDrone, gogs: LoopbackGogs,
                                                     users: dict[str, dict[str, str]], who: str) -> None:
    user, password = users[who]["username"], users[who]["password"]
    log = BridgeLog(drone)
    first = form_login(drone.url, user, password)
    logged_in(drone, first, user, "first login")
    fresh = form_login(drone.url, user, password)  # a new browser: no cookie
    logged_in(drone, fresh, user, "login from a new browser")
    again = form_login(drone.url, user, password, cookie=fresh.cookie)
    logged_in(drone, again, user, "login again")
    tokens = drone_tokens(gogs_token_names(gogs, user, password))
    assert tokens == ["drone"], f"after 3 Drone logins Gogs lists {tokens} for {user}: exactly one expected"
    lines = [ln for ln in log.new() if ln.startswith(f"gogs-bridge: login {user}:")]
    assert lines == [f"gogs-bridge: login {user}: accepted (new Gogs token drone)",
                     f"gogs-bridge: login {user}: accepted (Gogs token drone reused)",
                     f"gogs-bridge: login {user}: accepted (Gogs token drone reused)"], lines


def test_drones_stored_token_works_for_its_api_calls(drone: LoopbackDrone, gogs: LoopbackGogs,
                                                    alice: dict[str, str], alice_token: str) -> None:
    """After the logins Drone calls Gogs with the token it stored for alice: her sync lists her repo."""
    status, body = gogs_api(gogs, alice_token, "POST", "/user/repos", {"name": "notes", "private": True})
    assert status == 201, f"alice creating alice/notes in Gogs answered {status}: {body!r}"
    login = form_login(drone.url, alice["username"], alice["password"])
    logged_in(drone, login, "alice", "login before the sync")
    status, repos = Api(drone.url, cookie=login.cookie)("POST", "/api/user/repos")
    assert status == 200, f"alice's repository sync in Drone answered {status}: {repos!r}"
    assert "alice/notes" in {r["slug"] for r in repos}, f"alice's sync lists {[r['slug'] for r in repos]}"


def test_a_drone_token_made_before_the_bridge_does_not_break_login(
        drone: LoopbackDrone, gogs: LoopbackGogs, bob: dict[str, str]) -> None:
    """Gogs already lists a `drone` token the bridge never saw (an install before the bridge): it is
    hidden from Drone, the login creates `drone-2`, and later logins reuse that."""
    gogs_token(gogs, bob["username"], bob["password"], "drone")
    log = BridgeLog(drone)
    for n in range(3):
        logged_in(drone, form_login(drone.url, bob["username"], bob["password"]), "bob", f"login {n + 1}")
    tokens = drone_tokens(gogs_token_names(gogs, bob["username"], bob["password"]))
    assert tokens == ["drone", "drone-2"], f"Gogs lists {tokens} for bob: the old drone and one drone-2"
    assert [ln for ln in log.new() if "login bob" in ln] == [
        "gogs-bridge: login bob: accepted (new Gogs token drone-2)",
        "gogs-bridge: login bob: accepted (Gogs token drone-2 reused)",
        "gogs-bridge: login bob: accepted (Gogs token drone-2 reused)"], log.new()


def test_wrong_password_ends_on_drones_error_page_with_one_log_line(
        drone: LoopbackDrone, alice: dict[str, str]) -> None:
    log = BridgeLog(drone)
    login = form_login(drone.url, "alice", "not-alices-password")
    assert login.error == "Unauthorized" and not login.cookie, (
        f"a wrong password: Drone answered {login.status} -> {login.location!r}, cookie {bool(login.cookie)}"
    )
    assert log.new() == ["gogs-bridge: login alice: refused: Gogs refused the password (HTTP 401)"], log.new()


def test_unknown_user_ends_on_drones_error_page_with_one_log_line(drone: LoopbackDrone) -> None:
    log = BridgeLog(drone)
    login = form_login(drone.url, "nobody-here", "whatever-password")
    assert login.error == "Unauthorized" and not login.cookie, (
        f"an unknown user: Drone answered {login.status} -> {login.location!r}"
    )
    assert log.new() == ["gogs-bridge: login nobody-here: refused: no such Gogs user"], log.new()


# -- default branch: a first push of master builds master ------------------------------------------
@pytest.fixture(scope="module")
def registered_for_alice(rendered: list[Manifest], scenario: str, alice: dict[str, str], drone: LoopbackDrone,
                         names: ClusterNames, tmp_path_factory: pytest.TempPathFactory) -> None:
    """drone-pipelines registers its templates for alice (she owns the target namespace)."""
    proc = register(pipelines_for(rendered, scenario, [alice["username"]]), names,
                    tmp_path_factory.mktemp("register"))
    assert proc.returncode == 0, f"the registration Job for alice failed: {proc.stderr.strip()[-500:]}"


def _activate(drone: LoopbackDrone, user: dict[str, str], slug: str) -> Api:
    """Sync and activate ``slug`` in Drone as ``user`` (a browser session); returns that session."""
    login = form_login(drone.url, user["username"], user["password"])
    logged_in(drone, login, user["username"], f"login to activate {slug}")
    session = Api(drone.url, cookie=login.cookie)
    status, repos = session("POST", "/api/user/repos")
    assert status == 200 and slug in {r["slug"] for r in repos}, f"sync answered {status}: {repos!r}"
    status, repo = session("POST", f"/api/repos/{slug}")
    assert status == 200 and repo["active"], f"activating {slug} answered {status}: {repo!r}"
    return session


def _deliveries(gogs: LoopbackGogs, repo_id: int) -> list[tuple[str, int, int]]:
    """(url, delivered, succeeded) of Gogs' webhook deliveries for one repository."""
    with sqlite3.connect(gogs.database) as db:
        rows = db.execute("SELECT url, is_delivered, is_succeed FROM hook_task WHERE repo_id = ?",
                          (repo_id,)).fetchall()
    return [(str(u), int(d), int(s)) for u, d, s in rows]


def test_first_push_of_master_builds_master_as_the_default_branch(
        drone: LoopbackDrone, gogs: LoopbackGogs, api: Api, alice: dict[str, str], alice_token: str,
        registered_for_alice: None, tmp_path: Path) -> None:
    slug = "alice/hello"
    status, created = gogs_api(gogs, alice_token, "POST", "/user/repos", {"name": "hello", "private": True})
    assert status == 201, f"alice creating {slug} answered {status}: {created!r}"
    status, created = gogs_api(gogs, alice_token, "GET", f"/repos/{slug}")
    assert created["default_branch"] == "main" and created["empty"], (
        f"{slug} should be empty with Gogs' DEFAULT_BRANCH main: {status} {created!r}"
    )
    _activate(drone, alice, slug)
    status, before = api("GET", f"/api/repos/{slug}")
    assert before["default_branch"] == "main", f"Drone's record of the empty {slug}: {before!r}"
    log = BridgeLog(drone)
    work = tmp_path / "hello"
    shutil.copytree(SAMPLE_APP, work)
    env = git_env(tmp_path)
    git(["init", "-q", "-b", "master"], work, env)
    git(["add", "-A"], work, env)
    git(["commit", "-q", "-m", "hello"], work, env)
    git(["push", "-q", push_url(gogs, alice["username"], alice["password"], slug), "master"], work, env)
    commit = git(["rev-parse", "HEAD"], work, env)

    def first_build() -> dict[str, Any] | None:
        status, body = api("GET", f"/api/repos/{slug}/builds/1")
        return body if status == 200 and body.get("stages") else None

    build = wait_for(f"build #1 of {slug} (Gogs -> bridge -> Drone)", first_build, timeout=60)
    assert (build["after"], build["target"]) == (commit, "master"), build
    # The template's trigger is `branch: [<Drone's default branch>]`: a stage exists only because the
    # repository's default branch was already master when Drone created the build.
    assert [s["name"] for s in build["stages"]] == ["build-deploy"], build["stages"]
    status, after = api("GET", f"/api/repos/{slug}")
    assert after["default_branch"] == "master", f"Drone's record of {slug} after the push: {after!r}"
    status, in_gogs = gogs_api(gogs, alice_token, "GET", f"/repos/{slug}")
    assert in_gogs["default_branch"] == "main", "Gogs itself still records main (the bridge changes nothing)"
    assert log.new() == [
        f"gogs-bridge: hook {slug}: default branch 'main' does not exist in Gogs; Drone repaired the "
        "repository, its default branch is now 'master'"], log.new()
    # Drone's repair recreates the webhook (on the same target, so Gogs' record of this first delivery
    # goes with the old hook): still exactly one, on the bridge's hooks port.
    status, hooks = gogs_api(gogs, alice_token, "GET", f"/repos/{slug}/hooks")
    urls = [h["config"]["url"] for h in hooks]
    assert status == 200 and len(urls) == 1 and urls[0].endswith(f":{drone.bridge.hooks_port}/hook"), (
        f"{slug} has webhooks {urls} after the repair: one to the bridge's hooks port expected"
    )


def test_a_feature_push_never_repairs_a_repository_whose_main_exists(
        drone: LoopbackDrone, gogs: LoopbackGogs, api: Api, alice: dict[str, str], alice_token: str,
        tmp_path: Path) -> None:
    slug = "alice/site"
    status, created = gogs_api(gogs, alice_token, "POST", "/user/repos",
                               {"name": "site", "auto_init": True, "readme": "Default"})
    assert status == 201, f"alice creating {slug} answered {status}: {created!r}"
    status, created = gogs_api(gogs, alice_token, "GET", f"/repos/{slug}/branches/main")
    assert status == 200, f"{slug} has no branch main after auto_init: {status} {created!r}"
    status, created = gogs_api(gogs, alice_token, "GET", f"/repos/{slug}")
    assert created["default_branch"] == "main", f"{status} {created!r}"
    _activate(drone, alice, slug)
    log = BridgeLog(drone)
    env = git_env(tmp_path)
    git(["clone", "-q", push_url(gogs, alice["username"], alice["password"], slug), "site"], tmp_path, env)
    work = tmp_path / "site"
    git(["checkout", "-q", "-b", "feature"], work, env)
    (work / "feature.txt").write_text("a feature\n")
    git(["add", "-A"], work, env)
    git(["commit", "-q", "-m", "feature"], work, env)
    git(["push", "-q", "origin", "feature"], work, env)

    def delivered() -> list[tuple[str, int, int]] | None:
        rows = [r for r in _deliveries(gogs, int(created["id"])) if r[1]]
        return rows or None

    rows = wait_for(f"Gogs to deliver the push of {slug}'s feature branch", delivered, timeout=60)
    assert all(u.endswith(f":{drone.bridge.hooks_port}/hook") and s for u, _, s in rows), (
        f"the push of {slug} did not go through the bridge to Drone successfully: {rows}"
    )
    assert not [ln for ln in log.new() if slug in ln], f"the bridge acted on {slug}: {log.new()}"
    status, repo = api("GET", f"/api/repos/{slug}")
    assert repo["default_branch"] == "main", f"Drone's record of {slug}: {repo!r}"


# -- the store lost; Gogs stopped (last: they change the stack) -------------------------------------
def test_a_lost_store_costs_one_new_token(drone: LoopbackDrone, gogs: LoopbackGogs, bob: dict[str, str],
                                          tmp_path: Path) -> None:
    """The bridge's store is gone (a new data volume): bob's next login creates one more token, and
    later logins reuse it. Runs after the default-branch tests, which need alice's stored token."""
    shutil.move(drone.bridge.store, tmp_path / "lost.json")
    log = BridgeLog(drone)
    for n in range(2):
        logged_in(drone, form_login(drone.url, bob["username"], bob["password"]), "bob", f"login {n + 1}")
    tokens = drone_tokens(gogs_token_names(gogs, bob["username"], bob["password"]))
    assert tokens == ["drone", "drone-2", "drone-3"], f"Gogs lists {tokens} for bob after the store loss"
    assert [ln for ln in log.new() if "login bob" in ln] == [
        "gogs-bridge: login bob: accepted (new Gogs token drone-3)",
        "gogs-bridge: login bob: accepted (Gogs token drone-3 reused)"], log.new()


def test_gogs_unreachable_ends_on_drones_error_page_with_one_log_line(
        drone: LoopbackDrone, gogs: LoopbackGogs, admin: dict[str, str], alice: dict[str, str]) -> None:
    gogs.program.stop()
    log = BridgeLog(drone)
    login = form_login(drone.url, "alice", alice["password"])
    assert login.error == "Bad Gateway" and not login.cookie, (
        f"Gogs stopped: Drone answered {login.status} -> {login.location!r}"
    )
    gogs_url = drone.bridge.env["BRIDGE_GOGS_URL"]
    assert log.new() == [f"gogs-bridge: login alice: failed: Gogs unreachable at {gogs_url}/api/v1/users/"
                         "alice/tokens: Connection refused (ECONNREFUSED)"], log.new()
    # Never a password or a token in the log.
    text = "\n".join(drone.bridge.log_lines())
    for secret in (admin["password"], alice["password"]):
        assert secret not in text, "a password appears in the bridge's log"
    stored = drone.bridge.store.read_text()
    for token in re.findall(r'"token": "([0-9a-f]{40})"', stored):
        assert token not in text, "a Gogs token appears in the bridge's log"
    assert re.findall(r'"token": "([0-9a-f]{40})"', stored), f"no token in the store to check: {stored!r}"
