"""sample-app: a tiny HTTP server that answers with its version (Python stdlib only).

GET /         -> "sample-app <version>\n"
GET /version  -> {"app": "sample-app", "version": "<version>"}
GET /healthz  -> "ok\n"

The version is the VERSION file next to this script, or $APP_VERSION when set. Listens on
$HOST:$PORT (default 0.0.0.0:8080 in the container; tests use 127.0.0.1 and port 0).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

APP = "sample-app"


def read_version() -> str:
    env = os.environ.get("APP_VERSION", "").strip()
    if env:
        return env
    try:
        return (Path(__file__).with_name("VERSION")).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


class Handler(BaseHTTPRequestHandler):
    server_version = APP
    version = "unknown"

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "text/plain; charset=utf-8", f"{APP} {self.version}\n")
        elif self.path == "/version":
            self._send(200, "application/json", json.dumps({"app": APP, "version": self.version}) + "\n")
        elif self.path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", "ok\n")
        else:
            self._send(404, "text/plain; charset=utf-8", "not found\n")

    def _send(self, status: int, ctype: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(host: str = "127.0.0.1", port: int = 0, version: str | None = None) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"version": version or read_version()})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    server = make_server(os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))
    # Kubernetes stops pods with SIGTERM: leave serve_forever cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    print(f"{APP} {read_version()} listening on {host!s}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
