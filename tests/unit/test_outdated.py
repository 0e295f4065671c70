"""``homeci toolchain outdated``: pins against what a (loopback) module proxy and PyPI report.

The real go command asks a stand-in module proxy (the ``@v/list`` endpoint of the GOPROXY protocol) and
the PyPI JSON API stand-in; the pins are a small set of our own."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from homeci import outdated, toolchain
from homeci_testing.loopback import serve
from homeci_testing.support import run_cli

LISTS = {
    "example.org/alpha": ["v1.2.3", "v1.2.4", "v1.3.0", "v1.4.0-rc.1"],
    "example.org/beta": ["v0.5.0", "v0.6.0"],
    "example.org/held": ["v2.0.0", "v2.1.0", "v2.2.0"],
}


class Proxy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        module, _, rest = self.path.lstrip("/").partition("/@v/")
        if module == "example.org/refused":
            self._send(403, "not available")
        elif rest == "list" and module in LISTS:
            self._send(200, "\n".join(LISTS[module]) + "\n")
        elif rest.endswith(".info") and module in LISTS:   # go reads the newest one's retractions
            info = {"Version": rest.removesuffix(".info"), "Time": "2026-01-01T00:00:00Z"}
            self._send(200, json.dumps(info))
        elif rest.endswith(".mod") and module in LISTS:
            self._send(200, f"module {module}\n")
        elif self.path.startswith("/pypi/"):
            package = self.path.split("/")[2]
            found = {"pytool": "2.0.1"}.get(package)
            self._send(200 if found else 404, json.dumps({"info": {"version": found}}))
        else:
            self._send(404, "not found")

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def pin(name: str, package: str, version: str, build: str = "go-install", hold: str = "") -> toolchain.Tool:
    return toolchain.Tool(name=name, version=version, binary=name, build=build, package=package,
                          env=f"FAKE_{name.upper()}", version_args=(), expect=version, accept=".", hold=hold)


PINS = {t.name: t for t in (
    pin("alpha", "example.org/alpha/cmd/alpha", "v1.2.3"),
    pin("alpha-two", "example.org/alpha/cmd/two", "v1.2.3"),      # same module and version: same row
    pin("beta", "example.org/beta", "v0.6.0"),
    pin("held", "example.org/held/cmd/held", "v2.0.0", hold="v2.2.0: waits for the approval of 2.2"),
    pin("refused", "example.org/refused/cmd/refused", "v1.0.0"),
    pin("pytool", "pytool", "1.9.0", build="pypi-venv"),
    pin("archive", "./cmd/archive", "v1.0.0", build="source-archive"),
)}


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    tool_or_skip_go()
    monkeypatch.setattr(toolchain, "load_pins", lambda path=None: PINS)
    with serve(Proxy) as port:
        monkeypatch.setenv("GOPROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
        monkeypatch.setenv("GONOSUMDB", "example.org")   # the stand-in modules are in no checksum database
        monkeypatch.setenv("HOMECI_PYPI_URL", f"http://127.0.0.1:{port}/pypi/{{package}}/json")
        yield port


def tool_or_skip_go() -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not on PATH: the outdated check asks the module proxy through it")


def test_newest_stays_in_the_major_and_skips_pre_releases() -> None:
    versions = ["v1.2.3", "v1.2.4", "v1.3.0", "v1.4.0-rc.1", "v2.0.0", "garbage"]
    assert outdated.newest(versions, "v1.2.3") == ("v1.2.4", "v1.3.0")
    assert outdated.newest(["v1.0.0-rc.4", "v1.0.0-rc.5", "v1.0.0-rc.6"], "v1.0.0-rc.5") == ("v1.0.0-rc.6",
                                                                                           "v1.0.0-rc.6")
    assert outdated.newest([], "v1.0.0") == ("", "")


def test_rows_against_the_proxy_and_pypi(proxy: int) -> None:
    rows = {r.tools: r for r in outdated.check()}
    alpha = rows[("alpha", "alpha-two")]
    assert (alpha.source, alpha.newest_patch, alpha.newest, alpha.state) == \
        ("example.org/alpha", "v1.2.4", "v1.3.0", "behind"), alpha
    assert rows[("beta",)].state == "current", rows[("beta",)]
    held = rows[("held",)]
    assert held.state == "held" and held.note == "waits for the approval of 2.2", held
    assert rows[("refused",)].state == "unknown" and "refuses" in rows[("refused",)].note
    assert (rows[("pytool",)].newest, rows[("pytool",)].state) == ("2.0.1", "behind")
    assert rows[("archive",)].state == "unchecked"
    assert sorted(r.tools[0] for r in outdated.behind(list(rows.values()))) == ["alpha", "pytool"]


def test_a_hold_covers_only_the_versions_it_names(proxy: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LISTS, "example.org/held", [*LISTS["example.org/held"], "v2.3.0"])
    (row,) = outdated.check(["held"])
    assert row.state == "behind" and "up to v2.2.0" in row.note, row


def test_cli_exits_non_zero_naming_what_is_behind(proxy: int) -> None:
    code, out, err = run_cli("toolchain", "outdated", env={"COLUMNS": "200"})
    assert code == 1, (out, err)
    assert "example.org/alpha" in out and "v1.3.0" in out and "waits for the approval of 2.2" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("homeci: error: 2 pin(s) behind (alpha, pytool)"), err
    code, out, err = run_cli("toolchain", "outdated", "beta", "held")
    assert code == 0 and "no pin is behind (2 rows: 1 current, 1 held)" in out, (out, err)


def test_unreachable_proxy_is_one_line_saying_what_to_check(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    tool_or_skip_go()
    monkeypatch.setattr(toolchain, "load_pins", lambda path=None: PINS)
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")   # discard port: nothing listens
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
    monkeypatch.setenv("HOMECI_PYPI_URL", "http://127.0.0.1:9/pypi/{package}/json")
    code, _, err = run_cli("toolchain", "outdated", "alpha")
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("homeci: error: cannot ask the Go module proxy (http://127.0.0.1:9) about "
                                "example.org/alpha"), err
    assert "check the network or GOPROXY" in lines[-1]
    code, _, err = run_cli("toolchain", "outdated", "pytool")
    assert code == 1 and "cannot reach PyPI" in err.strip().splitlines()[-1], err
