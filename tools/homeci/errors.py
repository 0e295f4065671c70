"""One exception type for everything a user can fix; the CLI prints it as one line and exits non-zero."""

from __future__ import annotations


class HomeciError(Exception):
    """A failure the user can act on. ``str(err)`` is the whole message: what went wrong and the fix."""

    exit_code = 1


class UsageError(HomeciError):
    """Bad command-line input (unknown chart, missing file, ...)."""

    exit_code = 2
