"""Documentation generated from one source: the comments in each chart's values.yaml and the shared schema
fragments of the library chart. ``homeci docs`` writes ``values.schema.json`` definitions/descriptions and
``VALUES.md``; ``homeci docs --check`` (run by ``nox -s lint``) fails when a checked-in file is stale."""
