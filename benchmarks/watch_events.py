"""Pod watch events each pipeline's driver receives, with 1 and with 10 pipelines running
at once in one namespace, its watch scoped to its own pipeline (a label selector on the
root run id, what drivers do) side by side with one watching every Sematic pod of the
namespace (what drivers did before).

Each "pipeline" is a JobWatcher, as a driver has, submitting --jobs busybox Jobs labelled
with its root id, all pipelines at once, until all ended. Figures: events per pipeline
(mean), and the ratio unscoped / scoped.
Usage: .venv/bin/python benchmarks/watch_events.py [--jobs 3]
(starts the local cluster if it is not running, and stops it after).
"""

from __future__ import annotations

import argparse
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sematic.kubernetes.manifests import (  # noqa: E402
    ROOT_LABEL,
    ClusterSettings,
    job_manifest,
    label_value,
)
from sematic.kubernetes.watcher import JobWatcher  # noqa: E402
from tests.harness.cluster import BUSYBOX_IMAGE, Cluster, cluster_dir, start, stop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3, help="Jobs per pipeline")
    args = parser.parse_args()
    ours = not (cluster_dir() / "state.json").exists()
    cluster = start()
    try:
        _measure(cluster, args.jobs)
    finally:
        if ours:
            stop()


def _manifest(cluster: Cluster, root_id: str) -> dict[str, Any]:
    manifest = job_manifest(
        name=f"w-{uuid.uuid4().hex[:10]}",
        image=cluster.image(BUSYBOX_IMAGE),
        command=["/bin/sh", "-c", "true"],
        settings=ClusterSettings(host_network=True),
        labels={ROOT_LABEL: label_value(root_id)},
    )
    manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    return manifest


def _pipelines(api: Any, cluster: Cluster, count: int, jobs: int, scoped: bool) -> list[int]:
    """Run ``count`` pipelines at once; the pod events each one's watch received."""
    roots = [uuid.uuid4().hex for _ in range(count)]
    watchers = [JobWatcher(api, "default", root_id=r if scoped else None) for r in roots]
    names: list[list[str]] = [[] for _ in roots]

    def pipeline(index: int) -> None:
        watcher = watchers[index]
        for _ in range(jobs):
            names[index].append(watcher.submit(_manifest(cluster, roots[index])))
        while watcher.running():
            outcome = watcher.next_outcome(180)
            assert outcome is not None and outcome.succeeded, outcome

    threads = [threading.Thread(target=pipeline, args=(i,)) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [watcher.events_seen for watcher in watchers]
    finally:
        for watcher, submitted in zip(watchers, names, strict=True):
            for name in submitted:
                watcher.delete(name)
            watcher.close()


def _measure(cluster: Cluster, jobs: int) -> None:
    from kubernetes import config

    api = config.new_client_from_config(str(cluster.kubeconfig))
    try:
        _pipelines(api, cluster, 1, 1, scoped=True)  # pulls the image once
        print(f"pod watch events per pipeline ({jobs} Jobs each), mean over the pipelines")
        print(f"{'pipelines at once':<20}{'scoped':>10}{'unscoped':>10}{'ratio':>8}")
        for count in (1, 10):
            scoped = _pipelines(api, cluster, count, jobs, scoped=True)
            unscoped = _pipelines(api, cluster, count, jobs, scoped=False)
            a, b = sum(scoped) / count, sum(unscoped) / count
            print(f"{count:<20}{a:>10.1f}{b:>10.1f}{b / a:>7.1f}x")
    finally:
        api.close()


if __name__ == "__main__":
    main()
