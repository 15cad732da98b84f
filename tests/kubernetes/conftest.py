"""A real Kubernetes for these tests: the local one (tests/cluster.py) or $KUBECONFIG's."""

from __future__ import annotations

from tests.cluster import kubernetes_cluster

__all__ = ["kubernetes_cluster"]
