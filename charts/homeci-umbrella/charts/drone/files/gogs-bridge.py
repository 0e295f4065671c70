#!/usr/bin/env python3
"""homeci Gogs bridge: a sidecar of the Drone server on Drone's in-cluster path to Gogs.

Drone (2.28) logs a Gogs user in by listing the user's Gogs access tokens (HTTP Basic auth) and reusing
the value of the one named "drone", else creating it. Gogs (0.13+) keeps only a hash of each token and
lists that hash, so only the first login of a user ever worked. This bridge listens on 127.0.0.1 (Drone's
DRONE_GOGS_SERVER) and forwards every request to Gogs unchanged, except:

* token look-up: the plaintext of every token it sees Gogs create is kept in a store on Drone's data
  volume (mode 0600, written atomically, under a lock). When Gogs lists (password verified) a token whose
  hash matches a stored one, Drone is shown that token as "drone" with its plaintext, so it reuses it.
  A "drone" token the bridge does not know (made before the bridge, or the store was lost) is hidden,
  and Drone's create becomes the smallest free name drone, drone-2, drone-3, ...: nothing is deleted,
  at most one new token per user per store loss;
* one log line per login attempt naming the user and the outcome (never a token or password), and an
  HTTP status that makes Drone's error page say what happened (502 "Bad Gateway": Gogs unreachable);
* default branch: a repository whose recorded default branch does not exist (Gogs keeps its
  DEFAULT_BRANCH when the first push is another branch) is reported with the branch Gogs' web UI shows.

A second listener (the pod's `hooks` port) receives Gogs' webhooks and forwards them byte for byte to
Drone. Before a push to a branch that is not the default, if Drone's recorded default branch does not
exist in Gogs, it asks Drone to repair the repository (POST /api/repos/{owner}/{name}/repair with the
admin's machine token) so Drone re-reads it through this bridge and builds the pushed branch as the
default. It also serves /healthz for the probes.

Environment: BRIDGE_GOGS_URL (Gogs' base URL), BRIDGE_LISTEN (127.0.0.1:<port> for Drone),
BRIDGE_HOOKS_LISTEN ([host]:<port>, empty host = every address), BRIDGE_DRONE_URL (Drone on 127.0.0.1),
BRIDGE_STORE (the token store file), BRIDGE_MACHINE_TOKEN_FILE (the admin's Drone API token),
BRIDGE_TIMEOUT (seconds per upstream call, default 10), BRIDGE_CA_FILE (optional extra CA for an HTTPS
Gogs). Only the Python standard library is used.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

PREFIX = "gogs-bridge"
LABEL = "drone"  # the token name Drone's Gogs login looks for and creates
MAX_BODY = 32 * 1024 * 1024  # webhook payloads and JSON answers the bridge reads whole
CREATE_ATTEMPTS = 3
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "host"})
TOKENS_PATH = re.compile(r"^/api/v1/users/([^/]+)/tokens/?$")
REPO_PATH = re.compile(r"^/api/v1/repos/([^/]+)/([^/]+)/?$")
REPO_LIST_PATH = re.compile(r"^/api/v1/(?:user/repos|users/[^/]+/repos|orgs/[^/]+/repos)/?$")
ZERO_SHA = re.compile(r"^0+$")


class BridgeError(Exception):
    """Fatal at start: the bridge cannot work as configured (one line, says what to do)."""


class Unreachable(Exception):
    """An upstream call got no HTTP answer: connection error or timeout."""

    def __init__(self, url: str, reason: str, timeout: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.timeout = url, reason, timeout


def log(message: str) -> None:
    print(f"{PREFIX}: {message}", flush=True)


def shown(text: str, limit: int = 64) -> str:
    """``text`` safe for one log line: printable characters only, bounded length."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


