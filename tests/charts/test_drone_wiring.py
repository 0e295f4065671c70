"""Cross-chart wiring between Gogs, Drone, the runner and the registry, for every scenario:
* Gogs' LOCAL_NETWORK_ALLOWLIST is exactly Drone's webhook host (DRONE_SERVER_PROXY_HOST), whose port is
  the Service port that reaches the Gogs bridge's webhook listener,
* DRONE_GOGS_SERVER is the Gogs bridge on 127.0.0.1 in the same pod, and the bridge forwards to the Gogs
  Service and port that are rendered,
* the webhook host and the runner's RPC host are the rendered Drone Service,
* Gogs and Drone take the admin username from the same Secret key,
* the registry host the steps are told to push to is the host the registry serves."""

from __future__ import annotations

import configparser
from typing import Any
from urllib.parse import urlsplit

from homeci import contract
from homeci import manifests as mf

from .conftest import NAMESPACE, RELEASE, dig, secret_source
from .test_gogs_appini import app_ini_text, parse_ini

DRONE = f"{RELEASE}-drone"
RUNNER = f"{RELEASE}-drone-runner"
BRIDGE = "gogs-bridge"


def env_of(objs: list[mf.Manifest], kind: str, name: str, container: str) -> dict[str, dict[str, Any]]:
    w = mf.get(objs, kind, name)
    for path, c in w.containers():
        if path.endswith(f"[{container}]"):
            return {e["name"]: e for e in c.get("env") or []}
    raise AssertionError(f"{kind}/{name} has no container {container}")


def service_for_host(objs: list[mf.Manifest], host: str) -> mf.Manifest:
    """The Service an in-cluster name `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc[.cluster.local]` resolves to."""
    parts = host.split(".")
    name = parts[0]
    ns = parts[1] if len(parts) > 1 else NAMESPACE
    assert len(parts) <= 2 or parts[2] == "svc", f"{host!r} is not an in-cluster Service name"
    assert ns == NAMESPACE, f"{host!r} points at namespace {ns}, the release is in {NAMESPACE}"
    return mf.get(objs, "Service", name)


def test_allowlist_is_exactly_drones_webhook_host(umbrella_manifests: list[mf.Manifest]) -> None:
    ini = parse_ini(app_ini_text(umbrella_manifests))
    allow = [h.strip() for h in ini.get("security", "LOCAL_NETWORK_ALLOWLIST").split(",") if h.strip()]
    env = env_of(umbrella_manifests, "Deployment", DRONE, "drone")
    proxy_host = env["DRONE_SERVER_PROXY_HOST"]["value"]
    proto = env["DRONE_SERVER_PROXY_PROTO"]["value"]
    target = urlsplit(f"{proto}://{proxy_host}/hook")
    # Gogs matches the host name only (url.Hostname(), no port).
    assert allow == [target.hostname], (
        f"Secret/{RELEASE}-gogs-config app.ini [security] LOCAL_NETWORK_ALLOWLIST = {allow}, "
        f"but Drone registers webhooks to {target.geturl()} (Deployment/{DRONE} env DRONE_SERVER_PROXY_HOST)"
    )
    assert "*" not in allow, "LOCAL_NETWORK_ALLOWLIST must not be * (every internal address)"
    assert proto == "http" and target.port, f"Deployment/{DRONE} webhook target {target.geturl()}: no port"
    svc = service_for_host(umbrella_manifests, target.hostname or "")
    assert svc.name == DRONE, f"webhook host {target.hostname} is {svc.ref}, not Service/{DRONE}"
    ports = {p["port"]: p for p in svc.obj["spec"]["ports"]}
    assert target.port in ports and ports[target.port].get("name") == "hooks", (
        f"webhook {target.geturl()} needs the port named hooks on {svc.ref}, it has {sorted(ports)}"
    )
    # ... which reaches the bridge's webhook listener, not Drone directly.
    dep = mf.get(umbrella_manifests, "Deployment", DRONE)
    bridge = dep.container(BRIDGE)
    declared = {p["name"]: p["containerPort"] for p in bridge.get("ports") or []}
    assert ports[target.port]["targetPort"] in declared, (
        f"{svc.ref} port hooks targets {ports[target.port]['targetPort']!r}, not a port of "
        f"{dep.ref} containers[{BRIDGE}] ({declared})"
    )
    listen = env_of(umbrella_manifests, "Deployment", DRONE, BRIDGE)["BRIDGE_HOOKS_LISTEN"]["value"]
    assert int(listen.rpartition(":")[2]) == declared[ports[target.port]["targetPort"]], (
        f"{dep.ref} containers[{BRIDGE}] listens for webhooks on {listen!r}, its hooks port is "
        f"{declared[ports[target.port]['targetPort']]}"
    )


