"""CloudResolver on the local cluster: what Sematic adds to a step beyond its pod's start,
with a Job per step (cold) and with warm pods (the default).

Measured in one run, side by side:
- baseline: a bare Job in the same image running ``python3 -c pass`` (scheduling, the
  kubelet starting the container, the interpreter), submit -> noticed through the watch;
  and one that only imports what the worker imports (its start-up cost in a pod);
- a cold step: a chain of --chain ``inline=False`` steps, ``warm_pods=False``,
  detach=False, per step (its Job, fetch inputs from the server, run, persist, result);
- warm steps: a chain of --warm-chain steps in one warm pod: per step over the whole
  chain (the pod's start included) and per step once the pod runs (from the second
  step's end to the last's, from the runs' records);
- resolve() -> driver running, detach=True: until the driver schedules the root run
  (the driver pod's own start included), and when resolve() returned;
- --fan standalone steps with max_parallelism=10, end to end, warm and cold, with the
  pods each created and the CPU-seconds the machine (the node, this driver, the server)
  and the node's pods spent per step; the same pipeline under LocalResolver (worker
  processes here) as the baseline.
Usage: .venv/bin/python benchmarks/cloud_resolver.py [--chain 5] [--warm-chain 20] [--fan 100]
(starts the local cluster if it is not running, and stops it after).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from sematic.kubernetes.manifests import job_manifest, label_value  # noqa: E402
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
    parser.add_argument("--warm-chain", type=int, default=20)
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
        cloudpipe.chain_pipeline(0, args.chain).resolve(resolver(detach=False, warm_pods=False))
        per_step = (time.perf_counter() - began) / args.chain

        chain = cloudpipe.chain_pipeline(0, args.warm_chain)
        began = time.perf_counter()
        chain.resolve(resolver(detach=False))
        warm_per_step = (time.perf_counter() - began) / args.warm_chain
        warm_steady = _steady_per_step(server.url, chain.id)

        submitted = time.time()
        root_id = cloudpipe.chain_pipeline(0, 1).resolve(resolver())
        returned = time.time() - submitted
        scheduled = _first_scheduled(server.url, root_id) - submitted

        fans: dict[bool, tuple[float, int, float, float]] = {}
        for warm in (True, False):
            fan = cloudpipe.fan_pipeline(args.fan)
            with _PodCounter(api, fan.id) as pods, _Cpu() as cpu:
                began = time.perf_counter()
                assert fan.resolve(resolver(detach=False, warm_pods=warm)) == args.fan
                took = time.perf_counter() - began
            fans[warm] = (took, len(pods.names), cpu.machine / args.fan, cpu.pods / args.fan)
        local = LocalSettings(
            home=folder / "local", database_url=f"sqlite:///{folder / 'local.db'}",
            artifact_url=str(folder / "artifacts"),
        )  # fmt: skip
        fan = cloudpipe.fan_pipeline(args.fan)
        with _Cpu() as local_cpu:
            began = time.perf_counter()
            assert fan.resolve(LocalResolver(settings=local, max_parallelism=10)) == args.fan
            fan_local = time.perf_counter() - began
    finally:
        server.stop()
        unlabel_node(api)
        api.close()
    _print_figures(
        args, bare, imports, per_step, (warm_per_step, warm_steady), (returned, scheduled),
        fans, (fan_local, local_cpu.machine),
    )  # fmt: skip


def _print_figures(
    args: argparse.Namespace,
    bare: list[float],
    imports: list[float],
    per_step: float,
    warm_chain: tuple[float, float],
    detached: tuple[float, float],
    fans: dict[bool, tuple[float, int, float, float]],
    local_fan: tuple[float, float],
) -> None:
    warm_per_step, warm_steady = warm_chain
    returned, scheduled = detached
    fan_local, local_cpu = local_fan
    median = statistics.median(bare)
    warm, cold = fans[True], fans[False]
    print(f"{'':62} {'seconds':>9} {'ratio':>7}")
    rows = [
        ("bare Job, python3 -c pass: submit -> noticed (median)", median, 1.0),
        ("bare Job importing the worker's modules (median)", statistics.median(imports),
         statistics.median(imports) / median),
        (f"cold step, a Job each (chain of {args.chain}), per step", per_step,
         per_step / median),
        ("  what Sematic adds per cold step", per_step - median, None),
        (f"warm steps (chain of {args.warm_chain}), per step, pod start included",
         warm_per_step, warm_per_step / per_step),
        ("warm steps, per step once the pod runs", warm_steady, warm_steady / per_step),
        ("detach=True: resolve() returned", returned, None),
        ("detach=True: resolve() -> driver schedules the root", scheduled, scheduled / median),
        (f"{args.fan} standalone steps, max_parallelism=10: warm pods", warm[0],
         warm[0] / fan_local),
        (f"{args.fan} standalone steps, max_parallelism=10: a Job each", cold[0],
         cold[0] / fan_local),
        (f"{args.fan} standalone steps, max_parallelism=10: LocalResolver", fan_local, 1.0),
    ]  # fmt: skip
    for label, seconds, ratio in rows:
        shown = "" if ratio is None else f"{ratio:6.2f}x"
        print(f"{label:62} {seconds:9.3f} {shown:>7}")
    print(f"\n{args.fan} standalone steps: {'pods created':>13} {'machine cpu-s/step':>19} "
          f"{'pods cpu-s/step':>16}")  # fmt: skip
    for label, (_, pods, machine, in_pods) in (("warm pods", warm), ("a Job each", cold)):
        print(f"  {label:20} {pods:13d} {machine:19.3f} {in_pods:16.3f}")
    print(f"  {'LocalResolver':20} {0:13d} {local_cpu / args.fan:19.3f} {'-':>16}")


def _steady_per_step(server_url: str, root_id: str) -> float:
    """Seconds per step once the first step ended: (last end - first end) / (steps - 1)."""
    runs = httpx.get(f"{server_url}/api/v1/runs/{root_id}/graph").json()["runs"]
    ends = sorted(run["ended_at"] for run in runs if run["name"] == "inc")
    return (ends[-1] - ends[0]) / (len(ends) - 1)


class _PodCounter:
    """The names of the pods created for the pipeline ``root_id`` while inside."""

    def __init__(self, api: Any, root_id: str) -> None:
        from kubernetes import client, watch

        self._core = client.CoreV1Api(api)
        self._watch = watch.Watch()
        self._selector = f"sematic.dev/root-id={label_value(root_id)}"
        self.names: set[str] = set()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the watch's stream ends when it is stopped
            self._follow_events()

    def _follow_events(self) -> None:
        for event in self._watch.stream(self._core.list_namespaced_pod, "default",  # type: ignore[no-untyped-call]
                                        label_selector=self._selector):  # fmt: skip
            self.names.add(event["object"].metadata.name)

    def __enter__(self) -> _PodCounter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        time.sleep(1.0)  # the watch's last events
        self._watch.stop()  # type: ignore[no-untyped-call]


class _Cpu:
    """CPU-seconds spent while inside: by the whole machine (busy time in /proc/stat: the
    node's pods, the kubelet and containerd, this driver, the server) and by the node's
    pods (the ``kubepods`` cgroup, if found)."""

    KUBEPODS = (Path("/sys/fs/cgroup/cpuacct/kubepods/cpuacct.usage"),
                Path("/sys/fs/cgroup/cpu,cpuacct/kubepods/cpuacct.usage"))  # fmt: skip

    def __enter__(self) -> _Cpu:
        self._machine, self._pods = _busy_seconds(), self._pods_seconds()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.machine = _busy_seconds() - self._machine
        self.pods = self._pods_seconds() - self._pods

    def _pods_seconds(self) -> float:
        for path in self.KUBEPODS:
            if path.exists():
                return int(path.read_text()) / 1e9
        return float("nan")


def _busy_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


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
