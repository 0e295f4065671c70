"""T3 person: what a person does in a real browser, not what the harness does through the APIs.

Debian's Chromium, driven by Playwright, trusts the homeci CA through its own certificate store (no
"ignore certificate errors" anywhere) and resolves the stack's names to the local forwarder. It walks:

- the admin logging into Gogs and into Drone, again from a fresh browser and after the cookie is gone
  (Drone used to accept a Gogs user's first login only);
- alice, a team member the admin created (not an admin): she logs into Gogs and creates repository
  `hello` in the web UI, logs into Drone, finds and activates it, pushes the static-site example (a
  second app unlike the sample: two-stage build, branch `master`, an Ingress without class) with plain
  git, watches the build log in Drone's UI and opens https://hello.<domain>/;
- a wrong password: Drone's error page, and the Gogs bridge's log line naming the cause.

Every page it checks is saved as a screenshot in $HOMECI_ARTIFACTS (or the session's temp folder).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client

from homeci.flow import setup
from homeci.paths import static_site
from homeci_testing import browser, team
from homeci_testing.browser import Person

if TYPE_CHECKING:
    from playwright.sync_api import Page


pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))


# The README's tour: these screenshots, under these names, in $HOMECI_TOUR (nox -s tour: docs/tour).
TOUR = {
    "gogs new repository": "1-gogs-repository.png",
    "drone repository activated": "2-drone-activate.png",
    "drone build log": "3-drone-build-log.png",
    "app hello": "4-app.png",
    "drone dashboard alice": "5-drone-dashboard.png",
}


@pytest.fixture(scope="module")
def person(prepared: setup.Prepared, artifacts: Path) -> Iterator[Person]:
    stack = prepared.stack
    with browser.chromium(stack.ca_file, domain=stack.domain, port=stack.https_port,
                          artifacts=artifacts, also_resolve=("example.com",)) as p:
        yield p
    tour = os.environ.get("HOMECI_TOUR")
    if tour:
        browser.copy_tour(p.shots, TOUR, Path(tour))


def gogs_login(p: Person, page: Page, user: str, password: str) -> None:
    page.goto(p.url("git", "/user/login"))
    page.fill("input[name=user_name]", user)
    page.fill("input[name=password]", password)
    page.click("button.ui.green.button")
    page.wait_for_load_state()


def drone_login(p: Person, page: Page, user: str, password: str, *, email: str = "") -> str:
    """The login form; a first login lands on Drone's one-time registration form (e-mail), filled in.
    Returns where the browser ended up."""
    page.goto(p.url("ci", "/login/form"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/register" in page.url and email:
        page.fill("input[type=email]", email)
        page.locator("input[name=name]").first.fill(user)
        page.click("button:has-text('SUBMIT')")
        page.wait_for_url(lambda url: "/register" not in url)
        page.wait_for_load_state("networkidle")
    return page.url


def signed_in(p: Person, page: Page) -> bool:
    """The browser holds a Drone session: Drone's user API answers the page's own request (the browser's
    cookies, resolver and trust store), made from a Drone page."""
    if not page.url.startswith(p.url("ci", "/")):
        page.goto(p.url("ci", "/"))
    status = page.evaluate("async () => (await fetch('/api/user', {credentials: 'same-origin'})).status")
    return bool(status == 200)


def test_admin_logs_into_gogs_and_drone_every_time(prepared: setup.Prepared, person: Person) -> None:
    stack = prepared.stack
    g = person.fresh()
    gogs_login(person, g, stack.admin_user, stack.admin_password)
    assert g.url.rstrip("/").endswith(f":{stack.https_port}") or g.url.endswith("/"), f"Gogs login: {g.url}"
    person.shots.take(g, "gogs dashboard (admin)")
    for attempt in ("first visit", "new browser", "after the cookie is gone"):
        d = person.fresh()
        if attempt == "after the cookie is gone":
            drone_login(person, d, stack.admin_user, stack.admin_password, email="admin@homeci.invalid")
            d.context.clear_cookies()
            d.goto(person.url("ci", "/"))
            assert not signed_in(person, d), "clearing the cookies must end the session"
        where = drone_login(person, d, stack.admin_user, stack.admin_password, email="admin@homeci.invalid")
        assert "/login/error" not in where, f"admin's Drone login ({attempt}) failed: {where}"
        assert signed_in(person, d), f"admin's Drone login ({attempt}): no session (at {where})"
        person.shots.take(d, f"drone dashboard admin {attempt}")


def test_a_team_member_deploys_her_own_app(prepared: setup.Prepared, alice: team.Member, person: Person,
                                           tmp_path: Path) -> None:
    stack = prepared.stack
    # Gogs: her own repository, made in the web UI.
    g = person.fresh()
    gogs_login(person, g, alice.name, alice.password)
    g.goto(person.url("git", "/repo/create"))
    g.fill("input[name=repo_name]", "hello")
    g.click("button:has-text('Create Repository')")
    g.wait_for_url(f"**/{alice.name}/hello")
    person.shots.take(g, "gogs new repository")

    # Drone: first login, find the repository (after a sync), activate it.
    d = person.fresh()
    where = drone_login(person, d, alice.name, alice.password, email=alice.email)
    assert "/login/error" not in where, f"alice's first Drone login failed: {where}"
    d.click("text=SYNC")
    d.locator(f"a[href='/{alice.name}/hello/settings'], a[href='/{alice.name}/hello']").first.wait_for(
        timeout=60_000)
    person.shots.take(d, "drone dashboard alice")
    d.goto(person.url("ci", f"/{alice.name}/hello/settings"))
    d.click("button:has-text('ACTIVATE REPOSITORY')")
    d.get_by_text("Project Visibility").wait_for()
    person.shots.take(d, "drone repository activated")

    # Her machine: plain git over HTTPS, the CA trusted, branch master (the repository's only branch).
    version = f"1.0.0-person.{time.strftime('%H%M%S')}"
    sha = team.push_repository(stack, alice, static_site(), "hello", tmp_path, branch="master",
                               version=version)

    # Drone's UI: the build appears, she opens it and follows the deploy step's log.
    d.goto(person.url("ci", f"/{alice.name}/hello"))
    d.locator(f"a[href='/{alice.name}/hello/1']").wait_for(timeout=120_000)
    d.click(f"a[href='/{alice.name}/hello/1']")
    deploy = d.get_by_text("deploy", exact=True)
    deploy.wait_for(timeout=120_000)
    mine = team.drone_as(stack, alice)
    build = _wait_finished(mine, alice.name, "hello", sha)
    number, steps = build["number"], _steps(build)
    assert build["status"] == "success", f"alice/hello build #{number}: {build['status']} {steps}"
    assert steps == {"clone": "success", "test": "success", "build": "success", "deploy": "success"}, (
        f"alice/hello build #{number} on master (her only branch) must deploy: {steps}")
    deploy.click()
    line = d.get_by_text("homeci: Ingress hello has no spec.ingressClassName", exact=False)
    line.wait_for(timeout=30_000)
    line.scroll_into_view_if_needed()
    person.shots.take(d, "drone build log")
    log = _step_log(mine, alice.name, "hello", build, "deploy")
    assert "homeci: Ingress hello has no spec.ingressClassName: serving it with class" in log, log[-1500:]
    assert "@sha256:" in log and "to namespace team" in log, f"deploy pins the digest: {log[-1500:]}"

    # Her pipeline ran with her rights: the repository is hers in Drone (clone credential = her token)
    # and the step pods of her build ran as her deployer.
    repo = mine.call("GET", f"/repos/{alice.name}/hello")
    assert repo["user_id"] == mine.user()["id"], f"alice/hello is activated by user {repo['user_id']}"

    # The app answers at its own name, through the browser that trusts only the homeci CA.
    a = person.fresh()
    a.goto(person.url("hello", "/"))
    a.get_by_text(version).wait_for(timeout=60_000)
    person.shots.take(a, "app hello")


def test_logins_keep_working_for_a_team_member(prepared: setup.Prepared, alice: team.Member,
                                               person: Person) -> None:
    for attempt in ("new browser", "another new browser"):
        d = person.fresh()
        where = drone_login(person, d, alice.name, alice.password, email=alice.email)
        ok = "/login/error" not in where and signed_in(person, d)
        assert ok, f"alice's Drone login ({attempt}): {where}"
    d.context.clear_cookies()
    where = drone_login(person, d, alice.name, alice.password, email=alice.email)
    ok = "/login/error" not in where and signed_in(person, d)
    assert ok, f"alice's Drone login after the cookie is gone: {where}"
    # one Gogs token named drone for her, however often she logs in
    names = _gogs_token_names(prepared, alice)
    assert names.count("drone") == 1 and not [n for n in names if n.startswith("drone-")], (
        f"alice's Gogs tokens after several logins: {names}")


def test_a_wrong_password_says_why(prepared: setup.Prepared, alice: team.Member, person: Person) -> None:
    d = person.fresh()
    where = drone_login(person, d, alice.name, "not-her-password")
    assert "/login/error" in where, f"a wrong password must end on Drone's error page, not {where}"
    person.shots.take(d, "drone wrong password")
    logs = _bridge_log(prepared)
    line = f"login {alice.name}: refused: Gogs refused the password"
    assert line in logs, f"the Gogs bridge must log '{line}': {logs[-1200:]}"
    assert "not-her-password" not in logs, "the bridge must never log a password"


def test_the_ca_cannot_vouch_for_other_sites(prepared: setup.Prepared, person: Person) -> None:
    """Even with the CA's key (the operator's Secret), a certificate for a name outside the CA's name
    constraints is refused by a browser that trusts the CA; one for a name inside is accepted."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.x509 import load_pem_x509_certificate

    from homeci import ca as homeci_ca

    stack = prepared.stack
    core = client.CoreV1Api(_api(prepared))
    data = core.read_namespaced_secret(f"{stack.release}-ca", stack.namespace).data
    ca_cert = load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    ca_key = serialization.load_pem_private_key(base64.b64decode(data["tls.key"]), None)
    results = {}
    for host in (f"constraint-check.{stack.domain}", "example.com"):
        leaf, key = homeci_ca.issue(ca_cert, ca_key, [host])  # type: ignore[arg-type]
        with _tls_server(leaf, key) as port:
            page = person.fresh()
            try:
                page.goto(f"https://{host}:{port}/")
                results[host] = "loaded"
                person.shots.take(page, f"leaf for {host}")
            except Exception as exc:  # Playwright's error names Chromium's net:: code
                results[host] = str(exc).splitlines()[0]
    assert results[f"constraint-check.{stack.domain}"] == "loaded", results
    assert "ERR_CERT" in results["example.com"], f"a leaf for example.com must be refused: {results}"


