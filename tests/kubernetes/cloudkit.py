"""What the CloudResolver tests share: ``Cloud`` (the images, cluster settings and server
of a module's tests, with ways to read what happened) and ``cloud_on``, which sets it up."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubernetes import client, config
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ClusterSettings
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.http import open_http_stores
from sematic.storage.serialization import deserialize
from tests.harness.cloud import build_project, cluster_settings, prepare_cluster, unlabel_node
from tests.harness.cluster import Cluster
from tests.harness.registry import RegistryServer
from tests.unit.server.conftest import Server

TERMINAL = {"RESOLVED", "FAILED", "NESTED_FAILED", "CANCELED"}


@dataclass(frozen=True)
class Cloud:
    """What every test here needs: the images, the cluster's settings, the server."""

    images: ImageMap
    cluster: ClusterSettings
    kubeconfig: str
    server: Server
    project: Path
    api: Any  # kubernetes ApiClient
    warm: bool = True  # CloudResolver(warm_pods=...) of ``resolver``

    def resolver(self, tmp_path: Path, **kwargs: Any) -> CloudResolver:
        settings = LocalSettings(
            home=tmp_path / "home", database_url="unused://", artifact_url="unused://",
            server_url=self.server.url,
        )  # fmt: skip
        kwargs.setdefault("unschedulable_after", 3.0)
        kwargs.setdefault("cluster", self.cluster)
        kwargs.setdefault("warm_pods", self.warm)
        return CloudResolver(
            images=self.images, kubeconfig=self.kubeconfig, settings=settings, **kwargs
        )

    @property
    def keeping(self) -> ClusterSettings:
        """The cluster settings, keeping finished Jobs (to count them)."""
        return dataclasses.replace(self.cluster, keep_finished_jobs=True)

    def environment(self, tmp_path: Path) -> dict[str, str]:
        """What a user's script run by `sematic run --build` would have."""
        return {
            **os.environ,
            "SEMATIC_HOME": str(tmp_path / "home"),
            "SEMATIC_SERVER_URL": self.server.url,
            "KUBECONFIG": self.kubeconfig,
            "SEMATIC_IMAGES": json.dumps(dict(self.images.images)),
            "SEMATIC_INSECURE_REGISTRIES": ",".join(self.images.insecure_registries),
            "SEMATIC_CLUSTER": json.dumps(self.cluster.to_dict()),
        }

    def cli(self, tmp_path: Path, *args: str) -> str:
        """``sematic ARGS`` with this server as ``server_url``; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "sematic.cli", *args], env=self.environment(tmp_path),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def run(self, run_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.server.url}/api/v1/runs/{run_id}").json()
        return answer

    def graph(self, root_id: str) -> dict[str, dict[str, Any]]:
        """The pipeline's runs by name."""
        answer = httpx.get(f"{self.server.url}/api/v1/runs/{root_id}/graph")
        if answer.status_code == 404:  # not recorded yet
            return {}
        return {run["name"]: run for run in answer.json()["runs"]}

    def wait(self, root_id: str, states: set[str] = TERMINAL, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run(root_id).get("state")
            if state in states:
                return str(state)
            time.sleep(0.25)
        pytest.fail(f"{root_id} is not in {states} after {timeout} s: {self.graph(root_id)}")

    def output(self, run_id: str, hint: Any = None) -> Any:
        metadata, artifacts = open_http_stores(self.server.url)
        try:
            artifact = metadata.get_artifact(metadata.get_run(run_id).output or "")
            return deserialize(artifacts.get(artifact.id), artifact.type_description, hint)
        finally:
            metadata.close()

    def logs(self, run_id: str) -> str:
        return httpx.get(f"{self.server.url}/api/v1/runs/{run_id}/logs").text

    def jobs(self, selector: str) -> list[Any]:
        batch: Any = client.BatchV1Api(self.api)
        return list(batch.list_namespaced_job("default", label_selector=selector).items)

    def pods(self, selector: str) -> list[Any]:
        core: Any = client.CoreV1Api(self.api)
        return list(core.list_namespaced_pod("default", label_selector=selector).items)


def label(run_id: str) -> str:
    return "".join(c for c in run_id if c.isalnum())[:63]


def wait_running(cloud: Cloud, root_id: str, name: str, timeout: float = 90) -> str:
    """The run id of ``name`` once its pod runs (a warm pod: once its log says it started
    the step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = cloud.graph(root_id).get(name)
        if run is not None and _running(cloud, root_id, str(run["id"])):
            return str(run["id"])
        time.sleep(0.25)
    pytest.fail(f"{name} of {root_id} is not running after {timeout} s: {cloud.graph(root_id)}")


@contextlib.contextmanager
def cloud_on(
    kind: type[Cloud],
    kubernetes_cluster: Cluster,
    cluster_registry: RegistryServer,
    server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """A ``kind`` of ``Cloud``: the test pipelines packaged into the cluster's registry and
    importable here, the node labelled, the driver's account made."""
    project = tmp_path_factory.mktemp("cloud")
    images = build_project(cluster_registry, project, tmp_path_factory.mktemp("cache"))
    api = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    prepare_cluster(api)
    cluster = cluster_settings(kubernetes_cluster)
    sys.path.insert(0, str(project))
    try:
        yield kind(images, cluster, str(kubernetes_cluster.kubeconfig), server, project, api)
    finally:
        sys.path.remove(str(project))
        unlabel_node(api)
        api.close()


def _running(cloud: Cloud, root_id: str, run_id: str) -> bool:
    pods = cloud.pods(f"sematic.dev/run-id={label(run_id)}")
    if pods:
        return bool(pods[0].status.phase == "Running")
    core: Any = client.CoreV1Api(cloud.api)
    for pod in cloud.pods(f"sematic.dev/role=warm,sematic.dev/root-id={label(root_id)}"):
        if pod.status.phase != "Running":
            continue
        with contextlib.suppress(client.ApiException):
            if f"(run {run_id})" in core.read_namespaced_pod_log(pod.metadata.name, "default"):
                return True
    return False
