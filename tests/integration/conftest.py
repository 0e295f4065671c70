"""T3: the whole push-to-deploy loop on a real cluster (``nox -s integration [-- --provider kind]``).

The cluster is the session's ``real_stack`` (tests/conftest.py): one per run of the provider
``--provider`` names, shared with tests/providers. The loop needs containers: on the simulated cluster
these tests skip, saying so."""

from __future__ import annotations

from typing import Any

import pytest

from homeci.flow import setup


@pytest.fixture(scope="session")
def prepared(real_stack: Any) -> setup.Prepared:
    if not real_stack.cluster.runs_containers:
        pytest.skip(f"the {real_stack.provider} provider runs no container: the loop needs a real one "
                    "(--provider auto, netns or kind)")
    assert isinstance(real_stack, setup.Prepared)
    return real_stack