# --- helpers ---------------------------------------------------------------------------------------------

def _api(prepared: setup.Prepared) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(prepared.kubeconfig))


@contextmanager
def _tls_server(cert: Any, key: Any) -> Iterator[int]:
    """HTTPS on 127.0.0.1 (a free port) with ``cert``: answers every GET with a short page."""
    import http.server
    import ssl
    import tempfile

    from cryptography.hazmat.primitives import serialization

    from homeci import ca as homeci_ca
    from homeci_testing.loopback import serve

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<h1>served with a leaf signed by the homeci CA</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "leaf.pem"
        pem.write_bytes(homeci_ca.cert_pem(cert) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        with serve(Page, tls=ctx) as port:
            yield port


def _steps(build: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for st in build.get("stages") or [] for s in st.get("steps") or []}


def _wait_finished(drone: Any, owner: str, name: str, sha: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in drone.builds(owner, name):
            if b.get("after") == sha and b.get("status") not in ("pending", "running"):
                build: dict[str, Any] = drone.build(owner, name, int(b["number"]))
                return build
        time.sleep(2)
    raise AssertionError(f"{owner}/{name}: no finished build for {sha[:12]} within {timeout:.0f}s")


def _step_log(drone: Any, owner: str, name: str, build: dict[str, Any], step: str) -> str:
    for stage in build.get("stages") or []:
        for s in stage.get("steps") or []:
            if s["name"] == step:
                return str(drone.logs(owner, name, int(build["number"]), int(stage["number"]),
                                      int(s["number"])))
    raise AssertionError(f"{owner}/{name} build #{build['number']} has no step {step}: {_steps(build)}")


def _bridge_log(prepared: setup.Prepared) -> str:
    core = client.CoreV1Api(_api(prepared))
    stack = prepared.stack
    pods = core.list_namespaced_pod(stack.namespace, label_selector="app.kubernetes.io/component=ci-server")
    return "".join(core.read_namespaced_pod_log(p.metadata.name, stack.namespace, container="gogs-bridge")
                   for p in pods.items)


def _gogs_token_names(prepared: setup.Prepared, member: team.Member) -> list[str]:
    from homeci.flow.web import basic

    stack = prepared.stack
    resp = stack.web.request("GET", f"{stack.url('git')}/api/v1/users/{member.name}/tokens",
                             headers=basic(member.name, member.password))
    return [str(t["name"]) for t in resp.json()]
