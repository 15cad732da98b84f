"""The driver's side of warm pods (``WarmPools``) against a real server's mailbox, with real
warm pods: each "Job" submitted here is ``sematic.worker.warm.serve`` on a thread of this
process (forking a real process per step), as the pod's container would run it. Only the
Kubernetes Job around it is left out: the cluster tests (tests/kubernetes) cover that."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sematic.core.errors import WorkerLostError
from sematic.core.jobs import InputRef, WarmPod, WorkerJob, WorkerResult
from sematic.core.ports import WorkerLoss
from sematic.kubernetes.warm import WarmPods, WarmPools, pool_key
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.http.mailbox import HttpMailbox
from sematic.storage.serialization import serialize
from sematic.worker.warm import serve
from tests.unit.server.conftest import Server, start_server

STEPS = """
import os, time
import sematic

@sematic.func(inline=False)
def pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getppid()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    running = start_server(folder / "home")
    yield running
    running.stop()


class _Pods:
    """Submits a warm pod's "Job": its serve loop on a thread, as its container runs it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.threads: dict[str, threading.Thread] = {}
        self.mailboxes: list[HttpMailbox] = []

    def manifest(self, name: str, channel: str, results: str) -> dict[str, Any]:
        pod = WarmPod(server_url=self.server.url, channel=channel, results=results)
        container = {"image": "img", "resources": {"requests": {"cpu": "1"}},
                     "env": [{"name": "SEMATIC_WARM_POOL", "value": pod.to_json()}]}  # fmt: skip
        return {"metadata": {"name": name}, "spec": {"template": {"spec": {
            "containers": [container]}}}}  # fmt: skip

    def submit(self, manifest: dict[str, Any]) -> str:
        name = manifest["metadata"]["name"]
        env = manifest["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
        mailbox = HttpMailbox(self.server.url)
        self.mailboxes.append(mailbox)
        thread = threading.Thread(target=serve, args=(WarmPod.from_json(env), mailbox))
        thread.start()
        self.threads[name] = thread
        return name


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FsspecArtifactStore:
    (tmp_path / "warmpool_steps.py").write_text(STEPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return FsspecArtifactStore(str(tmp_path / "artifacts"))


def _job(store: FsspecArtifactStore, run_id: str, seconds: float) -> dict[str, Any]:
    value = serialize(seconds, float)
    store.put(value.artifact_id, value.payload, type_key=value.type_description["type_key"])
    job = WorkerJob(
        run_id=run_id, root_id="r" * 32, function_path="warmpool_steps.pid",
        inputs={"seconds": InputRef(value.artifact_id, value.type_description)},
        artifact_url=store.url, result_path="unused",
    )  # fmt: skip
    return json.loads(job.to_json())


def _wait_ended(pools: WarmPools, woken: threading.Event, count: int) -> list[str]:
    ended: list[str] = []
    deadline = time.monotonic() + 60
    while len(ended) < count and time.monotonic() < deadline:
        woken.wait(0.5)
        woken.clear()
        while (one := pools.next_ended()) is not None:
            ended.append(one[0])
    assert len(ended) == count, ended
    return ended


def test_a_pool_grows_to_the_steps_at_once_reuses_idle_pods_and_stops_them(
    server: Server, code: FsspecArtifactStore
) -> None:
    woken = threading.Event()
    pods = _Pods(server)
    mailbox = HttpMailbox(server.url)
    pools = WarmPools(mailbox, "root", WarmPods(idle_seconds=1.0), woken.set)
    key = pool_key("img", None)

    def start(run_id: str, seconds: float) -> None:
        pools.start(run_id, _job(code, run_id, seconds), {}, key,
                    lambda name, channel: pods.manifest(name, channel, pools.results_channel),
                    pods.submit)  # fmt: skip

    try:
        for run in ("run1", "run2", "run3"):
            start(run, 0.5)  # three at once: three pods
        assert pools.pods_created == 3
        ended = _wait_ended(pools, woken, 3)
        parents = set()
        for run in ended:
            outcome = pools.outcome(run)
            assert isinstance(outcome, WorkerResult) and outcome.kind == "resolved", outcome
            attempt = pools.attempt(run)
            assert attempt is not None and attempt["warm"] and attempt["ended"] == "Succeeded"
            assert attempt["requests"] == {"cpu": "1"} and attempt["image"] == "img"
            parents.add(attempt["job"])
        assert len(parents) == 3
        for run in ("run4", "run5"):  # idle pods are reused: no new one
            start(run, 0.0)
        assert pools.pods_created == 3
        _wait_ended(pools, woken, 2)
        time.sleep(1.2)
        assert len(pools.idle_to_stop()) == 3  # idle for longer than idle_seconds
        for thread in pods.threads.values():
            thread.join(timeout=30)
            assert not thread.is_alive()  # each pod's loop ended on "stop"
        start("run6", 0.0)  # a stopping pod takes nothing: a fourth comes
        assert pools.pods_created == 4
        _wait_ended(pools, woken, 1)
    finally:
        assert {name for name, _ in pools.close()} == set(pods.threads)
        for thread in pods.threads.values():
            thread.join(timeout=30)
        for each in pods.mailboxes:
            each.close()


def test_a_pod_whose_job_ended_loses_its_step_and_a_killed_step_takes_its_pod(
    server: Server, code: FsspecArtifactStore
) -> None:
    woken = threading.Event()
    pods = _Pods(server)
    pools = WarmPools(HttpMailbox(server.url), "root2", WarmPods(), woken.set)
    submitted: list[dict[str, Any]] = []

    def start(run_id: str) -> None:
        pools.start(run_id, _job(code, run_id, 0.0), {}, pool_key("img", None),
                    lambda name, channel: pods.manifest(name, channel, pools.results_channel),
                    submitted.append)  # fmt: skip

    start("lost")
    start("killed")
    lost_job, killed_job = (m["metadata"]["name"] for m in submitted)
    gone = WorkerLoss("the pod was evicted", WorkerLostError)
    assert pools.pod_ended(lost_job, gone) == ["lost"]
    assert pools.outcome("lost") is gone and not pools.runs("lost")
    assert pools.kill("killed") == killed_job and not pools.runs("killed")
    assert pools.close() == []  # both pods gone with their steps


def test_a_pod_holding_gpus_is_stopped_after_gpu_idle_seconds(
    server: Server, code: FsspecArtifactStore
) -> None:
    woken = threading.Event()
    pods = _Pods(server)
    pools = WarmPools(HttpMailbox(server.url), "root3",
                      WarmPods(idle_seconds=60, gpu_idle_seconds=0.3), woken.set)  # fmt: skip

    def start(run_id: str, gpu: bool) -> None:
        def manifest(name: str, channel: str) -> dict[str, Any]:
            made = pods.manifest(name, channel, pools.results_channel)
            if gpu:
                container = made["spec"]["template"]["spec"]["containers"][0]
                container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
            return made

        pools.start(run_id, _job(code, run_id, 0.0), {}, pool_key("img", gpu), manifest,
                    pods.submit)  # fmt: skip

    try:
        start("on-gpu", gpu=True)
        start("on-cpu", gpu=False)
        _wait_ended(pools, woken, 2)
        time.sleep(0.5)
        (stopped,) = pools.idle_to_stop()  # only the GPU pod: its idle time is shorter
        gpu_job = next(n for n in pods.threads if n.endswith("-0"))
        assert stopped == gpu_job
    finally:
        pools.close()
        for thread in pods.threads.values():
            thread.join(timeout=30)
        for each in pods.mailboxes:
            each.close()
