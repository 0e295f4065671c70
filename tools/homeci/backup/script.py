"""The chart's backup script (``charts/homeci-umbrella/files/backup.py``) as a module: the one definition of
the archive format and of the commands run inside the stack's containers, shared by ``homeci backup`` and
the scheduled backup the umbrella's CronJob runs."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from homeci.paths import charts_dir


def _load() -> ModuleType:
    path = charts_dir() / "homeci-umbrella" / "files" / "backup.py"
    spec = importlib.util.spec_from_file_location("homeci_chart_backup", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing resolve names through sys.modules
    spec.loader.exec_module(module)
    return module


SCRIPT = _load()
