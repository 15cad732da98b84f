"""The local single-node Kubernetes (tests/harness/cluster.py): warm start, memory, a Job, stop.

Prints, for --cycles start/stop cycles with the binaries already built:
- start: from nothing running to the node Ready and the default service account there
  (goal < 30 s), against the goal;
- memory: the summed RSS of every cluster process (registry, etcd, control plane,
  containerd, kubelet, shims) once Ready;
- a hostNetwork busybox Job from submit to Complete, the image already pulled;
- stop: everything stopped and removed.
Needs scripts/setup and a built scripts/kubernetes-binaries (the test command runs both).
Usage: .venv/bin/python benchmarks/cluster_start.py [--cycles 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.cluster import BUSYBOX_IMAGE, Cluster, cluster_dir, start, stop  # noqa: E402

GOAL_START = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    if (cluster_dir() / "state.json").exists():
        raise SystemExit(f"a cluster runs in {cluster_dir()}: scripts/cluster stop first")
    starts, stops, memory, jobs, first_jobs = [], [], [], [], []
    for _ in range(args.cycles):
        began = time.perf_counter()
        cluster = start()
        starts.append(time.perf_counter() - began)
        try:
            first_jobs.append(_job(cluster))  # pulls the image
            memory.append(_cluster_rss())
            jobs.append(statistics.median(_job(cluster) for _ in range(3)))
        finally:
            began = time.perf_counter()
            stop()
            stops.append(time.perf_counter() - began)
    print(f"{'':<36}{'median':>10}{'all runs':>28}")
    _row("start, warm binaries (s)", starts)
    ratio = statistics.median(starts) / GOAL_START
    print(f"{'  goal (s)':<36}{GOAL_START:>10.1f}   start/goal {ratio:.2f}")
    _row("cluster RSS when Ready (MB)", memory)
    _row("Job submit -> Complete, 1st (s)", first_jobs)
    _row("Job submit -> Complete, cached (s)", jobs)
    _row("stop (s)", stops)


def _row(label: str, values: list[float]) -> None:
    shown = ", ".join(f"{v:.2f}" for v in values)
    print(f"{label:<36}{statistics.median(values):>10.2f}{shown:>28}")


def _cluster_rss() -> float:
    """Summed RSS (MB) of the processes started from the cluster's folder and those in
    its node's mount namespace (containerd, kubelet, shims, pause, ...)."""
    folder = str(cluster_dir())
    namespaces = set()
    total = 0
    pids = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
    for proc in pids:
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if folder in command and "node.sh" in command:
            namespaces.add(_namespace(proc))
    for proc in pids:
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
            ours = folder in command or _namespace(proc) in namespaces
            if ours:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _namespace(proc: Path) -> str:
    try:
        return str((proc / "ns" / "mnt").readlink())
    except OSError:
        return ""


def _job(cluster: Cluster) -> float:
    from kubernetes import client, config

    api = config.new_client_from_config(str(cluster.kubeconfig))
    batch = client.BatchV1Api(api)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    pod = client.V1PodSpec(
        restart_policy="Never",
        host_network=True,
        automount_service_account_token=False,
        containers=[client.V1Container(name="main", image=cluster.image(BUSYBOX_IMAGE),
                                       command=["/bin/true"])],
    )  # fmt: skip
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(spec=pod)),
    )
    began = time.perf_counter()
    batch.create_namespaced_job("default", job)
    while True:
        status = batch.read_namespaced_job_status(name, "default").status
        if status.succeeded or status.failed:
            break
        time.sleep(0.05)
    took = time.perf_counter() - began
    batch.delete_namespaced_job(name, "default", propagation_policy="Background")
    api.close()
    if not status.succeeded:
        raise SystemExit(f"the Job {name} failed")
    return took


if __name__ == "__main__":
    main()
