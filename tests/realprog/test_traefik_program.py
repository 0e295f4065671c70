"""Traefik 3.7.15 (the real binary) with the static args and dynamic TLS file the chart renders; a renewed
serving certificate, delivered the way the kubelet updates a projected volume, is served without a restart."""

from __future__ import annotations

import base64
import hashlib
import http.server
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from homeci import manifests
from homeci.manifests import Manifest
from homeci_testing import certs, realprog
from homeci_testing.loopback import serve
from homeci_testing.realprog import LOOPBACK, KubeletVolume, PublicNames
from homeci_testing.realprog_harness import LoopbackTraefik, render
from homeci_testing.support import RELEASE, load_script


def _rendered_arg(objects: list[Manifest], prefix: str) -> str:
    dep = manifests.get(objects, "Deployment", f"{RELEASE}-traefik")
    for _, c in dep.containers():
        for arg in c.get("args") or []:
            if str(arg).startswith(prefix):
                return str(arg)[len(prefix):]
    raise AssertionError(f"{dep.ref} containers[traefik].args has no {prefix}...")


def _go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration ("1800s", "30m0s", "1h0m0s") or a bare number of seconds."""
    if text.replace(".", "", 1).isdigit():
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        total += float(num) * units[unit]
        num, i = "", i + len(unit)
    return total


@pytest.fixture(scope="module")
def echo_backend() -> Iterator[int]:
    """A loopback HTTP server that answers every request with 200 after reading the whole body."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = f"got {len(body)} bytes for {self.headers.get('Host')}{self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as port:
        yield port


@pytest.fixture(scope="module")
def routed(traefik: LoopbackTraefik, echo_backend: int) -> LoopbackTraefik:
    # The Gogs Ingress (git.<domain>) stands for every Ingress here; its backend is the echo server.
    traefik.route(f"{RELEASE}-gogs", echo_backend)
    return traefik


def test_ping_answers(traefik: LoopbackTraefik) -> None:
    ok = realprog.http_check(f"{traefik.api}/ping")()
    assert ok, (
        f"Traefik /ping on the `traefik` entrypoint did not answer 200 (log {traefik.program.log_path})"
    )


def test_http_redirects_permanently_to_public_https(public: PublicNames, hosts: dict[str, str]) -> None:
    for host in hosts.values():
        resp = public.request("GET", f"http://{host}/some/path?x=1")
        assert resp.status == 301, f"http://{host}/ on the web entrypoint answered {resp.status}, want 301"
        # The redirect must name the public HTTPS port (Service port 443), never the container port.
        assert resp.headers.get("location") == f"https://{host}/some/path?x=1", (
            f"http://{host}/ redirects to {resp.headers.get('location')!r}, expected https://{host}/some/path?x=1"
        )


def test_default_certificate_is_the_rendered_serving_cert(public: PublicNames, hosts: dict[str, str],
                                                          rendered: list[Manifest]) -> None:
    """Verified against the rendered CA only, with SNI = each public host (and a pipeline app host)."""
    domain = hosts["git"].split(".", 1)[1]
    tls = manifests.get(rendered, "Secret", f"{RELEASE}-tls")
    served = None
    for host in [*hosts.values(), f"my-app.{domain}"]:
        try:
            cert = public.tls_peer(host)
        except ssl.SSLCertVerificationError as exc:
            pytest.fail(f"Traefik's certificate for SNI {host} fails against ConfigMap/{RELEASE}-ca: {exc}")
        sans = {v for k, v in cert.get("subjectAltName", ()) if k == "DNS"}
        assert host in sans or f"*.{domain}" in sans, f"served certificate SANs {sorted(sans)} lack {host}"
        served = cert
    # And it is the one from Secret/<release>-tls, not one Traefik generated.
    import base64

    from cryptography import x509

    rendered_cert = x509.load_pem_x509_certificate(base64.b64decode(tls.obj["data"]["tls.crt"]))
    with socket.create_connection((LOOPBACK, public.ports["https"]), timeout=10) as raw:
        ctx = ssl.create_default_context(cafile=str(public.ca_file))
        with ctx.wrap_socket(raw, server_hostname=hosts["registry"]) as conn:
            der = conn.getpeercert(binary_form=True)
    assert der is not None and served is not None
    assert x509.load_der_x509_certificate(der).serial_number == rendered_cert.serial_number, (
        f"Traefik serves a certificate that is not Secret/{RELEASE}-tls tls.crt"
    )


def test_ingress_route_reaches_backend_over_tls(routed: LoopbackTraefik, public: PublicNames,
                                                hosts: dict[str, str]) -> None:
    resp = public.request("PUT", f"https://{hosts['git']}/echo", body=b"x" * 1000)
    assert resp.status == 200 and resp.body == f"got 1000 bytes for {hosts['git']}/echo".encode(), (
        f"https://{hosts['git']}/echo through Traefik answered {resp.status} {resp.body[:200]!r}"
    )


def test_websecure_runs_with_the_rendered_read_timeout(traefik: LoopbackTraefik,
                                                       rendered: list[Manifest]) -> None:
    """Traefik's own view of its websecure entrypoint (API rawdata) carries the rendered readTimeout."""
    import json
    import urllib.request

    want = _rendered_arg(rendered, "--entryPoints.websecure.transport.respondingTimeouts.readTimeout=")
    with urllib.request.urlopen(f"{traefik.api}/api/entrypoints/websecure", timeout=5) as resp:
        ep = json.load(resp)
    got = ep["transport"]["respondingTimeouts"].get("readTimeout", "0s")
    assert _go_duration_seconds(str(got)) == _go_duration_seconds(want), (
        f"Traefik runs websecure with readTimeout {got}, the chart renders {want}"
    )
    assert _go_duration_seconds(want) == 0 or _go_duration_seconds(want) > 60, (
        f"Deployment/{RELEASE}-traefik readTimeout {want} would cut image layer uploads "
        "(Traefik's default is 60s)"
    )


def _slow_put(names: PublicNames, host: str, seconds: float) -> str:
    """PUT a 4 KiB body spread over ``seconds``; 'ok' if the backend's answer arrives, else what happened."""
    ctx = names.context
    assert ctx is not None
    body = b"y" * 4096
    chunks = 8
    with socket.create_connection((LOOPBACK, names.ports["https"]), timeout=seconds + 20) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as conn:
        head = (f"PUT /slow HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n")
        try:
            conn.sendall(head.encode())
            for i in range(chunks):
                time.sleep(seconds / chunks)
                conn.sendall(body[i * len(body) // chunks:(i + 1) * len(body) // chunks])
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        except OSError as exc:
            return f"connection error {exc!r}"
    first = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    return "ok" if first.startswith("HTTP/1.1 200") and reply.endswith(b"got 4096 bytes for " +
                                                                         host.encode() + b"/slow") else first


def test_read_timeout_value_is_enforced_on_websecure(tmp_path: Path, ca_file: Path, echo_backend: int,
                                                    routed: LoopbackTraefik, hosts: dict[str, str],
                                                    scenario: str) -> None:
    """The readTimeout key really drives Traefik: with the value rendered down to 2s (a --set override)
    a 4-second upload is cut, while the default render lets the same upload finish."""
    host = hosts["git"]
    assert _slow_put(routed.names(ca_file), host, 4) == "ok", (
        "a 4 s upload through the default-rendered Traefik did not complete"
    )
    short = render(scenario, "traefik.entryPoints.readTimeout=2s")
    # The CA of that render's certificate pass (the same program and settings: the same cached CA).
    short_ca = tmp_path / "ca.crt"
    short_ca.write_text(manifests.get(short, "ConfigMap", f"{RELEASE}-ca").obj["data"]["ca.crt"])
    with LoopbackTraefik(short, tmp_path / "traefik") as proxy:
        proxy.route(f"{RELEASE}-gogs", echo_backend)
        outcome = _slow_put(proxy.names(short_ca), host, 4)
    assert outcome != "ok", "with readTimeout=2s rendered, a 4 s upload still completed: value not applied"


def _served_der(port: int, host: str, ca_file: Path) -> bytes:
    """The certificate Traefik presents for SNI ``host``, verified against ``ca_file`` only."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return der


def _program(objects: list[Manifest], tmp: Path) -> tuple[ModuleType, dict[str, str]]:
    """The certificate program the render ships, imported, and the hook Job's environment."""
    script, env = certs.program(objects, certs.hook_job(objects))
    path = tmp / "certs_program.py"
    path.write_text(script)
    return load_script(path, "homeci_certs_renewal"), env


def _renew(objects: list[Manifest], tmp: Path) -> dict[str, bytes]:
    """A renewal pass of the program over the objects the hook wrote: the serving certificate is inside
    the window (renewBeforeDays raised above what is left), so the pass reissues it with the same CA."""
    module, env = _program(objects, tmp)
    written = [m.obj for m in objects if m.source == "certs.py --print"]
    store: Any = module.MemoryStore(written)
    config = module.Config.from_env({**env, "RENEW_BEFORE_DAYS": "397", "SERVING_VALIDITY_DAYS": "800"})
    problems = module.reconcile(config, store)
    assert problems == [], f"the renewal pass failed: {problems}"
    secret = store.get("Secret", config.namespace, config.tls_secret)
    return {key: base64.b64decode(secret["data"][key]) for key in ("tls.crt", "tls.key")}


def test_a_renewed_certificate_is_served_without_restart(rendered: list[Manifest], hosts: dict[str, str],
                                                        ca_file: Path, tmp_path: Path) -> None:
    """Certificate A served; Secret <release>-tls renewed (B, same CA) and the projected volume updated as the
    kubelet does it (new directory, atomic `..data` rename); Traefik serves B within seconds, same process."""
    tls = manifests.get(rendered, "Secret", f"{RELEASE}-tls")
    first = base64.b64decode(tls.obj["data"]["tls.crt"])
    renewed = _renew(rendered, tmp_path)
    assert renewed["tls.crt"] != first, "the renewal pass did not issue a new certificate"
    host = hosts["git"]
    with LoopbackTraefik(rendered, tmp_path / "traefik") as proxy:
        volume = KubeletVolume(proxy.dynamic)
        assert set(volume.files()) >= {"tls.crt", "tls.key"}, (
            f"Deployment/{RELEASE}-traefik: the certificate is not in the watched directory {proxy.dynamic}")
        pid = proxy.program.proc.pid if proxy.program.proc else None
        port = proxy.ports["websecure"]
        served = _served_der(port, host, ca_file)
        assert served == ssl.PEM_cert_to_DER_cert(first.decode()), "Traefik does not serve certificate A"
        volume.update(renewed)
        want = ssl.PEM_cert_to_DER_cert(renewed["tls.crt"].decode())
        deadline, took = time.monotonic() + 20, None
        start = time.monotonic()
        while time.monotonic() < deadline:
            if _served_der(port, host, ca_file) == want:
                took = time.monotonic() - start
                break
            time.sleep(0.25)
        assert took is not None, (
            f"Traefik still serves sha256 {hashlib.sha256(served).hexdigest()[:16]} 20 s after the volume "
            f"update (log {proxy.program.log_path}: {proxy.program.log_tail()})")
        assert proxy.program.running and proxy.program.proc is not None and proxy.program.proc.pid == pid, (
            "Traefik restarted to pick up the certificate")
        errors = [ln for ln in proxy.program.log_path.read_text().splitlines() if '"level":"error"' in ln
                  or " ERR " in ln]
        assert not errors, f"Traefik logged errors on the update: {errors[:3]}"
    print(f"renewed certificate served {took:.1f} s after the kubelet-style swap, pid {pid} unchanged")
