"""CloudResolver on the local cluster: what Sematic adds to a step beyond its pod's start.

Measured in one run, side by side:
- baseline: a bare Job in the same image running ``python3 -c pass`` (scheduling, the
  kubelet starting the container, the interpreter), submit -> noticed through the watch;
  and one that only imports what the worker imports (its start-up cost in a pod);
- a Sematic step: a chain of --chain ``inline=False`` steps, detach=False, per step
  (fetch inputs from the server, type checks, run, persist, result read back);
- resolve() -> driver running, detach=True: until the driver schedules the root run
  (the driver pod's own start included), and when resolve() returned;
- --fan standalone steps with max_parallelism=10, end to end, and the same pipeline under
  LocalResolver (worker processes here) as the baseline.
Usage: .venv/bin/python benchmarks/cloud_resolver.py [--chain 5] [--fan 100]
(starts the local cluster if it is not running, and stops it after).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from sematic.kubernetes.manifests import job_manifest  # noqa: E402
from sematic.kubernetes.watcher import JobWatcher  # noqa: E402
from sematic.resolvers.cloud import CloudResolver  # noqa: E402
from sematic.resolvers.local import LocalResolver  # noqa: E402
from sematic.resolvers.settings import LocalSettings  # noqa: E402
from tests.harness.cloud import (  # noqa: E402
    build_project,
    cluster_settings,
    prepare_cluster,
    unlabel_node,
)
from tests.harness.cluster import cluster_dir, start, stop  # noqa: E402
from tests.harness.registry import RegistryServer  # noqa: E402
from tests.unit.server.conftest import start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", type=int, default=5)
    parser.add_argument("--fan", type=int, default=100)
    parser.add_argument("--baseline-jobs", type=int, default=5)
    args = parser.parse_args()
    ours = not (cluster_dir() / "state.json").exists()
    cluster = start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            _measure(cluster, Path(folder), args)
    finally:
        if ours:
            stop()


def _measure(cluster: Any, folder: Path, args: argparse.Namespace) -> None:
    from kubernetes import config

    address = cluster.registry
    registry = RegistryServer(
        address=address, url=f"http://{address}", username=None, password=None,
        storage=Path("/nonexistent"),
    )  # fmt: skip
    project = folder / "project"
    project.mkdir()
    images = build_project(registry, project, folder / "cache")
    sys.path.insert(0, str(project))
    import cloudpipe  # type: ignore[import-not-found]

    api = config.new_client_from_config(str(cluster.kubeconfig))
    prepare_cluster(api)
    (folder / "server").mkdir()
    server = start_server(folder / "server" / "home")
    settings = LocalSettings(
        home=folder / "home", database_url="unused://", artifact_url="unused://",
        server_url=server.url,
    )  # fmt: skip
    cloud = cluster_settings(cluster)
    try:
        bare = _bare_jobs(api, images.images["default"], cloud, args.baseline_jobs, "pass")
        imports = _bare_jobs(
            api, images.images["default"], cloud, args.baseline_jobs, WORKER_IMPORTS
        )

        def resolver(**kwargs: Any) -> CloudResolver:
            return CloudResolver(images=images, cluster=cloud, kubeconfig=str(cluster.kubeconfig),
                                 settings=settings, **kwargs)  # fmt: skip

        cloudpipe.chain_pipeline(1, 1).resolve(resolver(detach=False))  # warm the node's cache
        began = time.perf_counter()
        cloudpipe.chain_pipeline(0, args.chain).resolve(resolver(detach=False))
        per_step = (time.perf_counter() - began) / args.chain

        submitted = time.time()
        root_id = cloudpipe.chain_pipeline(0, 1).resolve(resolver())
        returned = time.time() - submitted
        scheduled = _first_scheduled(server.url, root_id) - submitted

        began = time.perf_counter()
        assert cloudpipe.fan_pipeline(args.fan).resolve(resolver(detach=False)) == args.fan
        fan_cloud = time.perf_counter() - began
        local = LocalSettings(
            home=folder / "local", database_url=f"sqlite:///{folder / 'local.db'}",
            artifact_url=str(folder / "artifacts"),
        )  # fmt: skip
        began = time.perf_counter()
        fan = cloudpipe.fan_pipeline(args.fan)
        assert fan.resolve(LocalResolver(settings=local, max_parallelism=10)) == args.fan
        fan_local = time.perf_counter() - began
    finally:
        server.stop()
        unlabel_node(api)
        api.close()
    median = statistics.median(bare)
    print(f"{'':58} {'seconds':>9} {'ratio':>7}")
    rows = [
        ("bare Job, python3 -c pass: submit -> noticed (median)", median, 1.0),
        ("bare Job importing the worker's modules (median)", statistics.median(imports),
         statistics.median(imports) / median),
        (f"Sematic inline=False step (chain of {args.chain}), per step", per_step,
         per_step / median),
        ("  what Sematic adds per step", per_step - median, None),
        ("detach=True: resolve() returned", returned, None),
        ("detach=True: resolve() -> driver schedules the root", scheduled, scheduled / median),
        (f"{args.fan} standalone steps, max_parallelism=10: CloudResolver", fan_cloud,
         fan_cloud / fan_local),
        (f"{args.fan} standalone steps, max_parallelism=10: LocalResolver", fan_local, 1.0),
    ]  # fmt: skip
    for label, seconds, ratio in rows:
        shown = "" if ratio is None else f"{ratio:6.2f}x"
        print(f"{label:58} {seconds:9.3f} {shown:>7}")


WORKER_IMPORTS = "import sematic.worker.run, sematic.storage.http"


def _bare_jobs(api: Any, image: str, cloud: Any, count: int, code: str) -> list[float]:
    watcher = JobWatcher(api, "default")
    times = []
    try:
        for _ in range(count + 1):  # the first pulls the image: left out
            manifest = job_manifest(
                name=f"bare-{uuid.uuid4().hex[:10]}", image=image,
                command=["python3", "-c", code], settings=cloud,
            )  # fmt: skip
            began = time.perf_counter()
            watcher.submit(manifest)
            outcome = watcher.next_outcome(120)
            assert outcome is not None and outcome.succeeded, outcome
            times.append(time.perf_counter() - began)
    finally:
        watcher.close()
    return times[1:]


def _first_scheduled(server_url: str, root_id: str, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{server_url}/api/v1/runs/{root_id}").json()
        if run.get("started_at"):
            return float(run["started_at"])
        time.sleep(0.05)
    raise RuntimeError(f"the driver did not start {root_id} within {timeout} s")


if __name__ == "__main__":
    main()
