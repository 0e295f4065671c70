"""Small HTTP servers on 127.0.0.1 for tests: fake APIs (Drone, Gogs, Kubernetes) and receivers.

``serve(Handler)`` runs the handler class on a free loopback port in a thread and always stops it,
so each test module only writes the handler."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1:<free port> (HTTPS with ``tls``, a server-side context); yields the
    port; shuts the server down on exit."""
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# (method, path, request headers, decoded JSON body or None) -> (status, JSON payload)
JsonApi = Callable[[str, str, Any, Any], tuple[int, Any]]


def json_handler(handle: JsonApi, methods: tuple[str, ...] = ("GET", "POST", "PATCH", "PUT")
                 ) -> type[BaseHTTPRequestHandler]:
    """A handler class for ``serve`` answering every request of ``methods`` with ``handle``'s JSON."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = handle(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._serve)
    return Handler