def test_drone_reaches_gogs_through_the_bridge_in_its_pod(umbrella_manifests: list[mf.Manifest]) -> None:
    env = env_of(umbrella_manifests, "Deployment", DRONE, "drone")
    bridge = env_of(umbrella_manifests, "Deployment", DRONE, BRIDGE)
    drone_url = urlsplit(env["DRONE_GOGS_SERVER"]["value"])
    listen = bridge["BRIDGE_LISTEN"]["value"]
    assert (drone_url.scheme, drone_url.netloc, drone_url.path) == ("http", listen, ""), (
        f"Deployment/{DRONE} env DRONE_GOGS_SERVER {drone_url.geturl()!r} is not the Gogs bridge's "
        f"loopback listener BRIDGE_LISTEN={listen!r} (containers[{BRIDGE}])"
    )
    assert drone_url.hostname == "127.0.0.1", f"BRIDGE_LISTEN {listen!r} must be loopback (this pod only)"
    back = urlsplit(bridge["BRIDGE_DRONE_URL"]["value"])
    assert back.hostname == "127.0.0.1" and back.port == 8080 == int(env["DRONE_SERVER_PORT"]["value"][1:]), (
        f"containers[{BRIDGE}] BRIDGE_DRONE_URL {back.geturl()!r} is not Drone's port in the same pod"
    )


def test_bridge_forwards_to_the_rendered_gogs_service(umbrella_manifests: list[mf.Manifest]) -> None:
    env = env_of(umbrella_manifests, "Deployment", DRONE, BRIDGE)
    url = urlsplit(env["BRIDGE_GOGS_URL"]["value"])
    assert url.scheme == "http" and url.hostname, f"Deployment/{DRONE} env BRIDGE_GOGS_URL {url.geturl()!r}"
    svc = service_for_host(umbrella_manifests, url.hostname)
    port = url.port or 80
    svc_ports = {p["port"]: p for p in svc.obj["spec"]["ports"]}
    assert port in svc_ports, (
        f"BRIDGE_GOGS_URL port {port} is not a port of {svc.ref} ({sorted(svc_ports)})"
    )
    # ... and that Service port reaches Gogs' HTTP container port.
    gogs = mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-gogs")
    selector = svc.obj["spec"]["selector"]
    labels = dig(gogs.obj, "spec.template.metadata.labels")
    assert all(labels.get(k) == v for k, v in selector.items()), (
        f"{svc.ref} selector does not match {gogs.ref}"
    )
    target = svc_ports[port]["targetPort"]
    cports = {
        p["name"]: p["containerPort"] for _, c in gogs.containers(init=False) for p in c.get("ports") or []
    }
    assert cports.get(target) == 3000, f"{svc.ref} port {port} targets {target!r}, not Gogs' http port 3000"


def test_runner_rpc_host_is_the_server_service(umbrella_manifests: list[mf.Manifest]) -> None:
    env = env_of(umbrella_manifests, "Deployment", RUNNER, "runner")
    host = env["DRONE_RPC_HOST"]["value"]
    svc = service_for_host(umbrella_manifests, host)
    assert svc.name == DRONE, (
        f"Deployment/{RUNNER} env DRONE_RPC_HOST {host!r} is {svc.ref}, not Service/{DRONE}"
    )
    assert env["DRONE_RPC_PROTO"]["value"] == "http"
    server = env_of(umbrella_manifests, "Deployment", DRONE, "drone")
    assert env["DRONE_RPC_SECRET"]["valueFrom"] == server["DRONE_RPC_SECRET"]["valueFrom"], (
        "runner and server must read the RPC secret from the same Secret key"
    )


