"""kubeaccess waits for an API server that answers /version but has not registered a group yet."""
from __future__ import annotations

from typing import Any

import pytest
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from homeci import kubeaccess
from homeci.errors import HomeciError


class _LateGroup:
    """Discovery that finds the kind only from the ``ready_after``-th look (an injected fault)."""

    def __init__(self, ready_after: int) -> None:
        self.looks = 0
        self.ready_after = ready_after

    def get(self, **kwargs: Any) -> str:
        self.looks += 1
        if self.looks < self.ready_after:
            raise ResourceNotFoundError(f"No matches found for {kwargs}")
        return f"{kwargs['api_version']}/{kwargs['kind']}"


class _Dyn:
    def __init__(self, resources: _LateGroup) -> None:
        self.resources = resources


def test_a_group_registered_late_is_waited_for() -> None:
    late = _LateGroup(ready_after=3)
    got = kubeaccess.served_resource(_Dyn(late), "storage.k8s.io/v1", "StorageClass", timeout=10)
    assert got == "storage.k8s.io/v1/StorageClass"
    assert late.looks == 3


def test_a_kind_never_served_fails_naming_it() -> None:
    with pytest.raises(HomeciError, match=r"StorageClass \(storage.k8s.io/v1\).*not served yet"):
        kubeaccess.served_resource(_Dyn(_LateGroup(ready_after=10**6)), "storage.k8s.io/v1", "StorageClass",
                                   timeout=1.5)