# -- pure rules (unit-tested) -----------------------------------------------------------------------
def token_hash(token: str) -> str:
    """What Gogs lists as a token's ``sha1``: the first 40 hex digits of SHA-256 of the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def is_drone_name(name: str) -> bool:
    """``drone`` or ``drone-<n>``: names the bridge manages for Drone."""
    return name == LABEL or re.fullmatch(rf"{LABEL}-[0-9]+", name) is not None


def free_drone_name(taken: Iterable[str]) -> str:
    """The smallest free name of ``drone``, ``drone-2``, ``drone-3``, ..."""
    names = set(taken)
    if LABEL not in names:
        return LABEL
    n = 2
    while f"{LABEL}-{n}" in names:
        n += 1
    return f"{LABEL}-{n}"


def token_list_for_drone(listed: list[dict[str, Any]], known: str | None) -> list[dict[str, Any]]:
    """Gogs' token list as Drone must see it: every drone/drone-* entry hidden, plus ``known`` (a token
    whose hash Gogs listed) as the entry named ``drone`` with its plaintext, so Drone reuses it."""
    others = [t for t in listed if not is_drone_name(str(t.get("name", "")))]
    if known is None:
        return others
    return [*others, {"name": LABEL, "sha1": known}]


def push_of(payload: Mapping[str, Any]) -> tuple[str, str, str, str, str] | None:
    """(owner, name, branch, recorded default branch, pusher) of a Gogs push payload; None for tags,
    branch deletions and anything malformed."""
    ref, after = payload.get("ref"), payload.get("after")
    repo = payload.get("repository")
    if not isinstance(ref, str) or not ref.startswith("refs/heads/") or not isinstance(repo, dict):
        return None
    if isinstance(after, str) and ZERO_SHA.match(after):
        return None
    owner: dict[str, Any] = repo.get("owner") or {}
    pusher: dict[str, Any] = payload.get("pusher") or {}
    if not isinstance(owner, dict) or not isinstance(pusher, dict):
        return None
    login = str(owner.get("username") or owner.get("login") or "")
    name, default = str(repo.get("name") or ""), str(repo.get("default_branch") or "")
    if not (login and name and default):
        return None
    who = str(pusher.get("username") or pusher.get("login") or "")
    return login, name, ref[len("refs/heads/"):], default, who


def parse_listen(value: str, what: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (empty host = every address)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BridgeError(f"{what}={value!r} is not [host]:port: set it like 127.0.0.1:3001 or :8081")
    return host.strip("[]"), int(port)


# -- the token store --------------------------------------------------------------------------------
@dataclass
class Entry:
    user: str  # the Gogs login that owns the token (lower case)
    name: str
    token: str


class TokenStore:
    """Plaintext tokens by hash, in one JSON file (0600, replaced atomically) beside a lock file.

    The file lock (``locked``) serialises logins across threads and processes; every read goes to the
    file, so two bridges sharing the volume never disagree."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def prepare(self) -> int:
        """Create the folder (0700) and an empty store if none; returns the number of stored tokens.
        Fails with one line when the volume is not writable."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.locked():
                entries = self.load()
                if not self.path.exists():
                    self.save(entries)
        except OSError as exc:
            raise BridgeError(f"cannot use the token store {self.path}: {exc.strerror or exc} (the Drone "
                              "data volume must be writable by the bridge's uid or fsGroup)") from None
        return len(entries)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def load(self) -> dict[str, Entry]:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            entries = [Entry(str(e["user"]), str(e["name"]), str(e["token"])) for e in doc["tokens"]]
        except (ValueError, KeyError, TypeError):
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log(f"token store {self.path} was unreadable: moved to {aside.name}, starting empty (each "
                "user's next login creates one new Gogs token)")
            return {}
        return {token_hash(e.token): e for e in entries}

    def save(self, entries: dict[str, Entry]) -> None:
        doc = {"version": 1, "tokens": [e.__dict__ for e in entries.values()]}
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                os.fchmod(out.fileno(), 0o600)
                json.dump(doc, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)

    def match(self, hashes: Iterable[str]) -> Entry | None:
        """The stored token whose hash is among ``hashes`` (what Gogs listed), if any."""
        entries = self.load()
        return next((entries[h] for h in hashes if h in entries), None)

    def remember(self, user: str, name: str, token: str, listed: Iterable[str]) -> None:
        """Store ``token`` of ``user``; forget that user's tokens Gogs no longer lists. Call it locked."""
        keep = set(listed)
        entries = {h: e for h, e in self.load().items() if e.user != user.lower() or h in keep}
        entries[token_hash(token)] = Entry(user.lower(), name, token)
        self.save(entries)

    def token_for(self, *users: str) -> str | None:
        """The newest stored token of the first of ``users`` that has one."""
        entries = list(self.load().values())
        for user in users:
            mine = [e.token for e in entries if user and e.user == user.lower()]
            if mine:
                return mine[-1]
        return None


