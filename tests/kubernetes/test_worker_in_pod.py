"""The worker entry point in a pod of the real cluster, on an image built by
``sematic build``: the job comes from the environment, inputs and outputs go through a
Sematic server (reached over the host network), and the result comes back as the
container's termination message, with pickles (a nested future, an exception) kept in the
artifact store. This is the path every ``inline=False`` function of the CloudResolver takes.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

from sematic.core.future import Future
from sematic.core.jobs import TERMINATION_LOG, InputRef, WorkerJob, WorkerResult
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from sematic.kubernetes.watcher import JobWatcher
from sematic.packaging.builder import build
from sematic.packaging.config import find_config
from sematic.storage.http import HttpArtifactStore
from sematic.storage.serialization import deserialize, serialize
from tests.harness.cluster import Cluster
from tests.harness.images import push_base
from tests.harness.registry import RegistryServer
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow

FUNCTIONS = """
import os

import sematic


@sematic.func
def add(a: int, b: int) -> int:
    return a + b


@sematic.func
def twice(a: int) -> int:
    return add(a, a)


@sematic.func
def boom(a: int) -> int:
    raise ValueError(f"boom {a} on {os.environ['SEMATIC_BASE_IMAGE_TAG']}")
"""


@pytest.fixture(scope="module")
def image(cluster_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    registry = cluster_registry
    base = push_base(registry, "base/python", "default")
    project = tmp_path_factory.mktemp("project")
    (project / "podfuncs.py").write_text(FUNCTIONS)
    (project / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "tests/worker"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\nbase = "{base}"\n'
    )
    script = project / "podfuncs.py"
    sys.path.insert(0, str(project))  # nested futures come back referring to podfuncs
    result = build(script, find_config(script), cache=tmp_path_factory.mktemp("cache"))
    return result.image_map["default"]


@pytest.fixture
def watcher(kubernetes_cluster: Cluster) -> Iterator[JobWatcher]:
    from kubernetes import config

    api = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    jobs = JobWatcher(api, "default")
    yield jobs
    jobs.close()
    api.close()


def run_in_pod(
    watcher: JobWatcher, image: str, server: Server, function: str, **inputs: int
) -> tuple[WorkerResult, HttpArtifactStore]:
    store = HttpArtifactStore(server.url)
    refs = {}
    for name, value in inputs.items():
        serialized = serialize(value, int)
        store.put(serialized.artifact_id, serialized.payload,
                  type_key=serialized.type_description["type_key"])  # fmt: skip
        refs[name] = InputRef(serialized.artifact_id, serialized.type_description)
    job = WorkerJob(
        run_id="r1", root_id="r1", function_path=f"podfuncs.{function}", inputs=refs,
        artifact_url="unused://", result_path=TERMINATION_LOG, server_url=server.url,
    )  # fmt: skip
    name = f"worker-{uuid.uuid4().hex[:8]}"
    manifest = job_manifest(
        name=name,
        image=image,
        command=["/opt/sematic/bin/sematic-worker", "--job-from-env"],
        settings=ClusterSettings(host_network=True),
        env={"SEMATIC_WORKER_JOB": job.to_json()},
    )
    manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    watcher.submit(manifest)
    try:
        outcome = watcher.next_outcome(180)
    finally:
        watcher.delete(name)
    assert outcome is not None and outcome.name == name, outcome
    assert outcome.succeeded, outcome
    assert outcome.termination_message is not None, outcome
    return WorkerResult.from_json(outcome.termination_message), store


def unpickle(result: WorkerResult, store: HttpArtifactStore) -> Any:
    assert result.pickle_artifact is not None and result.pickle_path is None, result
    kept = result.pickle_artifact
    data = deserialize(store.get(kept["id"]), kept["type_description"], bytes)
    return cloudpickle.loads(data)


def test_a_function_runs_in_a_pod_and_its_output_is_in_the_store(
    watcher: JobWatcher, image: str, server: Server
) -> None:
    result, store = run_in_pod(watcher, image, server, "add", a=2, b=3)
    assert result.kind == "resolved", result
    assert result.artifact is not None
    assert deserialize(store.get(result.artifact["id"]), result.artifact["type_description"],
                       int) == 5  # fmt: skip
    store.close()


def test_a_nested_future_comes_back_through_the_store(
    watcher: JobWatcher, image: str, server: Server
) -> None:
    result, store = run_in_pod(watcher, image, server, "twice", a=4)
    assert result.kind == "nested", result
    future = unpickle(result, store)
    assert isinstance(future, Future)
    assert future.function.dotted_path == "podfuncs.add"
    assert future.kwargs == {"a": 4, "b": 4}
    store.close()


def test_an_exception_comes_back_with_its_type_and_traceback(
    watcher: JobWatcher, image: str, server: Server
) -> None:
    result, store = run_in_pod(watcher, image, server, "boom", a=7)
    assert result.kind == "failed", result
    assert result.exception_type == "builtins.ValueError"
    assert result.message == "boom 7 on default"
    assert result.traceback is not None and "raise ValueError" in result.traceback
    error = unpickle(result, store)
    assert isinstance(error, ValueError) and str(error) == "boom 7 on default"
    store.close()
