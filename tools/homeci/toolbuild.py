"""Building several pinned tools at once: build units, parallel runs, estimates from earlier builds.

A *unit* is what one go command builds: the tools of one wrapper module with the same flags (the
Kubernetes binaries: one ``go build -o dir/ cmd/a cmd/b ...`` compiles their shared packages once and
links them in parallel), or the packages of one module version with the same flags (``go install
a@v b@v``: containerd, its shim and ctr; the CNI plugins; kwok and kwokctl). Units run a few at a
time (each go command already compiles on every core; running two overlaps one's single-threaded link
and downloads with the other's compiling), longest first. Each unit's estimate is the last recorded
build time of its tools in the cache (``build.json``, any version), so the first line can say how long
the whole install should take, and each finished item how much is left.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from homeci import toolchain
from homeci.paths import toolchain_dir
from homeci.toolchain import Tool

Say = Callable[[str], None]
# A unit without any recorded build is scheduled as if each of its tools took this long.
UNKNOWN_SECONDS = 120.0


def default_jobs() -> int:
    """Units built at the same time: two on a small machine, half the cores on a bigger one."""
    return max(2, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class Unit:
    tools: tuple[Tool, ...]
    estimate: float | None   # seconds, from earlier builds of these tools; None: never built here

    @property
    def label(self) -> str:
        names = ", ".join(t.name for t in self.tools)
        return f"{names} {self.tools[0].version}"

    @property
    def weight(self) -> float:
        """The estimate; never built here: a guess that grows with the unit (the seven Kubernetes binaries
        are the longest build of a cold install, so they start first)."""
        return self.estimate if self.estimate is not None else UNKNOWN_SECONDS * len(self.tools)


def _module_guess(package: str) -> str:
    """The module a package path most likely belongs to (host/owner/repo, plus a /vN suffix)."""
    parts = package.split("/")
    keep = 3 if parts[0] in ("github.com", "gitlab.com", "go.etcd.io") else 2
    if len(parts) > keep and parts[keep][:1] == "v" and parts[keep][1:].isdigit():
        keep += 1
    return "/".join(parts[:keep])


def _group_key(t: Tool) -> tuple[str, ...] | None:
    """Tools with the same key build with one go command; None: built alone."""
    flags = (t.ldflags.format(**t.stamp()), t.tags, "cgo" if t.cgo else "")
    if t.build == "go-wrapper" and Path(t.package).name == t.binary:
        return ("go-wrapper", t.module, *flags)
    if t.build == "go-install" and Path(t.package).name == t.binary:
        return ("go-install", _module_guess(t.package), t.version, *flags)
    return None


def previous_seconds(t: Tool) -> float | None:
    """The newest recorded build time of ``t`` (any version) in the cache, if it was ever built here."""
    records = sorted((toolchain_dir() / t.name).glob("*/build.json"), key=lambda p: p.stat().st_mtime,
                     reverse=True)
    for record in records:
        try:
            info = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and isinstance(info.get("seconds"), (int, float)):
            return float(info["seconds"])
    return None


def units(tools: Iterable[Tool]) -> list[Unit]:
    """The build units for ``tools``, longest first."""
    groups: dict[tuple[str, ...], list[Tool]] = {}
    alone: list[Tool] = []
    for t in tools:
        key = _group_key(t)
        if key is None:
            alone.append(t)
        else:
            groups.setdefault(key, []).append(t)
    out = []
    for members in [*groups.values(), *([t] for t in alone)]:
        known = [s for s in (previous_seconds(t) for t in members) if s is not None]
        # tools built together each record the whole command's time: the unit takes about the longest
        out.append(Unit(tuple(members), max(known) if known else None))
    return sorted(out, key=lambda u: -u.weight)


def makespan(weights: Iterable[float], jobs: int) -> float:
    """Wall time of running ``weights`` (longest first) on ``jobs`` workers."""
    ends = [0.0] * max(1, jobs)
    for w in sorted(weights, reverse=True):
        heapq.heapreplace(ends, ends[0] + w)
    return max(ends)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f} min"


def plan_line(todo: list[Unit], jobs: int) -> str:
    """What will be built and how long it should take."""
    tools = sum(len(u.tools) for u in todo)
    unknown = [u for u in todo if u.estimate is None]
    known = [u.weight for u in todo if u.estimate is not None]
    line = f"{tools} tool(s) to build in {len(todo)} go command(s), {jobs} at a time"
    if known:
        line += f"; about {_minutes(makespan(known, jobs))} from earlier builds here"
        if unknown:
            line += f" plus {len(unknown)} never built here"
    else:
        line += "; no earlier builds here to estimate from (a cold first build takes 20-40 min on 2 cores)"
    return line


Then = tuple[str, Callable[[], Iterable[str]]]


def install(names: Iterable[str], *, force: bool = False, jobs: int | None = None, say: Say | None = None,
            detail: Say | None = None, then: Then | None = None) -> dict[str, Path]:
    """Build the named tools that are missing (or all, with ``force``), ``jobs`` go commands at a time.

    ``say`` gets one line per item (start, end with its time, what is left); ``detail`` the build
    output lines. Overrides are verified, never built. ``then = (tool, more)``: ``tool`` is built first
    and, once it is there, ``more()`` names further tools to build in the same run (what only a program
    built here can tell, e.g. the images a Helm render names). Returns every tool's path."""
    jobs = jobs or default_jobs()
    say = say or (lambda _line: None)
    wanted: list[Tool] = []
    paths: dict[str, Path] = {}
    todo: list[Unit] = []

    def plan(more: Iterable[str]) -> list[Unit]:
        """Units for the tools of ``more`` not seen yet; the cached and overridden ones are resolved."""
        pending = []
        for t in (toolchain.tool(n) for n in dict.fromkeys(more)):
            if t in wanted:
                continue
            wanted.append(t)
            if not force and (toolchain.override(t) is not None or t.is_current()):
                paths[t.name] = toolchain.resolve(t.name)  # verified, never rebuilt
            else:
                pending.append(t)
        return units(pending)

    first = [*([then[0]] if then else []), *names]
    todo += plan(first)
    if then is not None and then[0] in paths:  # already there: ask now
        todo += plan(then[1]())
        then = None
    elif then is not None:  # build it first
        key = then[0]
        todo.sort(key=lambda u: all(t.name != key for t in u.tools))
    if not todo:
        return {t.name: paths[t.name] for t in wanted}
    say(plan_line(todo, jobs))
    started = time.monotonic()
    lock = threading.Lock()
    running: dict[int, float] = {}
    done: set[int] = set()

    def left() -> float:
        now = time.monotonic()
        waiting = [u.weight for i, u in enumerate(todo) if i not in running and i not in done]
        busy = [max(0.0, todo[i].weight - (now - since)) for i, since in running.items()]
        return makespan([*busy, *waiting], jobs)

    def build(index: int) -> list[Path]:
        unit = todo[index]
        with lock:
            running[index] = time.monotonic()
        earlier = f" (earlier: {_minutes(unit.estimate)})" if unit.estimate is not None else ""
        say(f"[{index + 1}/{len(todo)}] building {unit.label}{earlier}")
        return toolchain.build_unit(unit.tools, force=force, progress=detail)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="homeci-build") as pool:
        futures: dict[Future[list[Path]], int] = {pool.submit(build, i): i for i in range(len(todo))}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in finished:
                index = futures[fut]
                unit = todo[index]
                with lock:
                    since = running.pop(index, time.monotonic())
                    done.add(index)
                try:
                    built = fut.result()
                except BaseException:
                    for other in remaining:
                        other.cancel()
                    raise
                for t, path in zip(unit.tools, built, strict=True):
                    paths[t.name] = path
                if then is not None and then[0] in paths:
                    extra = plan(then[1]())
                    then = None
                    if extra:
                        say(f"{sum(len(u.tools) for u in extra)} more tool(s) to build: "
                            f"{', '.join(u.label for u in extra)}")
                    for u in extra:
                        todo.append(u)
                        new = pool.submit(build, len(todo) - 1)
                        futures[new] = len(todo) - 1
                        remaining.add(new)
                rest = f"; about {_minutes(left())} left" if remaining else ""
                say(f"[{index + 1}/{len(todo)}] built {unit.label} in {_minutes(time.monotonic() - since)}"
                    f"{rest}")
    say(f"built {sum(len(u.tools) for u in todo)} tool(s) in {_minutes(time.monotonic() - started)}")
    return {t.name: paths[t.name] for t in wanted}
