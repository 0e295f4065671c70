"""The default install's resource footprint: requests and limits of every steady-state container.

Counted: Deployments and StatefulSets (times replicas) and DaemonSets (one pod per node; the figure is
per node). Not counted: Jobs, CronJobs and Helm hooks (they run briefly). A pod's effective request is
Kubernetes' own rule: max(sum of its containers, largest init container).

``benchmarks/footprint.py`` writes the table between ``<!-- footprint:start -->`` and
``<!-- footprint:end -->`` in README.md; ``tests/charts/test_footprint.py`` fails when it is stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from homeci import manifests as mf
from homeci.errors import HomeciError

START = "<!-- footprint:start -->"
END = "<!-- footprint:end -->"
# Budget for the whole default suite (requests), from the project's design.
BUDGET_CPU_MILLI = 400
BUDGET_MEMORY_MI = 640
STEADY_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
_MEM_FACTOR = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(1000),
    "K": Decimal(1000),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_cpu(value: str | int | float) -> Decimal:
    """A CPU quantity in millicores (``"50m"`` -> 50, ``0.5`` -> 500)."""
    m = _CPU.match(str(value).strip())
    if not m:
        raise HomeciError(f"cpu quantity {value!r} is not valid: use e.g. 50m or 0.5")
    number = Decimal(m.group(1))
    return number if m.group(2) else number * 1000


def parse_memory(value: str | int) -> Decimal:
    """A memory quantity in bytes (``"64Mi"`` -> 67108864)."""
    m = _MEM.match(str(value).strip())
    if not m:
        raise HomeciError(f"memory quantity {value!r} is not valid: use e.g. 64Mi")
    return Decimal(m.group(1)) * _MEM_FACTOR[m.group(2)]


@dataclass
class Usage:
    cpu: Decimal = Decimal(0)  # millicores
    memory: Decimal = Decimal(0)  # bytes

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory + other.memory)

    def scaled(self, factor: int) -> Usage:
        return Usage(self.cpu * factor, self.memory * factor)

    def at_least(self, other: Usage) -> Usage:
        return Usage(max(self.cpu, other.cpu), max(self.memory, other.memory))

    @property
    def memory_mi(self) -> Decimal:
        return self.memory / (2**20)


@dataclass
class Row:
    workload: str  # Kind/name
    component: str  # app.kubernetes.io/component
    replicas: int
    per_node: bool
    requests: Usage
    limits: Usage


@dataclass
class Footprint:
    rows: list[Row] = field(default_factory=list)

    @property
    def requests(self) -> Usage:
        total = Usage()
        for r in self.rows:
            total = total + r.requests
        return total

    @property
    def limits(self) -> Usage:
        total = Usage()
        for r in self.rows:
            total = total + r.limits
        return total

    def within_budget(self) -> bool:
        return self.requests.cpu <= BUDGET_CPU_MILLI and self.requests.memory_mi <= BUDGET_MEMORY_MI


def _container_usage(c: dict[str, Any], kind: str) -> Usage:
    res = (c.get("resources") or {}).get(kind) or {}
    cpu = parse_cpu(res["cpu"]) if res.get("cpu") not in (None, "") else Decimal(0)
    memory = parse_memory(res["memory"]) if res.get("memory") not in (None, "") else Decimal(0)
    return Usage(cpu, memory)


def pod_usage(spec: dict[str, Any], kind: str) -> Usage:
    """Effective pod requests/limits: max(sum of containers, largest init container)."""
    total = Usage()
    for c in spec.get("containers") or []:
        total = total + _container_usage(c, kind)
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":  # native sidecar: runs alongside
            total = total + _container_usage(c, kind)
        else:
            total = total.at_least(_container_usage(c, kind))
    return total


def compute(objs: list[mf.Manifest]) -> Footprint:
    fp = Footprint()
    for m in objs:
        if m.kind not in STEADY_KINDS or "helm.sh/hook" in m.annotations:
            continue
        spec = m.pod_spec()
        if spec is None:
            continue
        replicas = 1 if m.kind == "DaemonSet" else int(m.obj.get("spec", {}).get("replicas", 1))
        component = m.labels.get("app.kubernetes.io/component", m.name)
        fp.rows.append(
            Row(
                m.ref,
                component,
                replicas,
                m.kind == "DaemonSet",
                pod_usage(spec, "requests").scaled(replicas),
                pod_usage(spec, "limits").scaled(replicas),
            )
        )
    fp.rows.sort(key=lambda r: r.workload)
    return fp


def _cpu(value: Decimal) -> str:
    return f"{value.normalize():f}m"


def _mi(value: Usage) -> str:
    return f"{value.memory_mi.quantize(Decimal('0.1')).normalize():f} MiB"


def markdown(fp: Footprint) -> str:
    """The README block (deterministic: same render, same text)."""
    lines = [
        "Computed from the default install (`helm template` with no values) by `benchmarks/footprint.py`;",
        "`tests/charts/test_footprint.py` fails when this table is stale. Jobs, CronJobs and hooks are not",
        "counted (they run briefly); a DaemonSet counts once (its figure is per node).",
        "",
        "| workload | component | requests CPU | requests memory | limits CPU | limits memory |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in fp.rows:
        suffix = " (per node)" if r.per_node else (f" (x{r.replicas})" if r.replicas != 1 else "")
        lines.append(
            f"| `{r.workload}`{suffix} | {r.component} | {_cpu(r.requests.cpu)} | {_mi(r.requests)} "
            f"| {_cpu(r.limits.cpu)} | {_mi(r.limits)} |"
        )
    req, lim = fp.requests, fp.limits
    lines.append(
        f"| **total** | | **{_cpu(req.cpu)}** | **{_mi(req)}** | **{_cpu(lim.cpu)}** | **{_mi(lim)}** |"
    )
    lines += [
        "",
        f"Budget for the default install: requests <= {BUDGET_CPU_MILLI}m CPU and {BUDGET_MEMORY_MI} MiB "
        f"({'within budget' if fp.within_budget() else 'OVER BUDGET'}). Where each limit comes from is "
        "commented next to it in the subchart's values.yaml.",
    ]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """``text`` with the footprint block replaced (markers kept)."""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise HomeciError(
            f"README.md has no {START} ... {END} block: add the two markers where the table goes"
        )
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def current_block(text: str) -> str:
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def update_readme(readme: Path, block: str) -> bool:
    """Write ``block`` into ``readme``; True when the file changed."""
    old = readme.read_text()
    new = replace_block(old, block)
    if new != old:
        readme.write_text(new)
    return new != old