def test_same_admin_username(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    gogs = secret_source(mf.get(umbrella_manifests, "Deployment", f"{RELEASE}-gogs"), "gogs",
                         "GOGS_ADMIN_USERNAME")
    assert gogs, f"Deployment/{RELEASE}-gogs: GOGS_ADMIN_USERNAME comes from no Secret"
    drone = env_of(umbrella_manifests, "Deployment", DRONE, "drone")
    drone_ref = drone["HOMECI_ADMIN_USERNAME"]["valueFrom"]["secretKeyRef"]
    assert (drone_ref["name"], drone_ref["key"]) == gogs, (
        f"Drone admin username {drone_ref} and Gogs admin username {gogs} come from different Secret keys"
    )
    create = drone["DRONE_USER_CREATE"]["value"]
    fields = dict(part.split(":", 1) for part in create.split(","))
    assert fields == {
        "username": "$(HOMECI_ADMIN_USERNAME)",
        "admin": "true",
        "machine": "false",
        "token": "$(HOMECI_MACHINE_TOKEN)",
    }, f"Deployment/{DRONE} env DRONE_USER_CREATE = {create!r}"
    names = list(drone)
    for ref in ("HOMECI_ADMIN_USERNAME", "HOMECI_MACHINE_TOKEN"):
        assert names.index(ref) < names.index("DRONE_USER_CREATE"), (
            f"env {ref} must be declared before DRONE_USER_CREATE for $(…) expansion"
        )
    boot = mf.get(umbrella_manifests, "Job", f"{DRONE}-bootstrap")
    assert secret_source(boot, "bootstrap", "ADMIN_USERNAME") == gogs, f"{boot.ref} ADMIN_USERNAME"
    token = drone["HOMECI_MACHINE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert secret_source(boot, "bootstrap", "DRONE_TOKEN") == (token["name"], token["key"]), (
        f"{boot.ref} DRONE_TOKEN and Drone's HOMECI_MACHINE_TOKEN come from different Secret keys"
    )


def test_public_hosts(umbrella_manifests: list[mf.Manifest], values: dict[str, Any]) -> None:
    ci = contract.host("ci", values)
    env = env_of(umbrella_manifests, "Deployment", DRONE, "drone")
    assert env["DRONE_SERVER_HOST"]["value"] == ci and env["DRONE_SERVER_PROTO"]["value"] == "https"
    ing = mf.get(umbrella_manifests, "Ingress", DRONE)
    assert [r["host"] for r in ing.obj["spec"]["rules"]] == [ci], f"{ing.ref} spec.rules[].host"
    assert ing.obj["spec"]["tls"][0]["secretName"] == f"{RELEASE}-tls"


def _step_env(objs: list[mf.Manifest]) -> dict[str, str]:
    cm = mf.get(objs, "ConfigMap", f"{RUNNER}-env")
    out: dict[str, str] = {}
    for line in cm.obj["data"]["steps.env"].splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_steps_push_to_the_registry_the_registry_serves(umbrella_manifests: list[mf.Manifest]) -> None:
    step = _step_env(umbrella_manifests)
    registry_svc = f"{RELEASE}-registry"
    served = {
        r["host"]
        for ing in mf.by_kind(umbrella_manifests, "Ingress")
        for r in ing.obj["spec"].get("rules") or []
        for p in dig(r, "http.paths", [])
        if dig(p, "backend.service.name") == registry_svc
    }
    assert served, f"no Ingress routes to Service/{registry_svc}"
    assert step["HOMECI_REGISTRY"] in served, (
        f"ConfigMap/{RUNNER}-env HOMECI_REGISTRY={step['HOMECI_REGISTRY']} "
        f"but the registry serves {sorted(served)}"
    )


def test_steps_clone_from_the_host_gogs_advertises(umbrella_manifests: list[mf.Manifest]) -> None:
    ini: configparser.RawConfigParser = parse_ini(app_ini_text(umbrella_manifests))
    external = urlsplit(ini.get("server", "EXTERNAL_URL"))
    step = _step_env(umbrella_manifests)
    assert step["HOMECI_GIT_HOST"] == external.hostname
    if "HOMECI_CA_FILE" in step:
        # One-file settings use the bundle (public roots + homeci CA) so public hosts keep working;
        # GIT_SSL_CAINFO works with the old git of the pinned clone image (no GIT_CONFIG_COUNT there).
        assert step["HOMECI_CA_FILE"] == "/etc/homeci/ca.crt"
        for key in ("GIT_SSL_CAINFO", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            assert step[key] == step["HOMECI_CA_BUNDLE"] == "/etc/homeci/bundle.crt", f"steps.env {key}"
        assert not any(k.startswith("GIT_CONFIG_") for k in step), (
            "GIT_CONFIG_* would override GIT_SSL_CAINFO"
        )
        # Go programs keep the system directories and kaniko's own, plus the homeci CA directory.
        dirs = step["SSL_CERT_DIR"].split(":")
        assert {"/etc/ssl/certs", "/kaniko/ssl/certs", "/etc/homeci"} <= set(dirs), step["SSL_CERT_DIR"]


def _allows(rule: dict[str, Any], peer_labels: dict[str, str], port: int) -> bool:
    ports = {p.get("port") for p in rule.get("ports") or []}
    if ports and port not in ports:
        return False
    peers = rule.get("to") or rule.get("from")
    if not peers:
        return True
    for peer in peers:
        sel = peer.get("podSelector") or {}
        if not all(peer_labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items()):
            continue
        if all(
            (peer_labels.get(e["key"]) in e["values"]) == (e["operator"] == "In")
            for e in sel.get("matchExpressions") or []
        ):
            return True
    return False


def test_network_policies_keep_the_wiring_open(
    umbrella_manifests: list[mf.Manifest], values: dict[str, Any]
) -> None:
    if not dig(values, "global.networkPolicy.enabled", False):
        return
    labels = {
        name: dig(mf.get(umbrella_manifests, kind, name).obj, "spec.template.metadata.labels")
        for kind, name in (
            ("Deployment", f"{RELEASE}-gogs"),
            ("Deployment", DRONE),
            ("Deployment", RUNNER),
            ("Job", f"{DRONE}-bootstrap"),
        )
    }
    gogs_np = mf.get(umbrella_manifests, "NetworkPolicy", f"{RELEASE}-gogs").obj["spec"]
    drone_np = mf.get(umbrella_manifests, "NetworkPolicy", DRONE).obj["spec"]
    runner_np = mf.get(umbrella_manifests, "NetworkPolicy", RUNNER).obj["spec"]
    boot_np = mf.get(umbrella_manifests, "NetworkPolicy", f"{DRONE}-bootstrap").obj["spec"]
    hooks = next(p["containerPort"] for p in mf.get(umbrella_manifests, "Deployment", DRONE)
                 .container(BRIDGE)["ports"] if p["name"] == "hooks")
    flows = {
        "Gogs -> Drone webhook (egress)": any(_allows(r, labels[DRONE], hooks) for r in gogs_np["egress"]),
        "Gogs -> Drone webhook (ingress)": any(
            _allows(r, labels[f"{RELEASE}-gogs"], hooks) for r in drone_np["ingress"]
        ),
        "Drone -> Gogs API (egress)": any(
            _allows(r, labels[f"{RELEASE}-gogs"], 3000) for r in drone_np["egress"]
        ),
        "Drone -> Gogs API (ingress)": any(_allows(r, labels[DRONE], 3000) for r in gogs_np["ingress"]),
        "runner -> Drone RPC (egress)": any(_allows(r, labels[DRONE], 8080) for r in runner_np["egress"]),
        "runner -> Drone RPC (ingress)": any(_allows(r, labels[RUNNER], 8080) for r in drone_np["ingress"]),
        "bootstrap -> Drone (egress)": any(_allows(r, labels[DRONE], 8080) for r in boot_np["egress"]),
        "bootstrap -> Gogs (egress)": any(
            _allows(r, labels[f"{RELEASE}-gogs"], 3000) for r in boot_np["egress"]
        ),
    }
    blocked = [flow for flow, ok in flows.items() if not ok]
    assert not blocked, f"NetworkPolicies block: {blocked}"
