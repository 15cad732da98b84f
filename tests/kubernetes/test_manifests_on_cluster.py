"""Job manifests on the real cluster: resources, secrets as variables and files, a
memory-backed /dev/shm, and the failures a function's requirements can cause
(Unschedulable with the scheduler's message, OOMKilled)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sematic import KubernetesRequirements, KubernetesSecret
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from tests.harness.cluster import BUSYBOX_IMAGE, Cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(kubernetes_cluster: Cluster) -> Iterator[Any]:
    from kubernetes import config

    client = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    yield client
    client.close()


def run_job(api: Any, cluster: Cluster, command: str, wanted: KubernetesRequirements) -> str:
    """Submits a busybox Job; returns its name (deleted by the caller's cleanup)."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    manifest = job_manifest(
        name=name,
        image=cluster.image(BUSYBOX_IMAGE),
        command=["/bin/sh", "-c", command],
        settings=ClusterSettings(host_network=cluster.local),
        requirements=wanted,
        labels={"sematic.dev/test": name},
    )
    manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    client.BatchV1Api(api).create_namespaced_job("default", manifest)
    return name


def wait_pod(api: Any, name: str, done: Any, timeout: float = 120) -> Any:
    from kubernetes import client

    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
        if pods and done(pods[0]):
            return pods[0]
        time.sleep(0.3)
    raise AssertionError(f"the pod of {name} did not get there in {timeout} s: {pods}")


def finished(pod: Any) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


@pytest.fixture
def cleanup(api: Any) -> Iterator[list[str]]:
    from kubernetes import client

    names: list[str] = []
    yield names
    for name in names:
        client.BatchV1Api(api).delete_namespaced_job(
            name, "default", propagation_policy="Background"
        )


def test_resources_secrets_and_shared_memory_reach_the_container(
    api: Any, kubernetes_cluster: Cluster, cleanup: list[str]
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    secret = f"s-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name=secret),
                        string_data={"token": "t0ken", "config": "a=1"}),
    )  # fmt: skip
    try:
        wanted = KubernetesRequirements(
            requests={"cpu": "100m", "memory": "32Mi"},
            limits={"memory": "64Mi"},
            secrets=(KubernetesSecret(name=secret, environment={"token": "TOKEN"},
                                      files={"config": "/etc/app/config"}),),
            shared_memory="16Mi",
            labels={"team": "ml"},
        )  # fmt: skip
        name = run_job(
            api, kubernetes_cluster,
            'echo "$TOKEN"; cat /etc/app/config; echo; '
            "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3",
            wanted,
        )  # fmt: skip
        cleanup.append(name)
        pod = wait_pod(api, name, finished)
        log = core.read_namespaced_pod_log(pod.metadata.name, "default")
        assert pod.status.phase == "Succeeded", log
        assert log.splitlines() == ["t0ken", "a=1", "tmpfs"]
        resources = pod.spec.containers[0].resources
        assert resources.requests == {"cpu": "100m", "memory": "32Mi"}
        assert resources.limits == {"memory": "64Mi"}
        assert pod.metadata.labels["team"] == "ml"
    finally:
        core.delete_namespaced_secret(secret, "default")


def test_a_node_selector_nothing_matches_is_unschedulable_with_the_reason(
    api: Any, kubernetes_cluster: Cluster, cleanup: list[str]
) -> None:
    wanted = KubernetesRequirements(node_selector={"sematic.dev/pool": "nowhere"})
    name = run_job(api, kubernetes_cluster, "true", wanted)
    cleanup.append(name)

    def unschedulable(pod: Any) -> bool:
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in pod.status.conditions or []
        )

    pod = wait_pod(api, name, unschedulable, timeout=60)
    (condition,) = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert condition.status == "False"
    # 1.20 says "node affinity", later versions "node affinity/selector"
    assert re.search(
        r"didn't match (Pod's )?node (affinity|selector)", condition.message
    ), condition.message


def test_exceeding_the_memory_limit_is_oomkilled(
    api: Any, kubernetes_cluster: Cluster, cleanup: list[str]
) -> None:
    wanted = KubernetesRequirements(requests={"memory": "16Mi"}, limits={"memory": "16Mi"})
    # A 64 MB shell variable: far over the limit.
    name = run_job(api, kubernetes_cluster, "x=$(head -c 64000000 /dev/zero | tr '\\0' a)", wanted)
    cleanup.append(name)
    pod = wait_pod(api, name, finished)
    state = pod.status.container_statuses[0].state
    assert pod.status.phase == "Failed"
    assert state.terminated is not None and state.terminated.reason == "OOMKilled", state
