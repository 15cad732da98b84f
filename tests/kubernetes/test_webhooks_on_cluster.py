"""Webhooks for pipelines in the cluster: a team server configured with a webhook posts how
each pipeline ended, whether its driver runs in a pod (detach=True) or here; nothing in the
pods knows the webhook's URL (its token stays on the server)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import sematic
from tests.harness.cluster import Cluster
from tests.harness.registry import RegistryServer
from tests.harness.webhooks import Receiver, webhook_receiver
from tests.kubernetes.cloudkit import Cloud, cloud_on
from tests.kubernetes.cloudkit import label as _label
from tests.unit.server.conftest import server_env, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def cloud(
    kubernetes_cluster: Cluster,
    cluster_registry: RegistryServer,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cloud]:
    home = tmp_path_factory.mktemp("server") / "home"
    env = server_env(home, SEMATIC_WEBHOOK_URL=receiver.url)  # pipelines' ends (the default)
    server = start_server(home, env=env)
    try:
        with cloud_on(
            Cloud, kubernetes_cluster, cluster_registry, server, tmp_path_factory
        ) as made:
            yield made
    finally:
        server.stop()


def test_a_pipeline_driven_in_a_pod_is_announced_once_by_the_server(
    cloud: Cloud, receiver: Receiver, tmp_path: Path
) -> None:
    env = cloud.environment(tmp_path)
    script = str(cloud.project / "seed_pipeline.py")
    submitted = subprocess.run(
        [sys.executable, script, "8"], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    root_id = submitted.stdout.strip()
    assert cloud.wait(root_id) == "RESOLVED"
    receiver.wait_for(1, timeout=30)
    (post,) = [p for p in receiver.posts if p["sematic"]["root_id"] == root_id]
    assert post["sematic"]["state"] == "RESOLVED" and post["sematic"]["run_id"] == root_id
    assert "pipeline" in post["text"] and root_id in post["text"]
    # The driver pod had no webhook setting: only the server posts.
    driver_pods = cloud.pods(f"sematic.dev/role=driver,sematic.dev/root-id={_label(root_id)}")
    assert driver_pods
    for pod in driver_pods:
        assert receiver.url not in json.dumps(pod.to_dict(), default=str)


def test_a_failed_pipeline_driven_from_here_is_announced_with_its_error(
    cloud: Cloud, receiver: Receiver, tmp_path: Path
) -> None:
    import cloudpipe  # type: ignore[import-not-found]

    before = len(receiver.posts)
    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.oom_pipeline(200).resolve(cloud.resolver(tmp_path, detach=False))
    receiver.wait_for(before + 1, timeout=30)
    root = cloud.run(raised.value.run_id)["root_id"]  # the step that failed: hog
    (post,) = [p for p in receiver.posts[before:] if p["sematic"]["root_id"] == root]
    assert post["sematic"]["state"] == "NESTED_FAILED" and post["sematic"]["run_id"] == root
    assert "oom_pipeline" in post["text"]
