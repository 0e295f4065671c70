"""``homeci lint``: helm lint (Helm 3 and 4), values schemas, Kubernetes and CRD validation."""
