"""A real Kubernetes for these tests: the local one (tests/cluster.py) or $KUBECONFIG's."""

from __future__ import annotations

import pytest

from tests.cluster import kubernetes_cluster

__all__ = ["kubernetes_cluster"]

# Starts and stops the local cluster itself: it must run before any test starts the
# session's cluster (the two cannot run at once: they share the kubepods cgroups).
FIRST = "test_two_start_stop_cycles_leave_the_host_as_it_was"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name != FIRST)  # stable: the rest keep their order
