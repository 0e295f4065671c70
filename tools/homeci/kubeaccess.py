"""Kubernetes API access, for every part of homeci that talks to a cluster (the one module that does).

* A user's kubeconfig (``homeci smoke``, ``homeci ca show --secret``): every way the kubeconfig or the API
  server can fail becomes one line naming the kubeconfig, the server and the fix, and an unreachable server
  is found within seconds, before any real work starts (:func:`api_client`, :func:`probe`).
* The cluster providers (:mod:`homeci.cluster`): the same client for the kubeconfig they wrote, polling with
  a reason (:func:`wait_for`), server-side apply of their own objects (:func:`apply`), namespaces with a Pod
  Security level (:func:`ensure_namespace`) and node readiness (:func:`node_ready`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from homeci.errors import HomeciError

# (connect, read) seconds for the first request: an address that drops packets fails in seconds, not minutes
PROBE_TIMEOUT = (5, 10)


def source(kubeconfig: str | os.PathLike[str] | None) -> str:
    """The kubeconfig the client reads: the one given, else the first of $KUBECONFIG, else ~/.kube/config."""
    if kubeconfig:
        return str(kubeconfig)
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return first or str(Path("~/.kube/config").expanduser())


def api_client(kubeconfig: str | os.PathLike[str] | None, *, flag: str = "--kubeconfig") -> Any:
    """A ``kubernetes.client.ApiClient`` for ``kubeconfig`` (or $KUBECONFIG / ~/.kube/config)."""
    from kubernetes import config

    where = source(kubeconfig)
    if not Path(where).is_file():
        state = "is a directory" if Path(where).is_dir() else "does not exist"
        raise HomeciError(f"kubeconfig {where} {state}: pass {flag} with your cluster's kubeconfig file "
                          "(or set KUBECONFIG)")
    # Explicit, so $KUBECONFIG is read now (the client reads it once, at import); a list of paths is merged.
    files = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or where
    try:
        return config.new_client_from_config(config_file=files)
    except UnicodeDecodeError as exc:
        reason = f"not a text file: byte {exc.start} is not UTF-8"
    except Exception as exc:  # ConfigException, OSError, yaml errors; TypeError/KeyError for bad entries
        reason = " ".join(str(exc).split()) or type(exc).__name__
    raise HomeciError(f"kubeconfig {where} is not usable ({reason}); pass {flag} with your cluster's "
                      "kubeconfig file (or set KUBECONFIG)")


def server(api: Any) -> str:
    return str(getattr(getattr(api, "configuration", None), "host", "") or "the API server")


def unreachable(exc: BaseException, api: Any, kubeconfig: str | os.PathLike[str] | None) -> HomeciError:
    """The one-line error for an API server that does not answer (urllib3 connection errors)."""
    text = " ".join(str(exc).split())
    match = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text)
    reason = match.group(1).strip() if match else ("timed out" if "timed out" in text.lower()
                                                  else type(exc).__name__)
    return HomeciError(f"cannot reach the API server {server(api)} ({reason}) named in kubeconfig "
                       f"{source(kubeconfig)}: is the cluster up, and is this its kubeconfig?")


def probe(api: Any, kubeconfig: str | os.PathLike[str] | None) -> None:
    """Return once the API server answers; a one-line HomeciError when it cannot be reached or rejects
    the kubeconfig's credentials (401). Any other HTTP answer proves it is there: later calls say what
    is wrong."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.VersionApi(api).get_code(_request_timeout=PROBE_TIMEOUT)
    except ApiException as exc:
        if exc.status != 401:
            return
        raise HomeciError(f"the API server {server(api)} rejected the credentials in kubeconfig "
                          f"{source(kubeconfig)} (401 Unauthorized); check its user and context") from None
    except Exception as exc:  # urllib3 MaxRetryError, SSL errors, timeouts
        raise unreachable(exc, api, kubeconfig) from None


def wait_for(what: str, check: Callable[[], str | None], *, timeout: float,
             progress: Callable[[str], None] | None = None, interval: float = 0.5) -> None:
    """Poll ``check`` (None = done, else a short "still waiting because" text) until ``timeout``.

    API and connection errors (the server not listening yet) count as "not yet"; a HomeciError raised by
    ``check`` (a daemon died) fails at once."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while time.monotonic() < deadline:
        try:
            result = check()
        except HomeciError:
            raise
        except Exception as exc:  # ApiException, urllib3 connection errors, OSError
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            result = f"{type(exc).__name__}: {first}".rstrip(": ")
        if result is None:
            return
        reason = result
        if progress:
            progress(f"{what}: {reason}")
        time.sleep(interval)
    raise HomeciError(f"timed out after {timeout:.0f}s waiting for {what} ({reason})")


def apply(api: Any, objects: Iterable[dict[str, Any]], *, manager: str = "homeci",
          discovery_timeout: float = 30) -> None:
    """Server-side apply each object (created or brought to this content; field manager ``manager``)."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    for obj in objects:
        res = served_resource(dyn, obj["apiVersion"], obj["kind"], timeout=discovery_timeout)
        dyn.server_side_apply(res, body=obj, field_manager=manager, force_conflicts=True)


def served_resource(dyn: Any, api_version: str, kind: str, *, timeout: float) -> Any:
    """The dynamic client's resource for ``kind``, waiting up to ``timeout`` for the API server to serve
    it: a server that just answered /version may still be registering its API groups (seen in CI on a
    cold machine: storage.k8s.io/v1 not yet discovered)."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    found: list[Any] = []

    def check() -> str | None:
        try:
            found.append(dyn.resources.get(api_version=api_version, kind=kind))
        except ResourceNotFoundError:
            return f"{api_version} {kind} not served yet"
        return None

    wait_for(f"the API server to serve {kind} ({api_version})", check, timeout=timeout, interval=1)
    return found[-1]


def create(api: Any, objects: Iterable[dict[str, Any]], *, discovery_timeout: float = 60) -> None:
    """Create each object unless it exists (kept as it is then). Unlike apply, a create keeps what the
    object's strategy allows only on create, e.g. a Node's status (the simulated nodes' size)."""
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    for obj in objects:
        res = served_resource(dyn, obj["apiVersion"], obj["kind"], timeout=discovery_timeout)
        try:
            res.create(body=obj, namespace=obj["metadata"].get("namespace"))
        except ApiException as exc:
            if exc.status != 409:
                raise


PSS_MODES = ("enforce", "audit", "warn")


def pss_labels(level: str = "restricted") -> dict[str, str]:
    """The Pod Security labels that enforce, audit and warn at ``level``."""
    return {f"pod-security.kubernetes.io/{mode}": level for mode in PSS_MODES}


def ensure_namespace(api: Any, name: str, labels: dict[str, str]) -> None:
    """Create namespace ``name`` with ``labels``, or set them on the existing one."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.patch_namespace(name, {"metadata": {"labels": labels}})


def node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
