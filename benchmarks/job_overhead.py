"""Kubernetes Job overhead on the local cluster: what Sematic adds around a pod's own run.

For --jobs busybox Jobs that print the kernel's boot-time clock (/proc/uptime, shared
with the host) and exit, run one after the other:
- submit -> container running: create_namespaced_job until the container's first
  instruction (the cluster's own start-up path: API, Job controller, scheduler,
  kubelet, containerd);
- container done -> noticed: the container's last instruction until JobWatcher returns
  the outcome (what the watch adds), side by side with a loop that polls the Job's
  status every second (a simple poller's figure; Sematic's backoff grows to 60 s).
Then --parallel Jobs submitted at once: wall time until all are noticed.
Usage: .venv/bin/python benchmarks/job_overhead.py [--jobs 10] [--parallel 10]
(starts the local cluster if it is not running, and stops it after).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sematic.kubernetes.manifests import ClusterSettings, job_manifest  # noqa: E402
from sematic.kubernetes.watcher import JobWatcher  # noqa: E402
from tests.harness.cluster import BUSYBOX_IMAGE, Cluster, cluster_dir, start, stop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args()
    ours = not (cluster_dir() / "state.json").exists()
    cluster = start()
    try:
        _measure(cluster, args.jobs, args.parallel)
    finally:
        if ours:
            stop()


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _manifest(cluster: Cluster) -> dict[str, Any]:
    manifest = job_manifest(
        name=f"b-{uuid.uuid4().hex[:10]}",
        image=cluster.image(BUSYBOX_IMAGE),
        command=["/bin/sh", "-c", "cut -d' ' -f1 /proc/uptime"],
        settings=ClusterSettings(host_network=True),
    )
    manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    return manifest


def _measure(cluster: Cluster, jobs: int, parallel: int) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(str(cluster.kubeconfig))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    watcher = JobWatcher(api, "default")
    try:
        watcher.submit(_manifest(cluster))  # pulls the image once
        watcher.next_outcome(120)
        started, noticed, polled = [], [], []
        for _ in range(jobs):
            submitted = _boottime()
            name = watcher.submit(_manifest(cluster))
            outcome = watcher.next_outcome(120)
            seen = _boottime()
            assert outcome is not None and outcome.succeeded, outcome
            ran = _ran_at(core, name)
            started.append(ran - submitted)
            noticed.append(seen - ran)
            batch.delete_namespaced_job(name, "default", propagation_policy="Background")
        for _ in range(jobs):
            manifest = _manifest(cluster)
            name = manifest["metadata"]["name"]
            batch.create_namespaced_job("default", manifest)
            while not batch.read_namespaced_job_status(name, "default").status.succeeded:
                time.sleep(1.0)
            seen = _boottime()
            polled.append(seen - _ran_at(core, name))
            batch.delete_namespaced_job(name, "default", propagation_policy="Background")
        began = _boottime()
        names = {watcher.submit(_manifest(cluster)) for _ in range(parallel)}
        while watcher.running():
            outcome = watcher.next_outcome(120)
            assert outcome is not None and outcome.succeeded, outcome
        wall = _boottime() - began
        for name in names:
            batch.delete_namespaced_job(name, "default", propagation_policy="Background")
    finally:
        watcher.close()
        api.close()
    print(f"{'':<42}{'median':>9}{'min':>9}{'max':>9}")
    _row("submit -> container running (s)", started)
    _row("container done -> noticed, watch (s)", noticed)
    _row("container done -> noticed, 1 s poll (s)", polled)
    ratio = statistics.median(polled) / statistics.median(noticed)
    print(f"{'  poll / watch':<42}{ratio:>8.1f}x")
    print(f"{parallel} Jobs at once, submit -> all noticed: {wall:.2f} s "
          f"({wall / parallel:.2f} s per Job)")  # fmt: skip


def _ran_at(core: Any, job: str) -> float:
    pods = core.list_namespaced_pod("default", label_selector=f"job-name={job}").items
    return float(core.read_namespaced_pod_log(pods[0].metadata.name, "default").strip())


def _row(label: str, values: list[float]) -> None:
    print(f"{label:<42}{statistics.median(values):>9.3f}{min(values):>9.3f}{max(values):>9.3f}")


if __name__ == "__main__":
    main()
