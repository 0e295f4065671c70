"""The real node's PKI (provider netns) passes the strictest client checks its pods use (Python 3.13's
default), with its CA made by the project's one CA builder (homeci.ca.new_ca)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509

from homeci.cluster.netns import pki


def _serve_once(ctx: ssl.SSLContext, sock: socket.socket) -> None:
    conn, _ = sock.accept()
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")
    except (ssl.SSLError, OSError):
        pass


def test_server_certificate_verifies_with_x509_strict(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "homeci-test-ca")
    leaf = pki.ensure_leaf(ca, tmp_path, "apiserver", cn="kube-apiserver",
                           server_names=("127.0.0.1", "kubernetes.default.svc"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(leaf.cert, leaf.key)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        worker = threading.Thread(target=_serve_once, args=(server, sock), daemon=True)
        worker.start()
        client = ssl.create_default_context(cafile=str(ca.cert))
        # Python 3.13 turns this on by default: it needs the Authority Key Identifier on the leaf.
        client.verify_flags |= ssl.VERIFY_X509_STRICT
        with socket.create_connection(sock.getsockname()) as raw, \
                client.wrap_socket(raw, server_hostname="kubernetes.default.svc") as tls:
            assert tls.recv(2) == b"ok", f"{leaf.cert}: TLS to the test server did not complete"
        worker.join(5)


def test_the_cluster_ca_is_the_projects_ca(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path, "homeci netns cluster unit")
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0, f"{ca.cert}: basicConstraints {constraints}"
    assert pki.ensure_ca(tmp_path, "another name") == ca, "ensure_ca must keep an existing CA"
