"""What a pod, as the API server returns it, says of the attempt it ran."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes.client import (
    V1Container,
    V1ContainerState,
    V1ContainerStateRunning,
    V1ContainerStateTerminated,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1PodStatus,
    V1ResourceRequirements,
)
from sematic.core.usage import NODE_TYPE_LABEL
from sematic.kubernetes.watcher import pod_attempt

STARTED = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
FINISHED = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def _pod(state: V1ContainerState | None, **spec: object) -> V1Pod:
    statuses = None
    if state is not None:
        statuses = [
            V1ContainerStatus(
                name="worker", image="reg/p:t", image_id=f"reg/p@{DIGEST}", ready=False,
                restart_count=0, state=state,
            )
        ]  # fmt: skip
    return V1Pod(
        metadata=V1ObjectMeta(name="sematic-r-1-abcde", labels={"job-name": "sematic-r-1"}),
        spec=V1PodSpec(
            containers=[
                V1Container(
                    name="worker",
                    image="reg/p:t",
                    resources=V1ResourceRequirements(
                        requests={"cpu": "250m", "memory": "64Mi"}, limits={"memory": "64Mi"}
                    ),
                )
            ],
            **spec,  # type: ignore[arg-type]
        ),
        status=V1PodStatus(phase="Failed", container_statuses=statuses),
    )


def test_a_finished_pod_gives_its_names_node_image_resources_and_times() -> None:
    ended = V1ContainerState(
        terminated=V1ContainerStateTerminated(
            exit_code=137, reason="OOMKilled", started_at=STARTED, finished_at=FINISHED
        )
    )
    attempt = pod_attempt(_pod(ended, node_name="node-1"))
    assert attempt == {
        "job": "sematic-r-1", "pod": "sematic-r-1-abcde", "node": "node-1", "image": "reg/p:t",
        "requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "64Mi"},
        "image_digest": DIGEST, "exit_code": 137, "started_at": STARTED.timestamp(),
        "finished_at": FINISHED.timestamp(),
    }  # fmt: skip


def test_a_running_pod_has_started_and_a_selected_node_type_is_its_type() -> None:
    running = V1ContainerState(running=V1ContainerStateRunning(started_at=STARTED))
    attempt = pod_attempt(_pod(running, node_selector={NODE_TYPE_LABEL: "g4dn.xlarge"}))
    assert attempt["started_at"] == STARTED.timestamp() and "finished_at" not in attempt
    assert attempt["node_type"] == "g4dn.xlarge"


def test_a_pending_pod_gives_what_it_has_and_a_bare_one_its_names() -> None:
    attempt = pod_attempt(_pod(None))
    assert attempt["node"] is None and "started_at" not in attempt
    assert attempt["requests"] == {"cpu": "250m", "memory": "64Mi"}
    bare = V1Pod(metadata=V1ObjectMeta(name="p", labels={"job-name": "j"}))
    assert pod_attempt(bare) == {"job": "j", "pod": "p"}
