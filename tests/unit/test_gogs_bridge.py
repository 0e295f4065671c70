"""The Gogs bridge script (charts/.../drone/files/gogs-bridge.py) in pieces: its pure rules (token names,
the list Drone sees, push payloads, listen addresses), its token store (atomic writes, the lock, pruning,
an unreadable file), and, against a scripted stand-in for Gogs and Drone on 127.0.0.1, the faults the
real programs do not produce on demand: concurrent logins of one user, a name taken between list and
create, Gogs answering 500 or not in time, and what the default-branch rules ask of Gogs and Drone.

The whole flow with the real Drone 2.28.2 and Gogs 0.14.3 is tests/realprog/test_bridge_program.py."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from homeci_testing.loopback import serve
from homeci_testing.support import ROOT, load_script

SCRIPT = ROOT / "charts" / "homeci-umbrella" / "charts" / "drone" / "files" / "gogs-bridge.py"
AUTH = {"Authorization": "Basic YWxpY2U6cHc="}  # alice:pw




bridge = load_script(SCRIPT, "homeci_gogs_bridge")


# -- pure rules ---------------------------------------------------------------------------------------
def test_token_hash_is_what_gogs_lists() -> None:
    """Gogs 0.14 stores and lists Sha1 = hex(sha256(token))[:40] (internal/database/access_tokens.go)."""
    token = "0123456789abcdef0123456789abcdef01234567"
    assert bridge.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()[:40]
    assert len(bridge.token_hash(token)) == 40


@pytest.mark.parametrize(("taken", "free"), [
    ([], "drone"),
    (["ci", "homeci-drone"], "drone"),
    (["drone"], "drone-2"),
    (["drone", "drone-2", "drone-4"], "drone-3"),
    (["drone-2"], "drone"),
    (["drone", "drone-2", "drone-3"], "drone-4"),
])
def test_free_drone_name_is_the_smallest_free_one(taken: list[str], free: str) -> None:
    assert bridge.free_drone_name(taken) == free


@pytest.mark.parametrize(("name", "managed"), [
    ("drone", True), ("drone-2", True), ("drone-17", True),
    ("drone2", False), ("drone-", False), ("drone-x", False), ("homeci-drone", False), ("Drone", False),
])
def test_only_drone_and_drone_n_are_managed(name: str, managed: bool) -> None:
    assert bridge.is_drone_name(name) is managed


def test_drone_sees_only_the_known_token_named_drone() -> None:
    listed = [{"name": "drone", "sha1": "a" * 40}, {"name": "drone-2", "sha1": "b" * 40},
              {"name": "laptop", "sha1": "c" * 40}]
    assert bridge.token_list_for_drone(listed, None) == [{"name": "laptop", "sha1": "c" * 40}]
    assert bridge.token_list_for_drone(listed, "plain-token") == [
        {"name": "laptop", "sha1": "c" * 40}, {"name": "drone", "sha1": "plain-token"}]


def _push(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": "refs/heads/master", "after": "1" * 40,
        "repository": {"name": "hello", "default_branch": "main", "owner": {"username": "alice"}},
        "pusher": {"username": "bob"}}
    payload.update(over)
    return payload


@pytest.mark.parametrize(("payload", "expected"), [
    (_push(), ("alice", "hello", "master", "main", "bob")),
    (_push(ref="refs/heads/feature/x"), ("alice", "hello", "feature/x", "main", "bob")),
    (_push(repository={"name": "hello", "default_branch": "main", "owner": {"login": "alice"}}),
     ("alice", "hello", "master", "main", "bob")),
    (_push(ref="refs/tags/v1"), None),
    (_push(after="0" * 40), None),  # branch deleted
    (_push(repository="alice/hello"), None),
    (_push(repository={"name": "hello", "owner": {"username": "alice"}}), None),  # no default branch
    (_push(pusher="bob"), None),
])
def test_push_of_reads_what_the_bridge_needs(payload: dict[str, Any],
                                             expected: tuple[str, ...] | None) -> None:
    assert bridge.push_of(payload) == expected


@pytest.mark.parametrize(("value", "parsed"), [
    (":8081", ("", 8081)), ("127.0.0.1:3001", ("127.0.0.1", 3001)), ("[::1]:3001", ("::1", 3001)),
])
def test_listen_addresses(value: str, parsed: tuple[str, int]) -> None:
    assert bridge.parse_listen(value, "BRIDGE_LISTEN") == parsed


@pytest.mark.parametrize("value", ["8081", "host:", ":0", ":70000", "host:http"])
def test_bad_listen_address_is_one_sentence(value: str) -> None:
    with pytest.raises(bridge.BridgeError, match=r"^BRIDGE_LISTEN=.* is not \[host\]:port: set it like"):
        bridge.parse_listen(value, "BRIDGE_LISTEN")


# -- the store ----------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = bridge.TokenStore(tmp_path / "data" / "gogs-bridge" / "tokens.json")
    assert s.prepare() == 0
    return s


def test_store_is_private(store: Any) -> None:
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    with store.locked():
        store.remember("Alice", "drone", "t-alice", [])
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600, "a rewrite must keep mode 0600"


def test_store_remembers_by_hash_and_prunes_only_that_users_unlisted_tokens(store: Any) -> None:
    with store.locked():
        store.remember("alice", "drone", "t-alice-1", [])
        store.remember("bob", "drone", "t-bob", [])
    assert store.match(["x" * 40, bridge.token_hash("t-alice-1")]).token == "t-alice-1"
    assert store.token_for("nobody", "ALICE") == "t-alice-1"
    # alice deleted her old token in Gogs (no longer listed) and got a new one: the old entry goes.
    with store.locked():
        store.remember("alice", "drone-2", "t-alice-2", [bridge.token_hash("t-bob")])
    assert store.match([bridge.token_hash("t-alice-1")]) is None
    assert store.token_for("alice") == "t-alice-2" and store.token_for("bob") == "t-bob"
    assert bridge.TokenStore(store.path).prepare() == 2, "a restarted bridge reads the same two tokens"


def test_store_write_is_atomic(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way leaves the previous file whole and no temporary file behind."""
    with store.locked():
        store.remember("alice", "drone", "t-alice", [])
    before = store.path.read_bytes()

    def broken(obj: Any, out: Any) -> None:
        out.write('{"version": 1, "tok')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bridge.json, "dump", broken)
    with pytest.raises(OSError, match="No space"), store.locked():
        store.remember("bob", "drone", "t-bob", [])
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["tokens.json", "tokens.json.lock"]


