"""Live logs of a step running in a pod of the real cluster: while the pod runs, what it
printed so far is read through the server (no kubeconfig needed to read it); after its Job
and pod are deleted, the server still serves its whole log."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubernetes import client, config
from sematic.core.images import ImageMap
from sematic.packaging.builder import build
from sematic.packaging.config import find_config
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings
from tests.harness.cloud import cluster_settings
from tests.harness.cluster import Cluster
from tests.harness.images import push_base
from tests.harness.registry import RegistryServer
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow

PIPELINE = """
import time

import sematic


@sematic.func(inline=False)
def talkative(seconds: float) -> int:
    print("first line from the pod", flush=True)
    time.sleep(seconds)
    print("second line from the pod", flush=True)
    return 7


@sematic.func
def live_pipeline(seconds: float) -> int:
    return talkative(seconds)
"""
FIRST = "first line from the pod"
SECOND = "second line from the pod"


@pytest.fixture(scope="module")
def images(cluster_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> ImageMap:
    registry = cluster_registry
    base = push_base(registry, "base/python", "default")
    project = tmp_path_factory.mktemp("livelogs")
    (project / "livelogs.py").write_text(PIPELINE)
    (project / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "tests/livelogs"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\nbase = "{base}"\n'
    )
    script = project / "livelogs.py"
    sys.path.insert(0, str(project))
    built = build(script, find_config(script), cache=tmp_path_factory.mktemp("cache"))
    return ImageMap(built.image_map, insecure_registries=(registry.address,))


@pytest.fixture
def core(kubernetes_cluster: Cluster) -> Iterator[Any]:
    api = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def _graph(server: Server, root_id: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/v1/runs/{root_id}/graph")
    if answer.status_code == 404:
        return {}
    return {run["name"]: run for run in answer.json()["runs"]}


def _label(run_id: str) -> str:
    return "".join(c for c in run_id if c.isalnum())[:63]


def _pods(core: Any, run_id: str, root_id: str | None = None) -> list[Any]:
    """The run's own pod, or (``root_id`` given) the warm pods of its pipeline."""
    selector = f"sematic.dev/run-id={_label(run_id)}"
    if root_id is not None:
        selector = f"sematic.dev/role=warm,sematic.dev/root-id={_label(root_id)}"
    return list(core.list_namespaced_pod("default", label_selector=selector).items)


def _cluster_state(core: Any) -> str:
    """The pods of the namespace and their events, to say why a step did not run."""
    lines = []
    for pod in core.list_namespaced_pod("default").items:
        waiting = [f"{c.name}: {c.state}" for c in (pod.status.container_statuses or [])]
        lines.append(f"pod {pod.metadata.name} {pod.status.phase} {waiting}")
    for event in core.list_namespaced_event("default").items[-30:]:
        lines.append(f"event {event.involved_object.name} {event.reason}: {event.message}")
    return "\n".join(lines)


def _log(server: Server, run_id: str) -> str | None:
    answer = httpx.get(f"{server.url}/api/v1/runs/{run_id}/logs")
    return answer.text if answer.status_code == 200 else None


@pytest.mark.parametrize("warm", [True, False], ids=["warm-pods", "job-per-step"])
def test_a_running_pods_log_is_served_live_and_kept_after_the_pod_is_gone(
    warm: bool,
    kubernetes_cluster: Cluster,
    images: ImageMap,
    server: Server,
    core: Any,
    tmp_path: Path,
) -> None:
    import livelogs  # type: ignore[import-not-found]

    settings = LocalSettings(
        home=tmp_path / "home", database_url="unused://", artifact_url="unused://",
        server_url=server.url,
    )  # fmt: skip
    resolver = CloudResolver(
        images=images,
        kubeconfig=str(kubernetes_cluster.kubeconfig),
        settings=settings,
        # Worker pods call no Kubernetes API: the default service account will do.
        cluster=dataclasses.replace(cluster_settings(kubernetes_cluster), service_account=None),
        detach=False,
        warm_pods=warm,
    )
    future = livelogs.live_pipeline(8.0)
    root = future.id if warm else None
    outcome: dict[str, Any] = {}

    def resolve() -> None:
        try:
            outcome["value"] = future.resolve(resolver)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            outcome["error"] = error

    resolving = threading.Thread(target=resolve, daemon=True)
    resolving.start()
    # The step's run, once its pod runs.
    deadline = time.monotonic() + 240  # the first pull of the image
    run_id: str | None = None
    while run_id is None and time.monotonic() < deadline:
        run = _graph(server, future.id).get("talkative")
        if run is not None and any(
            p.status.phase == "Running" for p in _pods(core, run["id"], root)
        ):
            run_id = str(run["id"])
        assert "error" not in outcome, outcome
        time.sleep(0.2)
    assert run_id is not None, f"the step's pod never ran: {_cluster_state(core)}"
    # While the pod runs (it sleeps 8 s between its lines), the server has its first line.
    deadline = time.monotonic() + 30
    text = _log(server, run_id) or ""
    while FIRST not in text and time.monotonic() < deadline:
        time.sleep(0.2)
        text = _log(server, run_id) or ""
    assert FIRST in text, f"the first line never reached the server: {text!r}"
    pods = _pods(core, run_id, root)
    assert SECOND not in text and pods and pods[0].status.phase == "Running", (text, pods)
    # Read from an offset, as followers do: only what follows.
    tail = httpx.get(f"{server.url}/api/v1/runs/{run_id}/logs", params={"offset": 6})
    assert tail.text.startswith(text[6:]) and int(tail.headers["X-Log-Size"]) >= len(text.encode())
    resolving.join(timeout=180)
    assert not resolving.is_alive(), "the pipeline did not end"
    assert outcome.get("value") == 7, outcome
    # The finished Job is deleted with its pod; the server keeps the whole log.
    deadline = time.monotonic() + 60
    while _pods(core, run_id, root) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not _pods(core, run_id, root), "the finished step's pod was not deleted"
    kept = _log(server, run_id) or ""
    assert FIRST in kept and SECOND in kept, kept
    assert kept.count(FIRST) == 1, kept  # the whole log replaced what was streamed
