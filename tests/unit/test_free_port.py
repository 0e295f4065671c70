"""free_port: a port whose listener just stopped is free again; a port someone listens on is not."""
from __future__ import annotations

import socket

from homeci.cluster.provider import free_port


def _listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_a_port_in_time_wait_is_free() -> None:
    """The server side closes first (as a stopped forwarder does): its end lingers in TIME_WAIT."""
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()
    server.close()
    client.recv(1)
    client.close()
    assert free_port(port) == port, f"127.0.0.1:{port} has only a TIME_WAIT connection left, yet looked taken"


def test_a_listening_port_is_taken() -> None:
    server = _listener()
    port = server.getsockname()[1]
    try:
        assert free_port(port) != port, f"127.0.0.1:{port} has a listener, yet free_port chose it"
    finally:
        server.close()
