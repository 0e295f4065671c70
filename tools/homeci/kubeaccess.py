"""A cluster from a user's kubeconfig, for the commands that talk to one (``homeci smoke``, ``homeci ca show
--secret``): every way the kubeconfig or the API server can fail becomes one line naming the kubeconfig, the
server and the fix, and an unreachable server is found within seconds, before any real work starts."""

from __future__ import annotations

import os
import re
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
