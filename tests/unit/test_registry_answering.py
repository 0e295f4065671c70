"""The seeding waits for the registry itself: right after the registry's pod is Ready, Traefik may still
answer its public name with 404 (no route yet). A real HTTP server on loopback plays the proxy, answering
404 until it has "picked up the route"."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from homeci.errors import HomeciError
from homeci.flow.clients import Registry, basic
from homeci.flow.web import PublicNames


class Proxy(http.server.BaseHTTPRequestHandler):
    routed_after = 2  # requests answered 404 before the route exists
    seen: list[tuple[str, str]] = []  # noqa: RUF012  (shared with the test, reset per server)

    def do_GET(self) -> None:
        type(self).seen.append((self.headers.get("Host", ""), self.path))
        if len(self.seen) <= self.routed_after:
            status, body = 404, b"404 page not found\n"
        else:
            ok = self.headers.get("Authorization") == basic("u", "p")["Authorization"]
            status, body = (200, b"{}") if ok else (401, b"{}")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[int, type[Proxy]]]:
    handler = type("P", (Proxy,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def test_waits_through_the_proxys_404_until_the_registry_answers(proxy: tuple[int, type[Proxy]]) -> None:
    port, handler = proxy
    registry = Registry(PublicNames({"http": port}), "http://registry.homeci.test", "u", "p")
    registry.wait_answering(timeout=20)
    assert len(handler.seen) == handler.routed_after + 1, handler.seen
    assert handler.seen[-1] == ("registry.homeci.test", "/v2/")


def test_a_route_that_never_comes_fails_naming_the_registry_and_the_status(
        proxy: tuple[int, type[Proxy]]) -> None:
    port, handler = proxy
    handler.routed_after = 10**6
    registry = Registry(PublicNames({"http": port}), "http://registry.homeci.test", "u", "p")
    with pytest.raises(HomeciError, match=r"the registry at http://registry.homeci.test \(HTTP 404\)"):
        registry.wait_answering(timeout=1.5)
