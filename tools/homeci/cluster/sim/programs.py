"""What a kubelet would run, for the simulated cluster: kwok starts no container, so a Job's pod "succeeds"
without its program ever running. The umbrella's own programs (the certificate program of the hook Job and
the renewal CronJob) are small standard-library Python scripts that talk only to the Kubernetes API; here
they run as local processes with their container's environment and a token of their pod's ServiceAccount,
so they meet the real API server, RBAC and objects of the simulated cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from homeci.errors import HomeciError


@dataclass(frozen=True)
class Run:
    """What one run of a program did: its exit code and its log lines (stderr)."""

    code: int
    log: list[str]

    def __str__(self) -> str:
        return f"exit {self.code}: " + " | ".join(self.log)


def _token(api: Any, namespace: str, service_account: str) -> str:
    from kubernetes import client

    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        service_account, namespace, {"spec": {"expirationSeconds": 600}})
    return str(answer.status.token)


def run_pod(api: Any, namespace: str, pod_spec: dict[str, Any], script: str, *,
            env: dict[str, str] | None = None, name: str = "program.py") -> Run:
    """The pod's first container, run here with ``script`` (Python): its env (plain values) plus ``env``,
    the API server of ``api``, a token of the pod's ServiceAccount in SERVICEACCOUNT_DIR."""
    container = pod_spec["containers"][0]
    settings = {e["name"]: str(e["value"]) for e in container.get("env") or [] if "value" in e}
    server = urlparse(api.configuration.host)
    with tempfile.TemporaryDirectory(prefix="homeci-sim-pod-") as tmp:
        sa = Path(tmp) / "serviceaccount"
        sa.mkdir()
        (sa / "token").write_text(_token(api, namespace, pod_spec["serviceAccountName"]))
        (sa / "ca.crt").write_bytes(Path(api.configuration.ssl_ca_cert).read_bytes())
        (Path(tmp) / name).write_text(script)
        full = {**settings, **(env or {}), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port),
                "SERVICEACCOUNT_DIR": str(sa)}
        proc = subprocess.run([sys.executable, str(Path(tmp) / name)], capture_output=True, text=True,
                              env=full, timeout=120, check=False)
    return Run(proc.returncode, [ln for ln in proc.stderr.splitlines() if ln.strip()])


def run_cronjob(api: Any, namespace: str, name: str, script_key: str, *,
                env: dict[str, str] | None = None) -> Run:
    """One run of CronJob ``name``: its live pod template, the script ``script_key`` of the ConfigMap of
    the same name (the umbrella's convention for its programs)."""
    from kubernetes import client

    cron = client.BatchV1Api(api).read_namespaced_cron_job(name, namespace)
    spec = client.ApiClient().sanitize_for_serialization(cron.spec.job_template.spec.template.spec)
    script = client.CoreV1Api(api).read_namespaced_config_map(name, namespace).data[script_key]
    return run_pod(api, namespace, spec, script, env=env, name=script_key)


def run_certificates(api: Any, *, release: str, namespace: str) -> Run:
    """One pass of the umbrella's certificate program (CronJob ``<release>-certs``): the CA, the serving
    certificate and the public CA ConfigMaps, as the hook Job writes them on a real cluster."""
    run = run_cronjob(api, namespace, f"{release}-certs", "certs.py")
    if run.code != 0:
        raise HomeciError(f"the certificate program of {namespace}/{release}-certs failed on the simulated "
                          f"cluster ({run})")
    return run
