"""The local single-node Kubernetes: it leaves the host as it found it, its node is Ready,
and a Job's container runs and its output is read back with the kubernetes client.

The lifecycle test runs first (conftest.py moves it to the front): it starts and stops
the cluster twice itself, so it needs no cluster running when it begins.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.harness.cluster import BUSYBOX_IMAGE, Cluster, cluster_dir, kernel_settings, start, stop

pytestmark = pytest.mark.slow


def host_state() -> dict[str, object]:
    """What the cluster must not change: kernel settings, mounts, cgroups, network links,
    iptables rules, and processes running from the cluster's folder."""
    sysctls = kernel_settings()
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = sorted(" ".join(line.split()[2:]) for line in mountinfo)
    root = Path("/sys/fs/cgroup")
    cgroups = sorted(
        str(path) for hierarchy in root.iterdir() if hierarchy.is_dir()
        for path in [hierarchy, *hierarchy.glob("*"), *hierarchy.glob("*/*")] if path.is_dir()
    )  # fmt: skip
    links = sorted(p.name for p in Path("/sys/class/net").iterdir())
    iptables = shutil.which("iptables-save")
    rules = (
        subprocess.run([iptables], capture_output=True, text=True, check=False).stdout
        if iptables
        else ""
    )
    rules = "\n".join(line for line in rules.splitlines() if not line.startswith("#"))
    folder = str(cluster_dir())
    ours = sorted(
        p.name for p in Path("/proc").iterdir()
        if p.name.isdigit() and folder in _cmdline(p)
    )  # fmt: skip
    return {"sysctls": sysctls, "mounts": mounts, "cgroups": cgroups, "links": links,
            "iptables": rules, "processes": ours}  # fmt: skip


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kubectl(cluster: Path, cache: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(cluster), "--cache-dir", str(cache), *arguments],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_start_stop_cycles_leave_the_host_as_it_was(tmp_path: Path) -> None:
    """The second cycle kills the node's namespace holder (SIGKILL) before stopping."""
    if (cluster_dir() / "state.json").exists():
        pytest.fail(
            f"a cluster is running in {cluster_dir()}: stop it (scripts/cluster stop) first",
            pytrace=False,
        )
    before = host_state()
    for cycle in range(2):
        cluster = start()
        nodes = kubectl(cluster.kubeconfig, tmp_path / "kube-cache", "get", "nodes", "--no-headers")
        assert nodes.split()[:2] == ["localhost", "Ready"], nodes
        assert start() == cluster  # idempotent: the running cluster is found again
        if cycle == 1:  # the node's namespace holder dies: stop still finds everything
            state = json.loads((cluster_dir() / "state.json").read_text())
            os.kill(state["processes"]["node"]["pid"], signal.SIGKILL)
        stop()
        assert not cluster_dir().exists()
        assert host_state() == before, f"cycle {cycle + 1} changed the host"
    stop()  # idempotent: nothing to stop


def test_a_job_runs_and_its_output_is_read_back(kubernetes_cluster: Cluster) -> None:
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    line = f"hello from {name}"
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            ttl_seconds_after_finished=None,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"job-name": name}),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    host_network=kubernetes_cluster.local,
                    automount_service_account_token=False,
                    containers=[
                        client.V1Container(
                            name="main",
                            image=kubernetes_cluster.image(BUSYBOX_IMAGE),
                            command=["/bin/sh", "-c", f"echo '{line}'"],
                        )
                    ],
                ),
            ),
        ),
    )
    batch.create_namespaced_job("default", job)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline:
            status = batch.read_namespaced_job_status(name, "default").status
            if status.succeeded or status.failed:
                break
            time.sleep(0.5)
        assert status is not None and status.succeeded == 1, status
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
        assert len(pods) == 1
        logs = core.read_namespaced_pod_log(pods[0].metadata.name, "default")
        assert logs == f"{line}\n"
    finally:
        batch.delete_namespaced_job(name, "default", propagation_policy="Foreground")
        api_client.close()
