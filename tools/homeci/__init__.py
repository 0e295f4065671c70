"""homeci: the tooling behind the homeci Helm chart suite (lint, render, CA, packaging, clusters)."""

__version__ = "0.1.0"