# -- HTTP to Gogs and Drone -------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None


@dataclass
class Upstream:
    """One base URL (Gogs or Drone) with bounded timeouts; a fresh connection per call."""

    base: str
    timeout: float
    context: ssl.SSLContext | None = None
    parts: urllib.parse.SplitResult = field(init=False)

    def __post_init__(self) -> None:
        self.parts = urllib.parse.urlsplit(self.base.rstrip("/"))
        if self.parts.scheme not in ("http", "https") or not self.parts.hostname:
            raise BridgeError(f"{self.base!r} is not an http(s) URL")

    def url(self, path: str) -> str:
        return f"{self.base.rstrip('/')}{path}"

    def connect(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname or "", self.parts.port
        if self.parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def open(self, method: str, path: str, headers: Mapping[str, str],
             body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request; the caller reads the response and closes the connection."""
        conn = self.connect()
        try:
            conn.request(method, self.parts.path + path, body=body, headers=dict(headers))
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise unreachable(self.url(path), exc) from None

    def call(self, method: str, path: str, headers: Mapping[str, str] | None = None,
             body: Any = None) -> Reply:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn, resp = self.open(method, path, hdrs, data)
        try:
            return Reply(resp.status, resp.getheaders(), resp.read(MAX_BODY))
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(self.url(path), exc) from None
        finally:
            conn.close()


def unreachable(url: str, exc: BaseException) -> Unreachable:
    """The one-line reason of a failed call: the errno text and name, or the timeout."""
    if isinstance(exc, TimeoutError):
        return Unreachable(url, "no answer in time (timed out)", timeout=True)
    if isinstance(exc, socket.gaierror):
        return Unreachable(url, f"name not resolved ({exc.strerror or exc})")
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return Unreachable(url, f"{exc.strerror or os.strerror(exc.errno)} ({name})")
    return Unreachable(url, str(exc) or type(exc).__name__)


def quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


# -- the bridge --------------------------------------------------------------------------------------
@dataclass
class Config:
    gogs_url: str
    listen: tuple[str, int]
    hooks_listen: tuple[str, int]
    drone_url: str
    store: Path
    machine_token: str
    timeout: float = 10.0
    ca_file: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        missing = [k for k in ("BRIDGE_GOGS_URL", "BRIDGE_LISTEN", "BRIDGE_HOOKS_LISTEN", "BRIDGE_DRONE_URL",
                               "BRIDGE_STORE", "BRIDGE_MACHINE_TOKEN_FILE") if not env.get(k)]
        if missing:
            raise BridgeError(f"missing environment: {', '.join(missing)} (set by the Drone Deployment)")
        token_file = env["BRIDGE_MACHINE_TOKEN_FILE"]
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise BridgeError(f"cannot read the Drone machine token {token_file} ({exc.strerror or exc}): "
                              "mount key token of the <release>-drone-machine Secret there") from None
        if not token:
            raise BridgeError(f"the Drone machine token file {token_file} is empty")
        try:
            timeout = float(env.get("BRIDGE_TIMEOUT") or 10)
        except ValueError:
            raise BridgeError(f"BRIDGE_TIMEOUT={env.get('BRIDGE_TIMEOUT')!r} is not a number of "
                              "seconds") from None
        return cls(gogs_url=env["BRIDGE_GOGS_URL"],
                   listen=parse_listen(env["BRIDGE_LISTEN"], "BRIDGE_LISTEN"),
                   hooks_listen=parse_listen(env["BRIDGE_HOOKS_LISTEN"], "BRIDGE_HOOKS_LISTEN"),
                   drone_url=env["BRIDGE_DRONE_URL"], store=Path(env["BRIDGE_STORE"]),
                   machine_token=token, timeout=timeout, ca_file=env.get("BRIDGE_CA_FILE", ""))


class Bridge:
    """What both listeners share: the upstreams, the store and the rules above."""

    def __init__(self, cfg: Config) -> None:
        context = None
        if urllib.parse.urlsplit(cfg.gogs_url).scheme == "https":
            context = ssl.create_default_context()
            if cfg.ca_file and os.path.isfile(cfg.ca_file):
                context.load_verify_locations(cafile=cfg.ca_file)
        self.gogs = Upstream(cfg.gogs_url, cfg.timeout, context)
        self.drone = Upstream(cfg.drone_url, cfg.timeout)
        self.store = TokenStore(cfg.store)
        self.machine_token = cfg.machine_token
        self._reported: set[tuple[str, str]] = set()  # (repository, missing default) already logged
        self._report_lock = threading.Lock()
        self.threads: list[threading.Thread] = []  # the listeners; /healthz fails when one has died

    # -- login ------------------------------------------------------------------------------------
    def login_failure(self, user: str, exc: Unreachable | None, reply: Reply | None) -> int:
        """Log the one line of a failed login attempt; the status Drone gets (its error page shows the
        status text)."""
        who = f"login {shown(user)}"
        if exc is not None:
            log(f"{who}: failed: Gogs unreachable at {exc.url}: {exc.reason}")
            return 504 if exc.timeout else 502
        assert reply is not None
        if reply.status == 401:
            try:
                known = self.gogs.call("GET", f"/api/v1/users/{quote(user)}").status
            except Unreachable:
                known = 0
            if known == 404:
                log(f"{who}: refused: no such Gogs user")
            else:
                log(f"{who}: refused: Gogs refused the password (HTTP 401)")
            return 401
        log(f"{who}: failed: Gogs answered HTTP {reply.status} (unexpected) to the token look-up")
        return reply.status if reply.status >= 400 else 502

    def list_tokens(self, user: str, auth: Mapping[str, str]) -> tuple[int, Any]:
        """Drone's GET /users/{user}/tokens (first step of every login)."""
        try:
            reply = self.gogs.call("GET", f"/api/v1/users/{quote(user)}/tokens", auth)
        except Unreachable as exc:
            return self.login_failure(user, exc, None), None
        listed = reply.json()
        if reply.status != 200 or not isinstance(listed, list):
            return self.login_failure(user, None, reply), reply.json()
        with self.store.locked():
            known = self.store.match(str(t.get("sha1", "")) for t in listed if isinstance(t, dict))
        if known is not None:
            log(f"login {shown(user)}: accepted (Gogs token {known.name} reused)")
            return 200, token_list_for_drone(listed, known.token)
        # No token the bridge knows: Drone creates one next (create_token logs the outcome).
        return 200, token_list_for_drone(listed, None)

    def create_token(self, user: str, auth: Mapping[str, str]) -> tuple[int, Any]:
        """Drone's POST /users/{user}/tokens {"name": "drone"}: reuse a known token, else create the
        smallest free drone[-n] and remember it. Serialised by the store lock."""
        path = f"/api/v1/users/{quote(user)}/tokens"
        with self.store.locked():
            for _ in range(CREATE_ATTEMPTS):
                try:
                    reply = self.gogs.call("GET", path, auth)
                    listed = reply.json()
                    if reply.status != 200 or not isinstance(listed, list):
                        return self.login_failure(user, None, reply), listed
                    entries = [t for t in listed if isinstance(t, dict)]
                    hashes = [str(t.get("sha1", "")) for t in entries]
                    known = self.store.match(hashes)
                    if known is not None:  # a concurrent login of the same user created it
                        log(f"login {shown(user)}: accepted (Gogs token {known.name} reused)")
                        return 201, {"name": LABEL, "sha1": known.token}
                    name = free_drone_name(str(t.get("name", "")) for t in entries)
                    created = self.gogs.call("POST", path, auth, {"name": name})
                except Unreachable as exc:
                    return self.login_failure(user, exc, None), None
                body = created.json()
                if created.status == 422:
                    continue  # someone took that name meanwhile: look again
                if created.status != 201 or not isinstance(body, dict) or not body.get("sha1"):
                    return self.login_failure(user, None, created), body
                token = str(body["sha1"])
                owner = self.whoami(token) or user
                try:
                    self.store.remember(owner, name, token, hashes)
                except OSError as exc:  # the login still works; only the next one costs a token
                    log(f"login {shown(user)}: accepted (new Gogs token {name}), but the token store "
                        f"cannot be written ({exc.strerror or exc}): the next login creates another token")
                    return 201, {"name": LABEL, "sha1": token}
                log(f"login {shown(user)}: accepted (new Gogs token {name})")
                return 201, {"name": LABEL, "sha1": token}
        log(f"login {shown(user)}: failed: no free Gogs token name after {CREATE_ATTEMPTS} attempts")
        return 409, None

    def whoami(self, token: str) -> str | None:
        try:
            reply = self.gogs.call("GET", "/api/v1/user", {"Authorization": f"token {token}"})
        except Unreachable:
            return None
        body = reply.json()
        if reply.status == 200 and isinstance(body, dict):
            return str(body.get("username") or body.get("login") or "") or None
        return None

    # -- default branch ---------------------------------------------------------------------------
    def branch_exists(self, full_name: str, branch: str, auth: Mapping[str, str]) -> bool | None:
        """True/False from Gogs' GET .../branches/{branch}; None when Gogs cannot say."""
        owner, _, name = full_name.partition("/")
        path = f"/api/v1/repos/{quote(owner)}/{quote(name)}/branches/{urllib.parse.quote(branch, safe='/')}"
        try:
            status = self.gogs.call("GET", path, auth).status
        except Unreachable:
            return None
        return True if status == 200 else False if status == 404 else None

    def shown_branch(self, full_name: str, auth: Mapping[str, str]) -> str | None:
        """The branch Gogs' web UI shows when the recorded default is missing: its first branch."""
        owner, _, name = full_name.partition("/")
        try:
            reply = self.gogs.call("GET", f"/api/v1/repos/{quote(owner)}/{quote(name)}/branches", auth)
        except Unreachable:
            return None
        branches = reply.json()
        if reply.status != 200 or not isinstance(branches, list) or not branches:
            return None
        first = branches[0]
        name = str(first.get("name") or "") if isinstance(first, dict) else ""
        return name or None

    def fix_default_branch(self, repo: Any, auth: Mapping[str, str]) -> None:
        """In place: a recorded default branch that does not exist -> the branch Gogs' UI shows."""
        if not isinstance(repo, dict) or repo.get("empty"):
            return
        full, default = str(repo.get("full_name") or ""), str(repo.get("default_branch") or "")
        if "/" not in full or not default or self.branch_exists(full, default, auth) is not False:
            return
        shown_as = self.shown_branch(full, auth)
        if not shown_as or shown_as == default:
            return
        repo["default_branch"] = shown_as
        if self.first_report(full, default):
            log(f"repository {shown(full)}: default branch {shown(default)!r} does not exist in Gogs; "
                f"Drone is told {shown(shown_as)!r} (the branch Gogs' web UI shows)")

    def first_report(self, full_name: str, default: str) -> bool:
        """True once per repository and missing default branch: the bridge logs it once, not on
        every sync (the repair of a webhook logs its own line instead)."""
        with self._report_lock:
            first = (full_name.lower(), default) not in self._reported
            self._reported.add((full_name.lower(), default))
        return first

    # -- webhooks ---------------------------------------------------------------------------------
    def before_push(self, payload: Mapping[str, Any]) -> None:
        """Repair Drone's repository record when its default branch does not exist and another branch
        was pushed, so this push already builds as the default branch. Cheap when nothing is wrong."""
        push = push_of(payload)
        if push is None:
            return
        owner, name, branch, default, pusher = push
        if branch == default:
            return
        slug = f"{quote(owner)}/{quote(name)}"
        bearer = {"Authorization": f"Bearer {self.machine_token}"}
        where = f"hook {shown(owner)}/{shown(name)}"
        try:
            record = self.drone.call("GET", f"/api/repos/{slug}", bearer)
        except Unreachable as exc:
            log(f"{where}: cannot read Drone's repository record: Drone unreachable at {exc.url}: "
                f"{exc.reason}")
            return
        repo = record.json()
        if record.status != 200 or not isinstance(repo, dict) or not repo.get("active"):
            return  # not activated in Drone: Drone ignores the hook anyway
        current = str(repo.get("default_branch") or default)
        if current == branch:
            return
        token = self.store.token_for(pusher, owner)
        if token is None:
            log(f"{where}: push to {shown(branch)!r}: cannot check whether default branch {shown(current)!r} "
                f"exists: no Gogs token of {shown(pusher)} or {shown(owner)} known yet (log into Drone once)")
            return
        exists = self.branch_exists(f"{owner}/{name}", current, {"Authorization": f"token {token}"})
        if exists is not False:
            return
        self.first_report(f"{owner}/{name}", current)  # the line below says it
        try:
            repaired = self.drone.call("POST", f"/api/repos/{slug}/repair", bearer)
        except Unreachable as exc:
            log(f"{where}: repair failed: Drone unreachable at {exc.url}: {exc.reason}")
            return
        now = repaired.json() if repaired.status == 200 else None
        after = str(now.get("default_branch")) if isinstance(now, dict) else "?"
        if repaired.status == 200:
            log(f"{where}: default branch {shown(current)!r} does not exist in Gogs; Drone repaired the "
                f"repository, its default branch is now {shown(after)!r}")
        else:
            log(f"{where}: default branch {shown(current)!r} does not exist in Gogs; Drone's repair "
                f"answered HTTP {repaired.status}")


# -- the two listeners -------------------------------------------------------------------------------
class Server(ThreadingHTTPServer):
    daemon_threads = True
    bridge: Bridge

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], bridge: Bridge,
                 family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        self.bridge = bridge
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line instead of a traceback; nothing when the caller hung up (it has gone)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, BrokenPipeError | ConnectionResetError | TimeoutError):
            return
        log(f"request from {client_address[0]} failed: {type(exc).__name__}: {exc}")

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end
    server_version = PREFIX

    @property
    def bridge(self) -> Bridge:
        return cast(Server, self.server).bridge

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per login/repair is logged by the bridge itself, not one per request

    def read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                size += length
                if size > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else None

    def body_or_413(self, what: str) -> tuple[bool, bytes | None]:
        """(True, the request body), or (False, None) after answering 413 for a body over MAX_BODY."""
        try:
            return True, self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_text(413, f"{what} too large")
            return False, None

    def authorization(self) -> dict[str, str]:
        """The caller's own Authorization header (Basic auth or `token <t>`), for calls made for it."""
        return {k: v for k, v in self.headers.items() if k.lower() == "authorization"}

    def forward_headers(self, drop: Iterable[str] = ()) -> dict[str, str]:
        skip = HOP_BY_HOP | {d.lower() for d in drop} | {"content-length"}
        return {k: v for k, v in self.headers.items() if k.lower() not in skip}

    def send_json(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response_only(status)
        skip = HOP_BY_HOP | {"content-length", "content-encoding", "content-type"}
        for key, value in headers:
            if key.lower() not in skip:
                self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status: int, text: str) -> None:
        data = f"{PREFIX}: {text}\n".encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def relay(self, upstream: Upstream, body: bytes | None) -> None:
        """Forward this request unchanged; stream the answer back."""
        conn, resp = upstream.open(self.command, self.path, self.forward_headers(), body)
        try:
            self.send_response_only(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            for key, value in resp.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            chunked = not no_body and length is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if no_body:
                return
            while True:
                block = resp.read1(65536) if chunked else resp.read(65536)
                if not block:
                    break
                self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    def healthz(self) -> bool:
        if urllib.parse.urlsplit(self.path).path != "/healthz":
            return False
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True  # its body, if any, is not read
            self.send_text(405, "GET /healthz")
            return True
        dead = [t.name for t in self.bridge.threads if not t.is_alive()]
        if dead:
            self.send_text(503, f"listener stopped: {', '.join(dead)}")
        else:
            self.send_text(200, "ok")
        return True


class GogsHandler(Handler):
    """127.0.0.1, for Drone only: Gogs' API with the token look-up and default-branch rules."""

    def handle_any(self) -> None:
        if self.healthz():
            return
        ok, body = self.body_or_413("request body")
        if not ok:
            return
        path = urllib.parse.urlsplit(self.path).path
        auth = self.authorization()
        tokens = TOKENS_PATH.match(path)
        try:
            if tokens and self.command in ("GET", "POST"):
                user = urllib.parse.unquote(tokens.group(1))
                action = self.bridge.list_tokens if self.command == "GET" else self.bridge.create_token
                status, answer = action(user, auth)
                self.send_json(status, answer)
            elif self.command == "GET" and (REPO_PATH.match(path) or REPO_LIST_PATH.match(path)):
                self.repository(body)
            else:
                self.relay(self.bridge.gogs, body)
        except Unreachable as exc:
            log(f"{self.command} {shown(path, 120)}: Gogs unreachable at {exc.url}: {exc.reason}")
            self.send_text(504 if exc.timeout else 502, f"Gogs unreachable: {exc.reason}")

    def repository(self, body: bytes | None) -> None:
        reply = self.bridge.gogs.call("GET", self.path, self.forward_headers(drop=["accept-encoding"]), body)
        doc = reply.json()
        if reply.status != 200 or doc is None:
            self.send_response_only(reply.status)
            for key, value in reply.headers:
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        auth = self.authorization()
        for repo in doc if isinstance(doc, list) else [doc]:
            self.bridge.fix_default_branch(repo, auth)
        self.send_json(200, doc, reply.headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class HooksHandler(Handler):
    """The pod's `hooks` port: Gogs' webhooks to Drone, and the probes' /healthz."""

    def handle_any(self) -> None:
        if self.healthz():
            return
        if self.command != "POST" or urllib.parse.urlsplit(self.path).path != "/hook":
            self.close_connection = True  # its body, if any, is not read
            self.send_text(404, "this port takes POST /hook (Gogs webhooks) and GET /healthz")
            return
        ok, body = self.body_or_413("webhook payload")
        if not ok:
            return
        if self.headers.get("X-Gogs-Event", "") == "push" and body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                try:
                    self.bridge.before_push(payload)
                except Exception as exc:  # never lose a webhook over the repair
                    log(f"hook: default-branch check failed ({type(exc).__name__}: {exc}); forwarding as is")
        try:
            self.relay(self.bridge.drone, body)
        except Unreachable as exc:
            log(f"hook: Drone unreachable at {exc.url}: {exc.reason}")
            self.send_text(504 if exc.timeout else 502, f"Drone unreachable: {exc.reason}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def bind(address: tuple[str, int], handler: type[Handler], bridge: Bridge) -> Server:
    """A listener on ``address``; an empty host means every address (IPv6 and IPv4 where possible)."""
    host, port = address
    try:
        if host:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return Server((host, port), handler, bridge, family)
        try:
            return Server(("::", port), handler, bridge, socket.AF_INET6)
        except OSError:
            return Server(("0.0.0.0", port), handler, bridge, socket.AF_INET)
    except OSError as exc:
        raise BridgeError(f"cannot listen on {host or '*'}:{port}: {exc.strerror or exc}") from None


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        cfg = Config.from_env(os.environ if env is None else env)
        bridge = Bridge(cfg)
        stored = bridge.store.prepare()
        servers = [bind(cfg.listen, GogsHandler, bridge), bind(cfg.hooks_listen, HooksHandler, bridge)]
    except BridgeError as exc:
        print(f"{PREFIX}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bridge.threads = [threading.Thread(target=s.serve_forever, name=name, daemon=True)
                      for s, name in zip(servers, ("drone-to-gogs", "hooks"), strict=True)]
    for thread in bridge.threads:
        thread.start()
    log(f"serving Drone on {cfg.listen[0]}:{cfg.listen[1]} -> Gogs {bridge.gogs.base}; webhooks and "
        f"/healthz on {cfg.hooks_listen[0] or '*'}:{cfg.hooks_listen[1]} -> Drone {bridge.drone.base}; "
        f"token store {cfg.store} ({stored} tokens)")
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
