"""The forwarder: 127.0.0.1 ports on the host relaying TCP into the cluster's network namespace.

Run as ``python forward.py <forward.json>`` (stdlib only). It binds every listener on the host's
127.0.0.1 first, then moves itself into the cluster's network namespace (``setns``) — sockets keep
the namespace they were created in, so accepted connections stay on the host's loopback while the
outgoing ones are made inside the namespace. One process, no Unix sockets, nothing listens anywhere
but 127.0.0.1.

forward.json: ``{"netns": "/proc/<holder>/ns/net", "status_file": …, "targets_file": …,
"listeners": [{"name": "api", "port": 16443}, …]}``. The targets file (re-read on every
connection, so ``publish`` can point ``https`` at Traefik later) maps a listener name to
``"<ip>:<port>"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


def _target(targets_file: Path, name: str) -> tuple[str, int] | None:
    try:
        value = json.loads(targets_file.read_text()).get(name)
    except (OSError, ValueError):
        return None
    if not value:
        return None
    host, _, port = str(value).rpartition(":")
    return host, int(port)


async def _serve(plan: dict[str, Any], sockets: dict[str, socket.socket]) -> None:
    targets_file = Path(plan["targets_file"])

    def handler(name: str) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            target = _target(targets_file, name)
            if target is None:
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 10)
            except (OSError, TimeoutError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            for w in (writer, up_writer):
                w.close()
        return handle

    servers = [await asyncio.start_server(handler(name), sock=sock) for name, sock in sockets.items()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    Path(plan["status_file"]).write_text("ready\n")
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    sockets: dict[str, socket.socket] = {}
    try:
        for lst in plan["listeners"]:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(lst["port"])))
            s.listen(128)
            s.setblocking(False)
            sockets[lst["name"]] = s
        _setns(plan["netns"])
    except OSError as exc:
        Path(plan["status_file"]).write_text(f"error: {exc}\n")
        return 1
    asyncio.run(_serve(plan, sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
