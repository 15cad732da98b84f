"""A real Kubernetes for these tests: the local one (tests/harness/cluster.py) or $KUBECONFIG's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import Cluster, kubernetes_cluster
from tests.harness.registry import RegistryServer
from tests.unit.server.conftest import Server, start_server

__all__ = ["cluster_registry", "kubernetes_cluster", "server"]


@pytest.fixture(scope="session")
def cluster_registry(kubernetes_cluster: Cluster) -> RegistryServer:
    """The local cluster's registry (nodes pull from it; plain HTTP, no credentials)."""
    if not kubernetes_cluster.local:
        pytest.fail(
            "this test pushes images to the local cluster's registry, and KUBECONFIG names "
            "another cluster: unset KUBECONFIG, so that the tests start the local one "
            "(tests/harness/cluster.py; scripts/setup installs its tools)",
            pytrace=False,
        )
    address = kubernetes_cluster.registry
    return RegistryServer(
        address=address, url=f"http://{address}", username=None, password=None,
        storage=Path("/nonexistent"),  # not ours to read
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Sematic server on 127.0.0.1 that pods reach over the host network."""
    running = start_server(tmp_path_factory.mktemp("server") / "home")
    try:
        yield running
    finally:
        running.stop()


# Starts and stops the local cluster itself: it must run before any test starts the
# session's cluster (the two cannot run at once: they share the kubepods cgroups).
FIRST = "test_two_start_stop_cycles_leave_the_host_as_it_was"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name != FIRST)  # stable: the rest keep their order
