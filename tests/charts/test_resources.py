"""Every container has CPU and memory requests and limits, and requests never exceed limits."""

from __future__ import annotations

from homeci_testing.footprint import parse_cpu, parse_memory

from .conftest import Rendered, containers


def test_requests_and_limits(rendered: Rendered) -> None:
    problems: list[str] = []
    for w, path, c in containers(rendered.manifests):
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if (res.get(kind) or {}).get(resource) in (None, ""):
                    problems.append(f"{w.ref} {path}.resources.{kind}.{resource} is missing")
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req.get("cpu") and lim.get("cpu") and parse_cpu(req["cpu"]) > parse_cpu(lim["cpu"]):
            problems.append(f"{w.ref} {path}.resources.requests.cpu {req['cpu']} > limits.cpu {lim['cpu']}")
        if (
            req.get("memory")
            and lim.get("memory")
            and parse_memory(req["memory"]) > parse_memory(lim["memory"])
        ):
            problems.append(
                f"{w.ref} {path}.resources.requests.memory {req['memory']} > limits.memory {lim['memory']}"
            )
    assert not problems, "\n".join(problems)


def test_emptydirs_are_bounded(rendered: Rendered) -> None:
    """Scratch emptyDirs have a sizeLimit so a runaway write cannot fill the node's disk.
    (The registry's data emptyDir without persistence is deliberately unbounded: it holds images.)"""
    problems: list[str] = []
    for w in rendered.manifests:
        spec = w.pod_spec()
        if not spec:
            continue
        for vol in spec.get("volumes") or []:
            if (
                vol.get("name") in ("tmp",)
                and "emptyDir" in vol
                and not (vol["emptyDir"] or {}).get("sizeLimit")
            ):
                problems.append(f"{w.ref} volumes[{vol['name']}].emptyDir.sizeLimit is missing")
    assert not problems, "\n".join(problems)
