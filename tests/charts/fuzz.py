"""Hypothesis settings of the chart property tests: 25 reproducible examples per test in `nox -s test`,
HOMECI_FUZZ=<n> fresh ones (with the failure database in .hypothesis/) in `nox -s fuzz`."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

FUZZ = int(os.environ.get("HOMECI_FUZZ", "0") or 0)
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    # no shrinking: each example is a Helm render, and shrinking one failure takes many minutes
    "homeci-test", max_examples=25, derandomize=True, deadline=None, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=_QUIET,
)
settings.register_profile("homeci-fuzz", max_examples=max(FUZZ, 1), deadline=None, print_blob=True,
                          suppress_health_check=_QUIET)

PROFILE = settings.get_profile("homeci-fuzz" if FUZZ else "homeci-test")