def test_store_lock_serialises_read_modify_write(store: Any) -> None:
    """20 logins of different users at once, each a locked read-modify-write: none is lost."""
    def login(n: int) -> None:
        with store.locked():
            store.remember(f"user{n}", "drone", f"token-{n}", [])

    threads = [threading.Thread(target=login, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {store.token_for(f"user{n}") for n in range(20)} == {f"token-{n}" for n in range(20)}


def test_unreadable_store_is_moved_aside_and_logged(store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store.path.write_text("{not json")
    assert store.load() == {}
    aside = store.path.with_name("tokens.json.unreadable")
    assert aside.read_text() == "{not json" and not store.path.exists()
    assert "was unreadable: moved to tokens.json.unreadable" in capsys.readouterr().out


def test_unwritable_volume_stops_the_bridge_in_one_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").write_text("a file where the volume's folder should be")
    token = tmp_path / "token"
    token.write_text("machine-token\n")
    env = {"BRIDGE_GOGS_URL": "http://127.0.0.1:9", "BRIDGE_LISTEN": "127.0.0.1:1",
           "BRIDGE_HOOKS_LISTEN": "127.0.0.1:1", "BRIDGE_DRONE_URL": "http://127.0.0.1:9",
           "BRIDGE_STORE": str(tmp_path / "data" / "gogs-bridge" / "tokens.json"),
           "BRIDGE_MACHINE_TOKEN_FILE": str(token)}
    assert bridge.main(env) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gogs-bridge: error: cannot use the token store"), err
    token.unlink()
    assert bridge.main(env) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mount key token of the <release>-drone-machine Secret" in err[0], err
    assert bridge.main({}) == 1
    assert "missing environment: BRIDGE_GOGS_URL" in capsys.readouterr().err


# -- against a scripted Gogs and Drone ---------------------------------------------------------------
@dataclass
class Scripted:
    """Gogs (/api/v1/...) and Drone (/api/repos/...) as the bridge sees them, with injected faults."""

    tokens: list[dict[str, str]] = field(default_factory=list)  # alice's tokens, with plaintext
    list_status: int = 200
    slow: float = 0.0  # seconds before answering the token list
    steal_next_create: bool = False  # someone creates that very name just before the bridge does
    branches: dict[str, list[str]] = field(default_factory=dict)  # "owner/name" -> branch names
    drone_repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def listed(self) -> list[dict[str, str]]:
        return [{"name": t["name"], "sha1": hashlib.sha256(t["token"].encode()).hexdigest()[:40]}
                for t in self.tokens]


class Handler(BaseHTTPRequestHandler):
    state: Scripted

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the bridge gave up waiting
            self.wfile.write(data)

    def do_GET(self) -> None:
        s = self.state
        s.requests.append(f"GET {self.path}")
        if self.path == "/api/v1/users/alice/tokens":
            time.sleep(s.slow)
            return self.send(s.list_status, s.listed() if s.list_status == 200 else {"message": "boom"})
        if self.path == "/api/v1/user":
            return self.send(200, {"username": "alice"})
        for full, names in s.branches.items():
            if self.path == f"/api/v1/repos/{full}/branches":
                return self.send(200, [{"name": n} for n in names])
            if self.path.startswith(f"/api/v1/repos/{full}/branches/"):
                found = self.path.rsplit("/branches/", 1)[1] in names
                return self.send(200 if found else 404, {"name": "x"} if found else None)
            if self.path == f"/api/v1/repos/{full}":
                return self.send(200, {"full_name": full, "default_branch": "main", "empty": not names})
        if self.path.startswith("/api/repos/"):
            repo = s.drone_repos.get(self.path[len("/api/repos/"):])
            return self.send(200, repo) if repo else self.send(404, {"message": "Not Found"})
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Upstream", "yes")
            self.end_headers()
            for part in (b"hello ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return None
        return self.send(404, {"path": self.path})

    def do_POST(self) -> None:
        s = self.state
        s.requests.append(f"POST {self.path}")
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        if self.path == "/api/v1/users/alice/tokens":
            with s.lock:
                name = body["name"]
                if s.steal_next_create:
                    s.steal_next_create = False
                    s.tokens.append({"name": name, "token": "someone-elses"})
                if any(t["name"] == name for t in s.tokens):
                    return self.send(422, {"message": "access token name has been used"})
                token = f"{len(s.tokens):040d}"
                s.tokens.append({"name": name, "token": token})
            return self.send(201, {"name": name, "sha1": token})
        if self.path.endswith("/repair"):
            slug = self.path[len("/api/repos/"):-len("/repair")]
            s.drone_repos[slug]["default_branch"] = s.branches[slug][0]
            return self.send(200, s.drone_repos[slug])
        return self.send(404, None)

    do_HEAD = do_GET


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[Scripted, Any]]:
    state = Scripted()
    handler = type("Bound", (Handler,), {"state": state})
    with serve(handler) as port:
        url = f"http://127.0.0.1:{port}"
        cfg = bridge.Config(gogs_url=url, listen=("127.0.0.1", 0), hooks_listen=("127.0.0.1", 0),
                            drone_url=url, store=tmp_path / "store" / "tokens.json", machine_token="m",
                            timeout=2.0)
        b = bridge.Bridge(cfg)
        b.store.prepare()
        yield state, b


def test_concurrent_first_logins_create_one_token(scripted: tuple[Scripted, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    state, b = scripted
    answers: list[tuple[int, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(b.create_token("alice", AUTH)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [t["name"] for t in state.tokens] == ["drone"], state.tokens
    assert {(status, body["sha1"]) for status, body in answers} == {(201, state.tokens[0]["token"])}
    lines = capsys.readouterr().out.splitlines()
    assert lines.count("gogs-bridge: login alice: accepted (new Gogs token drone)") == 1, lines
    assert lines.count("gogs-bridge: login alice: accepted (Gogs token drone reused)") == 4, lines
    status, listed = b.list_tokens("alice", AUTH)
    assert (status, listed) == (200, [{"name": "drone", "sha1": state.tokens[0]["token"]}])


def test_a_name_taken_between_list_and_create_is_retried(scripted: tuple[Scripted, Any]) -> None:
    state, b = scripted
    state.tokens.append({"name": "drone", "token": "made-before-the-bridge"})
    state.steal_next_create = True  # drone-2 appears just before the bridge asks for it
    status, body = b.create_token("alice", AUTH)
    assert status == 201 and [t["name"] for t in state.tokens] == ["drone", "drone-2", "drone-3"]
    assert body == {"name": "drone", "sha1": state.tokens[2]["token"]}
    assert b.store.token_for("alice") == state.tokens[2]["token"]


@pytest.mark.parametrize(("fault", "status", "line"), [
    ("500", 500, "login alice: failed: Gogs answered HTTP 500 (unexpected) to the token look-up"),
    ("slow", 504,
     "login alice: failed: Gogs unreachable at {url}/api/v1/users/alice/tokens: no answer in time"),
])
def test_gogs_faults_reach_drone_as_a_status_and_one_line(scripted: tuple[Scripted, Any], fault: str,
                                                          status: int, line: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    state, b = scripted
    if fault == "500":
        state.list_status = 500
    else:
        state.slow = 3.0  # the bridge's timeout is 2 s
    got, _ = b.list_tokens("alice", AUTH)
    assert got == status
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("gogs-bridge: " + line.format(url=b.gogs.base)), out


def test_missing_default_branch_is_reported_as_the_first_branch(scripted: tuple[Scripted, Any]) -> None:
    state, b = scripted
    state.branches = {"alice/hello": ["master", "zz"], "alice/site": ["main", "feature"], "alice/new": []}
    repos: list[dict[str, Any]] = [
        {"full_name": "alice/hello", "default_branch": "main"},
        {"full_name": "alice/site", "default_branch": "main"},
        {"full_name": "alice/new", "default_branch": "main", "empty": True}]
    for repo in repos:
        b.fix_default_branch(repo, {"Authorization": "token t"})
    assert [r["default_branch"] for r in repos] == ["master", "main", "main"]
    asked = [r for r in state.requests if "/repos/" in r]
    assert not [r for r in asked if "alice/new" in r], f"an empty repository cost calls: {asked}"
    assert asked.count("GET /api/v1/repos/alice/site/branches/main") == 1 and len(asked) == 3, asked


def test_push_rules_repair_only_when_drones_default_branch_is_missing(
        scripted: tuple[Scripted, Any], capsys: pytest.CaptureFixture[str]) -> None:
    state, b = scripted
    state.branches = {"alice/hello": ["master"], "alice/site": ["feature", "main"]}
    state.drone_repos = {"alice/hello": {"active": True, "default_branch": "main"},
                         "alice/site": {"active": True, "default_branch": "main"}}
    with b.store.locked():
        b.store.remember("alice", "drone", "alice-token", [])
    site = _push(ref="refs/heads/feature", repository={"name": "site", "default_branch": "main",
                                                       "owner": {"username": "alice"}})
    b.before_push(_push(ref="refs/heads/main"))  # the default branch itself: no call at all
    assert state.requests == []
    b.before_push(site)  # main exists: one Drone read, one Gogs check, no repair
    assert state.requests == ["GET /api/repos/alice/site", "GET /api/v1/repos/alice/site/branches/main"]
    state.requests.clear()
    b.before_push(_push())  # master pushed, Drone's main missing: repair
    assert state.requests[-1] == "POST /api/repos/alice/hello/repair"
    assert state.drone_repos["alice/hello"]["default_branch"] == "master"
    state.requests.clear()
    b.before_push(_push())  # Drone already builds master: one read, nothing else
    assert state.requests == ["GET /api/repos/alice/hello"]
    out = capsys.readouterr().out.splitlines()
    assert out == ["gogs-bridge: hook alice/hello: default branch 'main' does not exist in Gogs; Drone "
                   "repaired the repository, its default branch is now 'master'"], out


def test_push_without_a_known_token_is_skipped_with_one_line(scripted: tuple[Scripted, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    state, b = scripted
    state.drone_repos = {"alice/hello": {"active": True, "default_branch": "main"}}
    b.before_push(_push())
    assert "POST /api/repos/alice/hello/repair" not in state.requests
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "no Gogs token of bob or alice known yet" in out[0], out


def test_pass_through_keeps_status_headers_query_and_streams(scripted: tuple[Scripted, Any]) -> None:
    """Everything the bridge does not rewrite is forwarded as is (here: a chunked answer, a query, HEAD)."""
    _state, b = scripted
    server = bridge.bind(("127.0.0.1", 0), bridge.GogsHandler, b)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        conn.request("GET", "/chunked?page=2")
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("X-Upstream"), resp.read()) == (200, "yes", b"hello world")
        conn.request("GET", "/api/v1/nothing?x=1")  # the same keep-alive connection
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read()) == {"path": "/api/v1/nothing?x=1"}
        conn.request("HEAD", "/api/v1/nothing")
        resp = conn.getresponse()
        assert resp.status == 404 and resp.read() == b""
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_store_that_cannot_be_written_does_not_fail_the_login(scripted: tuple[Scripted, Any],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    state, b = scripted

    def full(entries: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(b.store, "save", full)
    status, body = b.create_token("alice", AUTH)
    assert status == 201 and body == {"name": "drone", "sha1": state.tokens[0]["token"]}
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "cannot be written (No space left on device)" in out[0], out
