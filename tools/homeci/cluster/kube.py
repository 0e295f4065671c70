"""Small helpers over the ``kubernetes`` Python client for the simulated cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from homeci.errors import HomeciError


def api_client(kubeconfig: Path) -> Any:
    """A configured ``kubernetes.client.ApiClient`` for ``kubeconfig``."""
    return config.new_client_from_config(config_file=str(kubeconfig))


def wait_for(what: str, check: Callable[[], str | None], *, timeout: float,
             progress: Callable[[str], None] | None = None, interval: float = 0.5) -> None:
    """Poll ``check`` (None = done, else a short "still waiting because" text) until ``timeout``."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while time.monotonic() < deadline:
        try:
            result = check()
        except (ApiException, OSError) as exc:
            result = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        except Exception as exc:  # urllib3 connection errors before the apiserver listens
            result = f"{type(exc).__name__}"
        if result is None:
            return
        reason = result
        if progress:
            progress(f"{what}: {reason}")
        time.sleep(interval)
    raise HomeciError(f"timed out after {timeout:.0f}s waiting for {what} ({reason})")


def apply(api: Any, obj: dict[str, Any]) -> None:
    """Create ``obj`` (Node, StorageClass, ...) unless it exists already."""
    kind = obj["kind"]
    try:
        if kind == "Node":
            client.CoreV1Api(api).create_node(obj)
        elif kind == "StorageClass":
            client.StorageV1Api(api).create_storage_class(obj)
        else:
            raise HomeciError(f"kube.apply: {kind} is not supported here")
    except ApiException as exc:
        if exc.status != 409:
            raise
