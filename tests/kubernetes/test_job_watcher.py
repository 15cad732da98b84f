"""JobWatcher on the real cluster: each way a Job can end is noticed through the watch
and named (success, non-zero exit with the last log lines, OOMKilled, image pull failure,
unschedulable with the scheduler's message, deadline exceeded, deleted)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sematic import KubernetesRequirements
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from sematic.kubernetes.watcher import JobOutcome, JobWatcher
from tests.harness.cluster import BUSYBOX_IMAGE, Cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def watcher(kubernetes_cluster: Cluster) -> Iterator[JobWatcher]:
    from kubernetes import config

    api = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    jobs = JobWatcher(api, "default", unschedulable_after=3)
    submitted: list[str] = []
    original = jobs.submit

    def submit(manifest: dict[str, Any]) -> str:
        submitted.append(original(manifest))
        return submitted[-1]

    jobs.submit = submit  # type: ignore[method-assign]
    yield jobs
    for name in submitted:
        jobs.delete(name)
    jobs.close()
    api.close()


@pytest.fixture
def core(kubernetes_cluster: Cluster) -> Iterator[Any]:
    """The cluster's core API (pods), on a client of its own."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def pod_of(core: Any, job_name: str, *, running: bool = False, timeout: float = 120) -> str:
    """The name of the Job's pod (once it runs, if ``running``); fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={job_name}").items
        found = [p for p in pods if not running or p.status.phase == "Running"]
        if found:
            return str(found[0].metadata.name)
        state = [(p.metadata.name, p.status.phase) for p in pods]
        assert time.monotonic() < deadline, f"no {'running ' * running}pod of {job_name}: {state}"
        time.sleep(0.2)


# Waits for RELEASE to appear in its container (at most 300 s, then fails with code 9).
RELEASE = "/dev/shm/sematic-release"
WAITS_FOR_RELEASE = (
    f"i=0; until [ -e {RELEASE} ]; do i=$((i+1)); [ $i -le 3000 ] || exit 9; sleep 0.1; done"
)


def release(core: Any, pod: str, timeout: float = 60) -> None:
    """Creates RELEASE in the pod's container (``kubectl exec``), within ``timeout`` s."""
    from kubernetes.stream import stream

    session = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        "default",
        command=["/bin/sh", "-c", f"touch {RELEASE} && echo released"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,  # so that its socket is closed here (it is not otherwise)
    )
    try:
        session.run_forever(timeout=timeout)
        assert not session.is_open(), f"the exec in {pod} did not end within {timeout} s"
        said = session.read_stdout(timeout=0) + session.read_stderr(timeout=0)
        assert session.returncode == 0 and "released" in said, said  # (read after those)
    finally:
        session.close()  # a no-op once the server closed the websocket: so, its socket too
        if session.sock is not None:
            session.sock.shutdown()


def job(
    cluster: Cluster,
    command: str,
    wanted: KubernetesRequirements | None = None,
    *,
    image: str | None = None,
    deadline: int | None = None,
) -> dict[str, Any]:
    manifest = job_manifest(
        name=f"w-{uuid.uuid4().hex[:10]}",
        image=image or cluster.image(BUSYBOX_IMAGE),
        command=["/bin/sh", "-c", command],
        settings=ClusterSettings(host_network=cluster.local),
        requirements=wanted,
        deadline_seconds=deadline,
    )
    manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    return manifest


def outcome(watcher: JobWatcher, name: str, timeout: float = 120) -> JobOutcome:
    ended = watcher.next_outcome(timeout)
    assert ended is not None, f"{name} did not end within {timeout} s"
    assert ended.name == name
    return ended


def test_success_and_a_failure_with_its_last_lines(
    watcher: JobWatcher, kubernetes_cluster: Cluster
) -> None:
    good = watcher.submit(job(kubernetes_cluster, "echo fine"))
    ended = outcome(watcher, good)
    assert ended.succeeded and ended.pod is not None and ended.pod.startswith(f"{good}-")
    assert watcher.pod_log(ended.pod) == "fine\n"  # what becomes the run's log
    lines = "; ".join(f"echo line {i}" for i in range(30))
    bad = watcher.submit(job(kubernetes_cluster, f"{lines}; exit 3"))
    ended = outcome(watcher, bad)
    assert ended.cause == "ExitCode" and not ended.infrastructure
    assert ended.message.startswith("the container exited with code 3; its last lines:\n")
    assert ended.message.splitlines()[1:] == [f"line {i}" for i in range(10, 30)]


def test_two_jobs_in_parallel_end_in_the_order_they_finish(
    watcher: JobWatcher, kubernetes_cluster: Cluster, core: Any
) -> None:
    """The first submitted ends last: it waits until the test releases it, which it does
    only once the second one's outcome came (no timing margin decides the order)."""
    slow = watcher.submit(job(kubernetes_cluster, WAITS_FOR_RELEASE))
    fast = watcher.submit(job(kubernetes_cluster, "true"))
    assert outcome(watcher, fast).succeeded
    assert sorted(watcher.running()) == [slow]
    release(core, pod_of(core, slow, running=True))
    assert outcome(watcher, slow).succeeded
    assert watcher.running() == []


def test_out_of_memory_is_oomkilled(watcher: JobWatcher, kubernetes_cluster: Cluster) -> None:
    wanted = KubernetesRequirements(limits={"memory": "16Mi"})
    name = watcher.submit(
        job(kubernetes_cluster, "x=$(head -c 64000000 /dev/zero | tr '\\0' a)", wanted)
    )
    ended = outcome(watcher, name)
    assert ended.cause == "OOMKilled", ended
    assert ended.message == "the container ran out of memory (limit 16Mi) and was killed"


def test_a_missing_image_is_an_image_pull_failure(
    watcher: JobWatcher, kubernetes_cluster: Cluster
) -> None:
    missing = kubernetes_cluster.image("sematic/nowhere:missing")
    name = watcher.submit(job(kubernetes_cluster, "true", image=missing))
    ended = outcome(watcher, name)
    assert ended.cause == "ImagePullFailed" and ended.infrastructure
    assert ended.message.startswith(f"cannot pull the image {missing}: ")


def test_unschedulable_after_the_grace_with_the_schedulers_message(
    watcher: JobWatcher, kubernetes_cluster: Cluster
) -> None:
    wanted = KubernetesRequirements(node_selector={"sematic.dev/pool": "nowhere"})
    name = watcher.submit(job(kubernetes_cluster, "true", wanted))
    ended = outcome(watcher, name)
    assert ended.cause == "Unschedulable" and ended.infrastructure
    # 1.20 says "node affinity", later versions "node affinity/selector"
    assert re.search(
        r"didn't match (Pod's )?node (affinity|selector)", ended.message
    ), ended.message


def test_a_deadline_ends_the_job(watcher: JobWatcher, kubernetes_cluster: Cluster) -> None:
    name = watcher.submit(job(kubernetes_cluster, "sleep 60", deadline=2))
    ended = outcome(watcher, name)
    assert ended.cause == "DeadlineExceeded" and not ended.infrastructure, ended
    assert "deadline" in ended.message.lower(), ended


def test_a_deleted_pod_is_noticed(
    watcher: JobWatcher, kubernetes_cluster: Cluster, core: Any
) -> None:
    name = watcher.submit(job(kubernetes_cluster, "sleep 60"))
    core.delete_namespaced_pod(pod_of(core, name), "default", grace_period_seconds=0)
    ended = outcome(watcher, name)
    assert ended.cause in ("Deleted", "ExitCode"), ended
