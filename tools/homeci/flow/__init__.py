"""The push-to-deploy flow: one driver used by `nox -s integration`, `homeci smoke` and the T3 tests.

Data flows one way: a stack's endpoints and credentials (:mod:`.stack`) → API clients (:mod:`.web`,
:mod:`.clients`) → the driver (:mod:`.driver`), which pushes an app, follows its Drone build, checks
the image in the registry and the served version, and returns a phase report.
"""
