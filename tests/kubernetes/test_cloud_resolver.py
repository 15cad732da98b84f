"""CloudResolver on the real cluster, both ways: ``detach=False`` drives the pipeline from
this process, ``detach=True`` from a driver Job. ``inline=False`` functions run as Jobs on
their base's image (built by ``sematic build`` into the cluster's registry); runs are
recorded through a Sematic server the pods reach over the host network.

Failure causes exercised: a function's exception, Unschedulable (a node selector nothing
matches), OOMKilled (a memory limit), retries of a listed exception, a missing tag, a
missing server, an image not in the registry, a cancel mid-run, a killed driver pod."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sematic
from kubernetes import client
from sematic.core.errors import (
    ConfigurationError,
    ImageNotFoundError,
    WorkerFailedError,
    WorkerLostError,
)
from sematic.core.images import ImageMap
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings
from tests.harness.cloud import INSTANCE_TYPE
from tests.harness.cluster import Cluster
from tests.harness.registry import RegistryServer
from tests.kubernetes.cloudkit import Cloud, cloud_on
from tests.kubernetes.cloudkit import label as _label
from tests.kubernetes.cloudkit import wait_running as _wait_running
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packaged(
    kubernetes_cluster: Cluster,
    cluster_registry: RegistryServer,
    server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cloud]:
    with cloud_on(Cloud, kubernetes_cluster, cluster_registry, server, tmp_path_factory) as made:
        yield made


@pytest.fixture(scope="module", params=[True, False], ids=["warm-pods", "job-per-step"])
def cloud(packaged: Cloud, request: pytest.FixtureRequest) -> Cloud:
    """Every test both ways: steps in warm pods (the default), and a Job per step."""
    return dataclasses.replace(packaged, warm=request.param)


# -- detach=False -----------------------------------------------------------------------


def test_each_inline_false_function_runs_in_a_job_on_its_base(cloud: Cloud, tmp_path: Path) -> None:
    import seed_pipeline  # type: ignore[import-not-found]

    future = seed_pipeline.pipeline(8)
    keeping = cloud.resolver(tmp_path, detach=False, cluster=cloud.keeping)  # to read pods
    value = future.resolve(keeping)
    assert value == "mean 0.2734 computed on cuda"  # train_model ran on the cuda base
    runs = cloud.graph(future.id)
    assert {name: run["state"] for name, run in runs.items()} == {
        "pipeline": "RESOLVED", "load": "RESOLVED", "featurize": "RESOLVED",
        "train_model": "RESOLVED",
    }  # fmt: skip
    assert runs["featurize"]["container_image"] == cloud.images.images["default"]
    assert runs["train_model"]["container_image"] == cloud.images.images["cuda"]
    assert runs["load"]["container_image"] is None  # inline: ran in this process
    # Each run in a pod records it: names, node, image digest, resources, times, events.
    (attempt,) = runs["featurize"]["execution"]["attempts"]
    pod = cloud.pods(f"job-name={attempt['job']}")[0]
    assert pod.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "64Mi"}
    trained_in = runs["train_model"]["execution"]["attempts"][0]["job"]
    trained = cloud.pods(f"job-name={trained_in}")[0]
    assert trained.spec.node_selector == {INSTANCE_TYPE: "g4dn.xlarge"}
    assert attempt["pod"] == pod.metadata.name and attempt["node"] == pod.spec.node_name
    assert attempt["job"] == pod.metadata.labels["job-name"]
    assert attempt["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert attempt["image_digest"].startswith("sha256:")
    assert cloud.images.images["default"].endswith(attempt["image_digest"])
    assert (attempt["ended"], attempt["exit_code"]) == ("Succeeded", 0)
    if cloud.warm:  # the step's own process, in a pod that served the pipeline's steps
        assert attempt["warm"] is True and "sematic-warm-" in attempt["job"]
    else:  # the step's own pod: what the scheduler and kubelet said of it
        assert "Scheduled" in [event["reason"] for event in attempt["events"]]
    seconds = attempt["finished_at"] - attempt["started_at"]
    usage = runs["featurize"]["execution"]["usage"]
    assert usage["seconds"] == pytest.approx(seconds, abs=1e-3)
    # A warm pod's step times itself; a container's times are whole seconds (a step that
    # starts and ends within one second counts 0).
    assert seconds > 0 if cloud.warm else seconds >= 0
    assert usage["cpu_seconds"] == pytest.approx(0.1 * seconds, abs=1e-3)
    assert usage["memory_gib_seconds"] == pytest.approx(seconds / 16, abs=1e-3)  # 64Mi
    assert runs["train_model"]["execution"]["attempts"][0]["node_type"] == "g4dn.xlarge"
    assert runs["load"]["execution"] is None  # inline: its times say how long it ran here
    listed = cloud.cli(tmp_path, "runs", "--all", "--limit", "500")
    assert f"Kubernetes job featurize (run {runs['featurize']['id']}):" in listed
    _print_accounting("seed 003, detach=False", runs)


def _step_jobs(cloud: Cloud, run_id: str) -> list[Any]:
    """The Jobs the run ``run_id`` ran in: its own, or the warm pods of its pipeline."""
    if not cloud.warm:
        return list(cloud.jobs(f"sematic.dev/run-id={_label(run_id)}"))
    root = cloud.run(run_id)["root_id"]
    return list(cloud.jobs(f"sematic.dev/role=warm,sematic.dev/root-id={_label(root)}"))


def _print_accounting(what: str, runs: dict[str, dict[str, Any]]) -> None:
    """Each run's usage and the pipeline's sum, for the closing note (-s)."""
    total: dict[str, float] = {}
    for name, run in sorted(runs.items()):
        usage = (run["execution"] or {}).get("usage")
        print(f"{what}: {name}: {usage or 'no pod; ran ' + _ran(run)}")
        for key, value in (usage or {}).items():
            total[key] = total.get(key, 0.0) + value
    print(f"{what}: total {total}")


def _ran(run: dict[str, Any]) -> str:
    return f"{run['ended_at'] - run['started_at']:.3f} s here" if run["ended_at"] else "?"


def test_a_failure_in_a_pod_is_the_functions_own_exception(cloud: Cloud, tmp_path: Path) -> None:
    import cloudpipe  # type: ignore[import-not-found]

    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.retry_pipeline(3).resolve(
            cloud.resolver(tmp_path, detach=False, cluster=cloud.keeping)
        )
    cause = raised.value.__cause__
    assert isinstance(cause, ConnectionError) and "service down for 3" in str(cause), cause
    # RetrySettings lists ConnectionError with 2 retries: three attempts ran, each failed:
    # three Jobs, or three processes in one warm pod.
    run = cloud.run(raised.value.run_id)
    attempts = run["execution"]["attempts"]
    assert len(attempts) == 3
    if cloud.warm:
        assert len({a["job"] for a in attempts}) == 1 and len({a["pod"] for a in attempts}) == 1
    else:
        jobs = cloud.jobs(f"sematic.dev/run-id={_label(raised.value.run_id)}")
        assert sorted(job.metadata.name[-2:] for job in jobs) == ["-1", "-2", "-3"]
    assert run["state"] == "FAILED" and run["exception_type"] == "builtins.ConnectionError"


def test_a_node_selector_nothing_matches_fails_as_unschedulable(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.unschedulable_pipeline(1).resolve(
            # The pre-flight would refuse it before submitting: this is what an
            # autoscaled cluster (preflight="off") sees when no node comes.
            cloud.resolver(tmp_path, detach=False, unschedulable_after=2.0, preflight="off")
        )
    cause = raised.value.__cause__
    assert isinstance(cause, WorkerLostError) and cause.cause == "Unschedulable", cause
    assert "didn't match" in str(cause) and "node" in str(cause)
    run = cloud.run(raised.value.run_id)
    assert "Unschedulable" in run["exception_message"]  # what the CLI and the UI show
    # An infrastructure cause: retried twice by default; the third Job was the last (a warm
    # pod that never came is given up, and the next attempt gets a new one).
    last = r"sematic-warm-[a-z0-9]+-[a-z0-9]+-2" if cloud.warm else r"sematic-[a-z0-9]+-3"
    assert re.search(rf"in Job {last}, which ended without a result", str(cause)), cause
    assert not _step_jobs(cloud, raised.value.run_id)  # deleted
    attempts = cloud.run(raised.value.run_id)["execution"]["attempts"]
    assert [a["ended"] for a in attempts] == ["Unschedulable"] * 3
    assert all(a.get("started_at") is None for a in attempts)  # never ran: nothing used
    assert "FailedScheduling" in [e["reason"] for e in attempts[0]["events"]]


def test_a_step_found_while_running_that_no_node_can_take_fails_at_once(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The pre-flight before submitting sees only the steps the pipeline's code names; the
    driver checks the others as it meets them: nothing submitted, the run fails at once."""
    import cloudpipe

    started = time.monotonic()
    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.late_gpu_pipeline(1).resolve(cloud.resolver(tmp_path, detach=False))
    took = time.monotonic() - started
    cause = raised.value.__cause__
    assert isinstance(cause, ConfigurationError), cause
    assert "was not submitted" in str(cause) and "cloudpipe.on_a_gpu cannot be scheduled" in str(
        cause
    )
    assert "nvidia.com/gpu=1 but can allocate 0" in str(cause)
    assert not cloud.jobs(f"sematic.dev/run-id={_label(raised.value.run_id)}")  # none made
    assert cloud.run(raised.value.run_id)["state"] == "FAILED"
    print(f"a step found while running, refused after {took:.2f} s (resolve() to failure)")


