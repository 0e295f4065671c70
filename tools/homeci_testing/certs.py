"""What the umbrella's certificate program writes, for tests that need the CA and the serving certificate.

The chart renders no key material: the hook Job ``<release>-certs-hook`` creates Secret ``<release>-ca``,
Secret ``<release>-tls`` and ConfigMap ``<release>-ca`` in the cluster. :func:`with_certificates` runs the
program the render ships (its ConfigMap ``certs.py``) with the hook Job's own environment in its offline
mode (``--print``: what one pass writes into an empty namespace) and adds those objects to the render, so
the real-program tier and the certificate tests work on the objects a cluster would hold. Results are
cached per program text and environment: one CA per scenario for the life of the process.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from homeci import manifests
from homeci.errors import HomeciError
from homeci.manifests import Manifest

SCRIPT = "certs.py"


def hook_job(objects: list[Manifest]) -> Manifest:
    """The rendered pre-install hook Job that runs the certificate program."""
    jobs = [m for m in manifests.by_kind(objects, "Job") if m.name.endswith("-certs-hook")]
    if len(jobs) != 1:
        raise HomeciError(f"the render has {len(jobs)} certificate hook Jobs (*-certs-hook), expected one")
    return jobs[0]


def program(objects: list[Manifest], job: Manifest) -> tuple[str, dict[str, str]]:
    """(script text, environment) of ``job``'s container, from the ConfigMap it mounts."""
    spec = job.pod_spec() or {}
    container = spec["containers"][0]
    env = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
    volume = next(v for v in spec.get("volumes") or [] if "configMap" in v)
    script = manifests.get(objects, "ConfigMap", volume["configMap"]["name"]).obj["data"][SCRIPT]
    return str(script), env


def run_offline(
    script: str, env: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> list[Manifest]:
    """``certs.py --print`` with ``env`` (plus ``extra``): the objects one pass creates, parsed."""
    return [
        manifests.Manifest(dict(o), "certs.py --print")
        for o in _offline(script, tuple(sorted({**env, **(extra or {})}.items())))
    ]


@functools.cache
def _offline(script: str, env: tuple[tuple[str, str], ...]) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="homeci-certs-") as tmp:
        path = Path(tmp) / SCRIPT
        path.write_text(script)
        proc = subprocess.run(
            [sys.executable, str(path), "--print"],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **dict(env)},
            timeout=120,
            check=False,
        )
    if proc.returncode != 0:
        raise HomeciError(f"certs.py --print failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    items = json.loads(proc.stdout)["items"]
    return [dict(o) for o in items]


def with_certificates(objects: list[Manifest], **extra: str) -> list[Manifest]:
    """``objects`` plus what the hook Job creates in an empty namespace (environment ``extra`` on top)."""
    script, env = program(objects, hook_job(objects))
    present = {m.ref for m in objects}
    return objects + [m for m in run_offline(script, env, extra) if m.ref not in present]
