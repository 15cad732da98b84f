"""``GET /runs`` through two server replicas over one PostgreSQL database of 100,000 runs,
beside one replica, and what a rolling restart costs a client writing through both.

Seeds 100 pipelines of 1,000 runs into a PostgreSQL server started for the run
(tests/harness/postgres.py, on 127.0.0.1), starts two ``python -m sematic.server`` processes
on it, then:

1. ``GET /api/v1/runs?limit=50`` (the pipelines page's first request), ``REQUESTS`` times
   through one replica, then alternating between both (a client with both URLs, or a load
   balancer): p50 and p99 of each, and their ratio;
2. a writer sending 1,000 small writes through ``HttpMetadataStore("A,B")`` while each
   replica in turn is stopped (SIGTERM) and started again on its port: write errors
   (the goal is 0), the slowest write, and the restarts' durations.

    python benchmarks/server_replicas.py [--runs-per-root 1000] [--requests 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from _bench import print_table  # noqa: E402
from sematic.core.engine import State  # noqa: E402
from sematic.core.errors import SematicError  # noqa: E402
from sematic.core.records import RunRecord, TransitionRecord  # noqa: E402
from sematic.storage.http import HttpMetadataStore  # noqa: E402
from sematic.storage.sql import SqlMetadataStore  # noqa: E402
from server_runs_list import pipeline_records  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.postgres import local_postgres  # noqa: E402
from tests.unit.server.conftest import Server, server_env, start_server  # noqa: E402

ROOTS = 100


def _seed(url: str, runs_per_root: int) -> int:
    now = time.time()
    with SqlMetadataStore(url) as store:
        for root in range(ROOTS):
            runs, artifacts, edges = pipeline_records(root, now + root, runs_per_root)
            store.write(runs=runs, artifacts=artifacts, edges=edges)
        return store.count_runs()


def _latencies(urls: list[str], requests: int) -> list[float]:
    seconds = []
    with httpx.Client(timeout=30) as client:
        for i in range(requests):
            began = time.perf_counter()
            response = client.get(f"{urls[i % len(urls)]}/api/v1/runs", params={"limit": 50})
            seconds.append(time.perf_counter() - began)
            response.raise_for_status()
            assert len(response.json()["runs"]) == 50
    return seconds


def _p(seconds: list[float], q: int) -> float:
    return statistics.quantiles(seconds, n=100)[q - 1] * 1000


def _start(home: Path, port: int, database_url: str) -> Server:
    env = server_env(home, SEMATIC_DATABASE_URL=database_url)
    return start_server(home, "--port", str(port), env=env)


def _rolling_restart(
    home: Path, ports: list[int], servers: list[Server], database_url: str
) -> tuple[int, int, float, list[float]]:
    url = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    errors, slowest, written = 0, 0.0, 0
    stop = threading.Event()
    restarts: list[float] = []

    def roll() -> None:
        for index in range(2):
            time.sleep(0.5)
            began = time.monotonic()
            servers[index].stop()
            servers[index] = _start(home, ports[index], database_url)
            restarts.append(time.monotonic() - began)
        stop.set()

    roller = threading.Thread(target=roll)
    with HttpMetadataStore(url) as store:
        roller.start()
        i = 0
        while not stop.is_set() or i < 1000:
            run_id = f"{0xBEEF:08x}{i:024x}"
            now = time.time()
            run = RunRecord(
                id=run_id, root_id=run_id, parent_id=None, name="w", function_path="m.w",
                state=State.SCHEDULED, created_at=now, updated_at=now,
            )  # fmt: skip
            began = time.perf_counter()
            try:
                store.write(
                    runs=[run], transitions=[TransitionRecord(run_id, State.SCHEDULED, now)]
                )
                written += 1
            except SematicError:
                errors += 1
            slowest = max(slowest, time.perf_counter() - began)
            i += 1
    roller.join()
    with SqlMetadataStore(database_url) as database:
        recorded = database.count_runs(name="w")
    assert recorded == written, (recorded, written)
    return written, errors, slowest, restarts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-root", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with local_postgres() as database_url, tempfile.TemporaryDirectory() as scratch:
        began = time.monotonic()
        total = _seed(database_url, args.runs_per_root)
        print(f"{total:,} runs seeded in {time.monotonic() - began:.1f} s (PostgreSQL)")
        home = Path(scratch) / "home"
        home.mkdir()
        ports = [free_port(), free_port()]
        servers = [_start(home, port, database_url) for port in ports]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            _latencies(urls, 20)  # warm both
            one = _latencies(urls[:1], args.requests)
            two = _latencies(urls, args.requests)
            print(f"\nGET /api/v1/runs?limit=50, {args.requests} requests each, {total:,} runs")
            print_table(
                ["through", "p50 ms", "p99 ms"],
                [
                    ["one replica", f"{_p(one, 50):.1f}", f"{_p(one, 99):.1f}"],
                    ["two replicas", f"{_p(two, 50):.1f}", f"{_p(two, 99):.1f}"],
                    ["ratio two/one", f"{_p(two, 50) / _p(one, 50):.2f}",
                     f"{_p(two, 99) / _p(one, 99):.2f}"],
                ],
            )  # fmt: skip
            written, errors, slowest, restarts = _rolling_restart(
                home, ports, servers, database_url
            )
            print("\nA rolling restart (each replica SIGTERM'd and started again) under writes")
            print_table(
                ["writes", "write errors", "slowest write s", "restarts s"],
                [[written, errors, f"{slowest:.2f}", ", ".join(f"{r:.1f}" for r in restarts)]],
            )
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
