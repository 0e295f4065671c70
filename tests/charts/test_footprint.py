"""The default footprint is within budget, each component requests its contracted share, and the README
figure is current (`python benchmarks/footprint.py` rewrites it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from homeci import manifests as mf
from homeci.errors import HomeciError
from homeci_testing import footprint

from .conftest import RELEASE, ROOT

# Contracted requests per component (cross-chart contract): workload -> (millicores, MiB).
CONTRACT = {
    f"Deployment/{RELEASE}-traefik": (50, 64),
    f"Deployment/{RELEASE}-registry": (25, 48),
    f"Deployment/{RELEASE}-gogs": (75, 128),
    f"Deployment/{RELEASE}-drone": (60, 128),  # the server 50m/96Mi + the Gogs bridge 10m/32Mi
    f"Deployment/{RELEASE}-drone-runner": (25, 48),
}


def test_readme_block_is_current(default_manifests: list[mf.Manifest]) -> None:
    want = footprint.markdown(footprint.compute(default_manifests))
    have = footprint.current_block((ROOT / "README.md").read_text())
    assert have == want, "README.md footprint block is stale: run `python benchmarks/footprint.py`"


def test_default_footprint_within_budget(default_manifests: list[mf.Manifest]) -> None:
    fp = footprint.compute(default_manifests)
    req = fp.requests
    assert req.cpu <= footprint.BUDGET_CPU_MILLI, (
        f"default requests {req.cpu}m CPU exceed the {footprint.BUDGET_CPU_MILLI}m budget"
    )
    assert req.memory_mi <= footprint.BUDGET_MEMORY_MI, (
        f"default requests {req.memory_mi} MiB exceed the {footprint.BUDGET_MEMORY_MI} MiB budget"
    )


@pytest.mark.parametrize("workload", sorted(CONTRACT))
def test_component_requests_match_contract(default_manifests: list[mf.Manifest], workload: str) -> None:
    rows = {r.workload: r for r in footprint.compute(default_manifests).rows}
    assert workload in rows, f"{workload} is missing from the default install (rendered: {sorted(rows)})"
    cpu, mem = CONTRACT[workload]
    row = rows[workload]
    assert row.requests.cpu == cpu, f"{workload} requests {row.requests.cpu}m CPU, contract {cpu}m"
    assert row.requests.memory_mi == mem, (
        f"{workload} requests {row.requests.memory_mi} MiB, contract {mem} MiB"
    )


@pytest.mark.parametrize(("text", "millicores"), [("50m", 50), ("0.5", 500), ("1", 1000), (2, 2000)])
def test_parse_cpu(text: str | int, millicores: int) -> None:
    assert footprint.parse_cpu(text) == millicores


@pytest.mark.parametrize(
    ("text", "mib"), [("64Mi", 64), ("1Gi", 1024), ("1048576", 1), ("512Ki", Decimal("0.5"))]
)
def test_parse_memory(text: str, mib: int) -> None:
    assert footprint.parse_memory(text) / 2**20 == mib


def test_init_containers_count_as_maximum() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "100m", "memory": "5Mi"}}}],
    }
    usage = footprint.pod_usage(spec, "requests")
    assert (usage.cpu, usage.memory_mi) == (100, 10)


def test_replace_block_keeps_the_rest() -> None:
    text = f"# README\nbefore\n{footprint.START}\nold table\n{footprint.END}\nafter\n"
    new = footprint.replace_block(text, "new table")
    assert new == f"# README\nbefore\n{footprint.START}\nnew table\n{footprint.END}\nafter\n"
    assert footprint.current_block(new) == "new table"
    with pytest.raises(HomeciError, match="footprint:start"):
        footprint.replace_block("# README without markers\n", "x")