def test_a_step_past_its_memory_limit_is_reported_oomkilled_and_not_retried(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.oom_pipeline(200).resolve(
            cloud.resolver(tmp_path, detach=False, cluster=cloud.keeping)
        )
    cause = raised.value.__cause__
    assert isinstance(cause, WorkerFailedError) and cause.cause == "OOMKilled", cause
    assert "out of memory (limit 40Mi)" in str(cause)
    assert "OOMKilled" in cloud.run(raised.value.run_id)["exception_message"]
    (attempt,) = cloud.run(raised.value.run_id)["execution"]["attempts"]
    assert (attempt["ended"], attempt["exit_code"]) == ("OOMKilled", 137)
    assert attempt["limits"]["memory"] == "40Mi" and "limit 40Mi" in attempt["message"]
    listed = cloud.cli(tmp_path, "runs", "--all", "--limit", "500")  # through the server
    (row,) = [line for line in listed.splitlines() if line.split()[:1] == [raised.value.run_id]]
    assert "FAILED" in row and "WorkerFailedError: the worker of hog()" in row
    # One Job (not retried), kept as its resolver asked: `sematic runs` (which deletes what
    # finished pipelines left) leaves it too.
    assert len(_step_jobs(cloud, raised.value.run_id)) == 1


def test_parity_same_value_and_artifact_ids_under_every_resolver(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    assert cloudpipe.parity_pipeline(5).resolve(sematic.SilentResolver()) == 30
    local_settings = LocalSettings(
        home=tmp_path / "local", database_url=f"sqlite:///{tmp_path / 'local.db'}",
        artifact_url=str(tmp_path / "artifacts"),
    )  # fmt: skip
    local = cloudpipe.parity_pipeline(5)
    assert local.resolve(sematic.LocalResolver(settings=local_settings)) == 30
    from sematic.storage.sql import SqlMetadataStore

    store = SqlMetadataStore(local_settings.database_url)
    try:
        local_runs = store.runs_of_root(local.id)
    finally:
        store.close()
    remote = cloudpipe.parity_pipeline(5)
    assert remote.resolve(cloud.resolver(tmp_path, detach=False)) == 30
    cloud_runs = cloud.graph(remote.id)  # by name: the squares share one, compare sets

    def artifacts(runs: list[dict[str, Any]]) -> dict[str, set[tuple[str, ...]]]:
        found: dict[str, set[tuple[str, ...]]] = {}
        for run in runs:
            ids = (*sorted(run["inputs"].values()), run["output"])
            found.setdefault(run["name"], set()).add(ids)
        return found

    graph = httpx.get(f"{cloud.server.url}/api/v1/runs/{remote.id}/graph").json()
    local_view = [{"name": r.name, "inputs": r.inputs, "output": r.output} for r in local_runs]
    assert artifacts(graph["runs"]) == artifacts(local_view)
    # Each pod's log was sent to the server, as the run's log.
    logs = {cloud.logs(r["id"]) for r in graph["runs"] if r["name"] == "square"}
    assert logs == {f"squaring {i}\n" for i in range(5)}
    assert len(local_runs) == len(cloud_runs) + 4  # five square runs share one name


def test_a_step_set_own_pod_gets_a_job_of_its_own(cloud: Cloud, tmp_path: Path) -> None:
    import cloudpipe

    future = cloudpipe.own_pod_pipeline(2)
    assert future.resolve(cloud.resolver(tmp_path, detach=False)) == [4, 9]
    graph = httpx.get(f"{cloud.server.url}/api/v1/runs/{future.id}/graph").json()["runs"]
    attempts = [r["execution"]["attempts"][0] for r in graph if r["name"] == "square"]
    kinds = sorted("warm" if a.get("warm") else "own" for a in attempts)
    assert kinds == (["own", "warm"] if cloud.warm else ["own", "own"])
    own = [a for a in attempts if not a.get("warm")]
    assert all(re.fullmatch(r"sematic-[a-z0-9]+-1", a["job"]) for a in own), own


def test_bad_settings_are_refused_before_anything_is_submitted(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    before = len(cloud.jobs("app.kubernetes.io/managed-by=sematic"))
    only_default = ImageMap({"default": cloud.images.images["default"]})
    with pytest.raises(ConfigurationError, match="cuda"):
        cloudpipe.parity_pipeline(2).resolve(
            CloudResolver(images=only_default, cluster=cloud.cluster, kubeconfig=cloud.kubeconfig,
                          settings=cloud.resolver(tmp_path).settings)
        )  # fmt: skip
    no_server = LocalSettings(home=tmp_path, database_url="unused://", artifact_url="unused://")
    with pytest.raises(ConfigurationError, match="server_url"):
        cloudpipe.parity_pipeline(2).resolve(
            CloudResolver(images=cloud.images, settings=no_server, kubeconfig=cloud.kubeconfig)
        )
    default = cloud.images.images["default"]
    gone = default.rpartition("@")[0] + "@sha256:" + "0" * 64
    missing = ImageMap({"default": gone, "cuda": cloud.images.images["cuda"]},
                       insecure_registries=cloud.images.insecure_registries)  # fmt: skip
    resolver = cloud.resolver(tmp_path)
    with pytest.raises(ImageNotFoundError, match="0000000000"):
        cloudpipe.parity_pipeline(2).resolve(
            CloudResolver(images=missing, cluster=cloud.cluster, kubeconfig=cloud.kubeconfig,
                          settings=resolver.settings)
        )  # fmt: skip
    with pytest.raises(ConfigurationError, match="detach=True"):
        cloudpipe.parity_pipeline(cloudpipe.square(2)).resolve(resolver)  # a future argument
    assert len(cloud.jobs("app.kubernetes.io/managed-by=sematic")) == before


# -- detach=True ------------------------------------------------------------------------


def test_the_seed_example_runs_detached_and_attached(cloud: Cloud, tmp_path: Path) -> None:
    """``pipeline(...).resolve(CloudResolver())`` verbatim, as a user's script."""
    if not cloud.warm:
        pytest.skip("the user's script verbatim: CloudResolver()'s default, warm pods")
    env = cloud.environment(tmp_path)
    script = str(cloud.project / "seed_pipeline.py")
    started = time.monotonic()
    detached = subprocess.run(
        [sys.executable, script, "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert detached.returncode == 0, detached.stderr
    returned_after = time.monotonic() - started
    root_id = detached.stdout.strip()
    assert f"{cloud.server.url}/#/runs/{root_id}" in detached.stderr
    assert cloud.run(root_id)["state"] in {"CREATED", "SCHEDULED", "RESOLVED"}
    assert cloud.wait(root_id) == "RESOLVED", cloud.graph(root_id)
    assert cloud.output(root_id, str) == "mean 0.2734 computed on cuda"
    runs = cloud.graph(root_id)
    assert runs["load"]["container_image"] == cloud.images.images["default"]  # in the driver
    assert runs["train_model"]["container_image"] == cloud.images.images["cuda"]
    (driver_job,) = cloud.jobs(f"sematic.dev/role=driver,sematic.dev/root-id={_label(root_id)}")
    # The driver's pod is the pipeline's too: recorded on the root run, in its usage.
    root = cloud.run(root_id)
    (driver,) = root["execution"]["attempts"]
    assert driver["job"] == driver_job.metadata.name and driver["ended"] == "Succeeded"
    assert driver["finished_at"] > driver["started_at"] >= root["created_at"] - 1
    assert root["execution"]["usage"]["seconds"] > 0
    _print_accounting("seed 003, detach=True", runs | {"pipeline": root})
    attached = subprocess.run(
        [sys.executable, script, "8", "--no-detach"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout.strip() == "mean 0.2734 computed on cuda"
    print(f"detach=True returned after {returned_after:.2f} s")


def test_cancel_deletes_the_jobs_and_marks_unfinished_runs_canceled(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    root_id = cloudpipe.slow_pipeline(3, 300.0).resolve(cloud.resolver(tmp_path))
    slow = _wait_running(cloud, root_id, "slow")
    started = time.monotonic()
    assert "CANCELED" in cloud.cli(tmp_path, "cancel", root_id, "--wait", "30")
    runs = cloud.graph(root_id)
    assert runs["slow"]["state"] == "CANCELED" and runs["square"]["state"] == "RESOLVED"
    deadline = time.monotonic() + 30
    while _step_jobs(cloud, slow):
        assert time.monotonic() < deadline, "the slow step's Job was not deleted"
        time.sleep(0.2)
    print(f"canceled in {time.monotonic() - started:.2f} s")


def test_a_killed_driver_pod_reenters_without_rerunning_completed_steps(
    cloud: Cloud, tmp_path: Path
) -> None:
    import cloudpipe

    resolver = cloud.resolver(tmp_path, cluster=cloud.keeping)  # to count Jobs after
    root_id = cloudpipe.slow_pipeline(4, 8.0).resolve(resolver)
    _wait_running(cloud, root_id, "slow")
    driver = f"sematic.dev/role=driver,sematic.dev/root-id={_label(root_id)}"
    (first,) = cloud.pods(driver)
    core: Any = client.CoreV1Api(cloud.api)
    core.delete_namespaced_pod(first.metadata.name, "default", grace_period_seconds=0)
    assert cloud.wait(root_id) == "RESOLVED", cloud.graph(root_id)
    assert cloud.output(root_id, int) == 17
    names = {pod.metadata.name for pod in cloud.pods(driver)}
    assert first.metadata.name not in names and len(names) == 1  # a second driver pod
    runs = cloud.graph(root_id)
    if cloud.warm:  # the completed step did not run again; the one in flight did, in a new
        # pod (the new driver deleted its predecessor's warm pods)
        assert len(runs["square"]["execution"]["attempts"]) == 1
        warm = cloud.pods(f"sematic.dev/role=warm,sematic.dev/root-id={_label(root_id)}")
        assert runs["slow"]["execution"]["attempts"][0]["pod"] in {p.metadata.name for p in warm}
    else:
        for step in ("square", "slow"):  # neither ran again: one Job each, followed again
            assert len(cloud.jobs(f"sematic.dev/run-id={_label(runs[step]['id'])}")) == 1, step
    # The inline function ran again in the second driver pod; its log is that pod's.
    assert cloud.logs(root_id).startswith("slow_pipeline(4) in sematic-driver-")  # a pod name
    assert first.metadata.name not in cloud.logs(root_id)
    assert cloud.cli(tmp_path, "logs", root_id) == cloud.logs(root_id)


def test_ctrl_c_with_detach_false_deletes_the_jobs_and_cancels(
    cloud: Cloud, tmp_path: Path
) -> None:
    env = {**cloud.environment(tmp_path), "PYTHONPATH": str(cloud.project)}
    code = (
        "import cloudpipe\nfrom sematic import CloudResolver\n"
        "future = cloudpipe.slow_pipeline(5, 300.0)\nprint(future.id, flush=True)\n"
        f"future.resolve(CloudResolver(detach=False, warm_pods={cloud.warm}))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        root_id = process.stdout.readline().strip()
        slow = _wait_running(cloud, root_id, "slow")
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr, stderr
    runs = cloud.graph(root_id)
    assert {n: r["state"] for n, r in runs.items()} == {
        "slow_pipeline": "CANCELED", "square": "RESOLVED", "slow": "CANCELED"
    }  # fmt: skip
    assert not _step_jobs(cloud, slow)  # deleted before it exited
    print(f"Ctrl-C to exit: {time.monotonic() - started:.2f} s")
