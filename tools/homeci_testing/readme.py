"""The shell commands of README.md, as a reader copies them: each ```sh block's lines, backslash continuations
joined, ``# comments`` dropped (tests/unit/test_readme_commands.py maps each to the test that runs it;
tests/charts/test_readme_installs.py renders the ``helm install`` ones)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from homeci_testing.support import ROOT

README = ROOT / "README.md"

# A fence opening: three or more backticks or tildes, then the info string (its first word is the language).
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^`\s]*)")
SHELL_LANGUAGES = ("sh",)


@dataclass(frozen=True)
class Command:
    text: str  # the command as written: continuation lines joined with one space, comment dropped
    line: int  # README line the command starts on

    def argv(self) -> list[str]:
        return shlex.split(self.text)


def _without_comment(line: str) -> str:
    """``line`` up to a ``#`` that starts a shell comment (at the start or after a blank, outside quotes)."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def sh_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of every fenced block whose language is ``sh``."""
    blocks: list[tuple[int, list[str]]] = []
    fence: str | None = None
    language = ""
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence, language, current, start = m.group(1), m.group(2).lower(), [], number + 1
            continue
        closing = line.strip()
        if closing.startswith(fence) and set(closing) == {fence[0]}:
            if language in SHELL_LANGUAGES:
                blocks.append((start, current))
            fence = None
            continue
        current.append(line)
    return blocks


def sh_commands(text: str) -> list[Command]:
    """Every command of the ``sh`` blocks of ``text``, in order."""
    commands: list[Command] = []
    for start, lines in sh_blocks(text):
        pending: list[str] = []
        first = start
        for offset, raw in enumerate(lines):
            line = _without_comment(raw).strip()
            if not pending:
                first = start + offset
            if line.endswith("\\"):
                pending.append(line[:-1].strip())
                continue
            pending.append(line)
            joined = " ".join(part for part in pending if part)
            pending = []
            if joined:
                commands.append(Command(joined, first))
        if any(pending):
            commands.append(Command(" ".join(part for part in pending if part), first))
    return commands


def readme_commands(path: Path = README) -> list[Command]:
    return sh_commands(path.read_text())
