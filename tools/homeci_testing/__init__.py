"""Test harnesses and measuring tools for homeci's own tests and benchmarks — not part of the ``homeci`` CLI.

* :mod:`homeci_testing.realprog` runs the real component programs on loopback with the rendered configuration.
* :mod:`homeci_testing.drone` renders the drone-pipelines templates the way Drone does and runs its scripts.
* :mod:`homeci_testing.footprint` adds up the default install's requests and limits.
"""
