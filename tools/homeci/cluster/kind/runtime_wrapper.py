"""dockerd's default runtime for the contained engine: drops CAP_SYS_RESOURCE, then runs the real runc.

Docker 20.10 asks for every capability for ``--privileged`` containers (kind's nodes); this machine's
bounding set lacks CAP_SYS_RESOURCE, so runc fails with "unable to apply caps: operation not permitted"
(upstream moby#42906). The shim calls this program exactly as it would call runc: for ``create``/``run``
it edits the bundle's ``config.json``, for ``exec`` the ``--process`` file, and then it becomes runc
(``execv``) with the same arguments. Stdlib only; :mod:`homeci.cluster.kind.engine` copies it into the
engine's state with the interpreter and the real runc's path filled in.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REAL_RUNC = "runc"
DROP = "CAP_SYS_RESOURCE"


def _value(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _without(process: dict[str, Any]) -> bool:
    caps = process.get("capabilities") or {}
    changed = False
    for kind, names in caps.items():
        if isinstance(names, list) and DROP in names:
            caps[kind] = [n for n in names if n != DROP]
            changed = True
    return changed


def _edit(path: Path, *, bundle: bool) -> None:
    data = json.loads(path.read_text())
    process = data.get("process", {}) if bundle else data
    if _without(process):
        path.write_text(json.dumps(data))


def main(argv: list[str]) -> None:
    bundle = _value(argv, "--bundle", "-b")
    if bundle and any(a in ("create", "run") for a in argv):
        _edit(Path(bundle) / "config.json", bundle=True)
    process = _value(argv, "--process", "-p")
    if process and "exec" in argv:
        _edit(Path(process), bundle=False)
    os.execv(REAL_RUNC, [REAL_RUNC, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
