"""Console output shared by all commands: a stderr console, progress for long work."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

# emoji=False: rich would otherwise turn ":cd:" inside a fingerprint or a path into an emoji.
console = Console(stderr=True, highlight=False, emoji=False)
# soft_wrap: commands and paths printed for copy-paste are never broken across lines.
out = Console(highlight=False, emoji=False, soft_wrap=True)


# Without a terminal, a long step's detail line is printed at most this often (seconds);
# HOMECI_PROGRESS_EVERY=0 prints every one (benchmarks/up.py reads the phases from them).
LOG_EVERY = float(os.environ.get("HOMECI_PROGRESS_EVERY") or 10.0)


def wide(target: Console) -> Console:
    """``target``, or where it is not a terminal (a pipe, a CI log) a console that keeps each table row on
    one line instead of wrapping it at 80 columns."""
    if target.is_terminal:
        return target
    return Console(file=target.file, width=200, highlight=False, emoji=False, no_color=target.no_color)


def say(line: str) -> None:
    """One line that stays (above a running spinner, if any): an item of a long step started or ended."""
    console.print(f"  {line}", markup=False, soft_wrap=True)


@contextmanager
def step(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time for long work; yields a callback that shows the latest detail line.

    Without a terminal (CI logs) there is no spinner: a new detail line is printed, with the elapsed
    seconds, at most every LOG_EVERY seconds, so a long step still shows where it is without flooding.
    The elapsed seconds have a decimal when lines may come faster than one a second."""
    start = time.monotonic()
    if not console.is_terminal:
        last, printed = "", -LOG_EVERY

        def log(line: str) -> None:
            nonlocal last, printed
            line = line.strip()
            now = time.monotonic() - start
            if line and line != last and now - printed >= LOG_EVERY:
                last, printed = line, now
                elapsed = f"{now:5.1f}s" if LOG_EVERY < 1 else f"{now:5.0f}s"
                console.print(f"  {label}: {elapsed}  {line[:150]}", markup=False, soft_wrap=True)

        yield log
        console.print(f"✓ {label} ({time.monotonic() - start:.1f}s)", markup=False)
        return
    with console.status(label) as status:

        def detail(line: str) -> None:
            line = line.strip()
            if line:
                status.update(f"{label} [dim]{time.monotonic() - start:5.0f}s  {line[:90]}[/dim]")

        yield detail
    console.print(f"[green]✓[/green] {label} ({time.monotonic() - start:.1f}s)")
