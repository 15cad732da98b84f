"""On the real cluster, against a server that needs an API key: pods get the key from a
Secret (it appears in no Job and no pod spec), finished worker Jobs are deleted (or kept
when asked), and a pipeline whose driver is gone for good is reaped: its Jobs deleted and
its unfinished runs FAILED, by the server's periodic reaper or the next `sematic runs`."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubernetes import client
from sematic.kubernetes.manifests import ClusterSettings
from sematic.kubernetes.pipelines import key_secret_name
from sematic.resolvers.cluster_rerun import ClusterRerun
from sematic.resolvers.reaper import DRIVER_GONE, Reaped, Reaper
from sematic.storage.http import open_http_stores
from tests.harness.cluster import Cluster
from tests.harness.registry import RegistryServer
from tests.kubernetes.cloudkit import TERMINAL, Cloud, cloud_on
from tests.kubernetes.cloudkit import label as _label
from tests.kubernetes.cloudkit import wait_running as _wait_running
from tests.unit.server.conftest import Server, server_env, start_server

pytestmark = pytest.mark.slow

KEY = "k3y-" + "7f3a9c" * 6  # distinctive: found anywhere it leaked
KEY_VARIABLE = "SEMATIC_TEST_CLUSTER_KEY"


@dataclass(frozen=True)
class KeyedCloud(Cloud):
    """``Cloud`` against a server that needs ``KEY`` for everything."""

    def resolver(self, tmp_path: Path, **kwargs: Any) -> Any:
        resolver = super().resolver(tmp_path, **kwargs)
        assert resolver.settings is not None
        resolver.settings = dataclasses.replace(resolver.settings, api_key=KEY)
        return resolver

    def environment(self, tmp_path: Path) -> dict[str, str]:
        return {**super().environment(tmp_path), "SEMATIC_API_KEY": KEY}

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.server.url}{path}", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        )

    def run(self, run_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._get(f"/api/v1/runs/{run_id}").json()
        return answer

    def graph(self, root_id: str) -> dict[str, dict[str, Any]]:
        answer = self._get(f"/api/v1/runs/{root_id}/graph")
        if answer.status_code == 404:
            return {}
        return {run["name"]: run for run in answer.json()["runs"]}

    def output(self, run_id: str, hint: Any = None) -> Any:
        from sematic.storage.serialization import deserialize

        metadata, artifacts = open_http_stores(self.server.url, KEY)
        try:
            artifact = metadata.get_artifact(metadata.get_run(run_id).output or "")
            return deserialize(artifacts.get(artifact.id), artifact.type_description, hint)
        finally:
            metadata.close()

    def cli_stderr(self, tmp_path: Path, *args: str) -> str:
        """``sematic ARGS``: what it wrote to stderr (it must succeed)."""
        done = subprocess.run(
            [sys.executable, "-m", "sematic.cli", *args], env=self.environment(tmp_path),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    def everything_of(self, root_id: str) -> str:
        """The pipeline's Jobs and pods, as the API server returns them (JSON)."""
        selector = f"sematic.dev/root-id={_label(root_id)}"
        objects = [*self.jobs(selector), *self.pods(selector)]
        return json.dumps(self.api.sanitize_for_serialization(objects))


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("keyed") / "home"
    running = start_server(
        home, "--api-key-env", KEY_VARIABLE, env=server_env(home, **{KEY_VARIABLE: KEY})
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def cloud(
    kubernetes_cluster: Cluster,
    cluster_registry: RegistryServer,
    keyed_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeyedCloud]:
    with cloud_on(
        KeyedCloud, kubernetes_cluster, cluster_registry, keyed_server, tmp_path_factory
    ) as made:
        yield made


def _key_env(container: Any) -> Any:
    (variable,) = [v for v in container.env if v.name == "SEMATIC_API_KEY"]
    return variable


def _secret(cloud: Cloud, name: str) -> Any:
    core: Any = client.CoreV1Api(cloud.api)
    try:
        return core.read_namespaced_secret(name, "default")
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_a_detached_pipeline_gets_the_key_from_a_secret_deleted_with_its_driver(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe  # type: ignore[import-not-found]

    keeping = dataclasses.replace(cloud.cluster, keep_finished_jobs=True)
    root_id = cloudpipe.parity_pipeline(3).resolve(cloud.resolver(tmp_path, cluster=keeping))
    assert cloud.wait(root_id) == "RESOLVED", cloud.graph(root_id)
    assert cloud.output(root_id, int) == 5  # the pods read and wrote through the keyed server
    everything = cloud.everything_of(root_id)
    assert KEY not in everything and base64.b64encode(KEY.encode()).decode() not in everything
    jobs = cloud.jobs(f"sematic.dev/root-id={_label(root_id)}")
    roles = sorted(job.metadata.labels["sematic.dev/role"] for job in jobs)
    # Kept: the driver, and the warm pods the 3 squares and the total ran in (two pools)
    assert roles[0] == "driver" and set(roles[1:]) == {"warm"} and 2 <= len(roles) - 1 <= 4
    secret_name = key_secret_name(root_id)
    for job in jobs:
        (container,) = job.spec.template.spec.containers
        reference = _key_env(container).value_from.secret_key_ref
        assert (reference.name, reference.key) == (secret_name, "api-key")
        assert all(KEY not in part for part in container.command)
    secret = _secret(cloud, secret_name)
    assert base64.b64decode(secret.data["api-key"]).decode() == KEY
    (owner,) = secret.metadata.owner_references
    assert (owner.kind, owner.name) == ("Job", f"sematic-driver-{_label(root_id)[:40]}")
    batch: Any = client.BatchV1Api(cloud.api)
    batch.delete_namespaced_job(owner.name, "default", propagation_policy="Background")
    deadline = time.monotonic() + 60
    while _secret(cloud, secret_name) is not None:  # the garbage collector follows the owner
        assert time.monotonic() < deadline, "the Secret outlived its driver Job"
        time.sleep(0.5)


def test_an_attached_pipeline_keeps_the_key_out_of_its_jobs_and_deletes_them_after(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe

    future = cloudpipe.parity_pipeline(4)
    seen: dict[str, str] = {}  # job name -> its manifest, as the cluster had it
    done = threading.Event()

    def watch() -> None:
        batch: Any = client.BatchV1Api(cloud.api)
        while not done.is_set():
            listed = batch.list_namespaced_job(
                "default", label_selector=f"sematic.dev/root-id={_label(future.id)}"
            )
            for job in listed.items:
                seen[job.metadata.name] = json.dumps(cloud.api.sanitize_for_serialization(job))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert future.resolve(cloud.resolver(tmp_path, detach=False)) == 14
    finally:
        done.set()
        watcher.join()
    assert len(seen) >= 2, seen  # the squares and total ran in Jobs the watch saw
    for manifest in seen.values():
        assert KEY not in manifest and key_secret_name(future.id) in manifest
    assert not cloud.jobs(f"sematic.dev/root-id={_label(future.id)}")  # finished: deleted
    assert _secret(cloud, key_secret_name(future.id)) is None  # deleted at the end


def _wait_for(condition: Any, what: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout} s")
        time.sleep(0.25)
    return time.monotonic()


def _driver_failed(cloud: Cloud, root_id: str) -> bool:
    pods = cloud.pods(f"sematic.dev/role=driver,sematic.dev/root-id={_label(root_id)}")
    return any(pod.status.phase == "Failed" for pod in pods)


def _reaped(cloud: Cloud, root_id: str) -> bool:
    return (
        not cloud.jobs(f"sematic.dev/root-id={_label(root_id)}")
        and cloud.run(root_id)["state"] in TERMINAL
    )


def test_a_driver_dead_for_good_is_reaped_by_the_servers_reaper_within_60_s(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe

    resolver = cloud.resolver(tmp_path, driver_restarts=0)
    root_id = cloudpipe.doomed_pipeline(2, 4.0).resolve(resolver)
    slow = _wait_running(cloud, root_id, "slow")
    metadata, _ = open_http_stores(cloud.server.url, KEY)
    rounds: list[Reaped] = []
    # As the server runs it (every 20 s), here over the server's API.
    reaper = Reaper.for_cluster(metadata, cloud.cluster, cloud.kubeconfig,
                                on_reaped=rounds.append).start()  # fmt: skip
    try:
        died = _wait_for(lambda: _driver_failed(cloud, root_id), "the driver died", 60)
        gone = _wait_for(lambda: _reaped(cloud, root_id), "the pipeline was reaped", 90)
    finally:
        reaper.stop()
        metadata.close()
    runs = cloud.graph(root_id)
    for name in ("doomed_pipeline", "slow"):
        run = runs[name]
        assert run["state"] == "FAILED", run
        assert run["exception_message"].startswith(f"{DRIVER_GONE}: "), run
        assert "restarts are exhausted" in run["exception_message"]
    assert runs["slow"]["id"] == slow
    elapsed = gone - died
    print(f"driver death to its Jobs deleted and runs FAILED: {elapsed:.1f} s")
    assert elapsed <= 60
    assert any(root_id in r.orphans for r in rounds)
    pods_gone = _wait_for(
        lambda: not cloud.pods(f"sematic.dev/root-id={_label(root_id)}"), "pods gone", 30
    )
    print(f"... and its pods gone: {pods_gone - died:.1f} s")


def test_a_deleted_driver_job_is_reaped_by_the_next_sematic_runs(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe

    root_id = cloudpipe.slow_pipeline(6, 600.0).resolve(cloud.resolver(tmp_path))
    _wait_running(cloud, root_id, "slow")
    batch: Any = client.BatchV1Api(cloud.api)
    batch.delete_namespaced_job(
        f"sematic-driver-{_label(root_id)[:40]}", "default", propagation_policy="Background"
    )
    deleted = time.monotonic()
    messages = []
    deadline = deleted + 60  # the reaper waits 30 s after a root is recorded for its Job
    while not _reaped(cloud, root_id):
        assert time.monotonic() < deadline, "`sematic runs` did not reap the pipeline"
        messages.append(cloud.cli_stderr(tmp_path, "runs"))
        time.sleep(2)
    print(f"driver Job deleted to reaped by `sematic runs`: {time.monotonic() - deleted:.1f} s")
    assert any(f"pipeline {root_id} failed" in m for m in messages), messages
    run = cloud.run(root_id)
    assert run["state"] == "FAILED" and "is gone (it was deleted)" in run["exception_message"]


def test_cluster_settings_can_name_an_existing_key_secret(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe

    core: Any = client.CoreV1Api(cloud.api)
    name = "team-sematic-key"
    body = {"metadata": {"name": name}, "stringData": {"api-key": KEY}}
    try:
        core.create_namespaced_secret("default", body)
    except client.ApiException as error:
        if error.status != 409:
            raise
    settings: ClusterSettings = dataclasses.replace(cloud.cluster, api_key_secret=name)
    root_id = cloudpipe.parity_pipeline(2).resolve(cloud.resolver(tmp_path, cluster=settings))
    try:
        assert cloud.wait(root_id) == "RESOLVED", cloud.graph(root_id)
        assert _secret(cloud, key_secret_name(root_id)) is None  # none created
        (driver,) = cloud.jobs(f"sematic.dev/role=driver,sematic.dev/root-id={_label(root_id)}")
        (container,) = driver.spec.template.spec.containers
        assert _key_env(container).value_from.secret_key_ref.name == name
        assert KEY not in cloud.everything_of(root_id)
    finally:
        core.delete_namespaced_secret(name, "default")


def test_a_rerun_from_the_server_runs_as_a_driver_job_on_the_recorded_image(
    cloud: KeyedCloud, tmp_path: Path
) -> None:
    import cloudpipe

    root_id = cloudpipe.parity_pipeline(3).resolve(cloud.resolver(tmp_path))
    assert cloud.wait(root_id) == "RESOLVED", cloud.graph(root_id)
    old = cloud.graph(root_id)
    metadata, _ = open_http_stores(cloud.server.url, KEY)
    try:  # what the server's start_rerun does, here over the server's API
        rerun = ClusterRerun(metadata, cloud.cluster, server_url=cloud.server.url, api_key=KEY,
                             kubeconfig=cloud.kubeconfig)  # fmt: skip
        new_id = rerun(root_id, old["total"]["id"])
    finally:
        metadata.close()
    assert cloud.wait(new_id) == "RESOLVED", cloud.graph(new_id)
    assert cloud.output(new_id, int) == 5
    new = cloud.graph(new_id)
    assert new["parity_pipeline"]["inputs"] == old["parity_pipeline"]["inputs"]
    driver_image = old["parity_pipeline"]["container_image"]
    assert driver_image and new["parity_pipeline"]["container_image"] == driver_image
    (driver,) = cloud.jobs(f"sematic.dev/role=driver,sematic.dev/root-id={_label(new_id)}")
    assert driver.spec.template.spec.containers[0].image == driver_image
    assert new["total"]["container_image"] == cloud.images.images["cuda"]
    assert KEY not in cloud.everything_of(new_id)
