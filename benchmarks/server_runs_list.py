"""How fast the API lists runs and serves a pipeline's graph, on 10,000 recorded runs.

Writes 10 pipelines of 1,000 runs each (a chain: every run takes the previous run's output)
straight through ``SqlMetadataStore.write`` into a temporary SQLite database, starts
``python -m sematic.server`` on it, and prints the median wall time of 20 requests each.

    python benchmarks/server_runs_list.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord
from sematic.storage.sql import SqlMetadataStore

ROOTS = 10
RUNS_PER_ROOT = 1_000
REPEATS = 20
READY = "sematic server listening on "


def _hex(*parts: int, width: int) -> str:
    return "".join(f"{part:08x}" for part in parts).rjust(width, "0")


def root_id(root: int) -> str:
    """The id of pipeline number ``root``'s root run."""
    return _hex(root, 0, width=32)


def pipeline_records(
    root: int, now: float, runs_per_root: int = RUNS_PER_ROOT
) -> tuple[list[RunRecord], list[ArtifactRecord], list[EdgeRecord]]:
    """Pipeline number ``root``: a root run and a chain of ``runs_per_root - 1`` children,
    every run taking the previous run's output."""
    root_run = root_id(root)
    runs, artifacts, edges = [], [], []
    previous: str | None = None
    for i in range(runs_per_root):
        run_id = root_run if i == 0 else _hex(root, i, width=32)
        output = _hex(root, i, 0xA, width=64)
        artifacts.append(
            ArtifactRecord(
                id=output,
                type_description={"type_key": "builtins.int", "kind": "json"},
                summary=i,
                size=4,
                created_at=now,
            )
        )
        inputs = {} if previous is None else {"x": previous}
        runs.append(
            RunRecord(
                id=run_id,
                root_id=root_run,
                parent_id=None if i == 0 else root_run,
                name=f"pipeline{root}" if i == 0 else f"step{i % 7}",
                function_path=f"bench.step{i % 7}",
                state="RESOLVED",
                created_at=now + root * runs_per_root + i,
                updated_at=now + root * runs_per_root + i,
                source_code="def step(x: int) -> int:\n    return x + 1\n",
                tags=("bench",) if i == 0 else (),
                inputs=inputs,
                output=output,
            )
        )
        if previous is not None:
            edges.append(EdgeRecord(runs[-2].id, run_id, "x", previous))
        previous = output
    return runs, artifacts, edges


def record(database_url: str, roots: int = ROOTS, runs_per_root: int = RUNS_PER_ROOT) -> float:
    """Writes ``roots`` pipelines through ``SqlMetadataStore.write``; returns the seconds taken."""
    start = time.perf_counter()
    with SqlMetadataStore(database_url) as store:
        now = time.time()
        for root in range(roots):
            runs, artifacts, edges = pipeline_records(root, now, runs_per_root)
            store.write(runs=runs, artifacts=artifacts, edges=edges)
    return time.perf_counter() - start


@contextlib.contextmanager
def running_server(home: Path, database_url: str) -> Iterator[str]:
    """``python -m sematic.server --port 0`` over ``home``; yields its base URL."""
    env = {**os.environ, "SEMATIC_HOME": str(home), "SEMATIC_DATABASE_URL": database_url}
    output = home / "server.out"
    with output.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "sematic.server", "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while READY not in output.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {output.read_text()}")
            time.sleep(0.02)
        yield output.read_text().split(READY)[1].split()[0]
    finally:
        server.terminate()
        server.wait(10)


def median_ms(client: httpx.Client, path: str, repeats: int = REPEATS) -> tuple[float, int]:
    """Median wall time (ms) of ``repeats`` GETs of ``path``, and the response's size."""
    times = []
    size = 0
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(times) * 1000, size


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = f"sqlite:///{home / 'db.sqlite3'}"
        seconds = record(url)
        print(f"wrote {ROOTS * RUNS_PER_ROOT:,} runs in {seconds:.2f} s")
        with (
            running_server(home, url) as base,
            httpx.Client(base_url=base + "/api/v1", timeout=30) as client,
        ):
            client.get("/health").raise_for_status()
            for label, path in [
                ("GET /runs?limit=50", "/runs?limit=50"),
                ("GET /runs?limit=50&offset=9000", "/runs?limit=50&offset=9000"),
                ("GET /runs?root_only=true&tag=bench", "/runs?root_only=true&tag=bench"),
                ("GET /runs?name=step3&status=RESOLVED", "/runs?name=step3&status=RESOLVED"),
                (
                    f"GET /runs/{{root}}/graph ({RUNS_PER_ROOT:,} runs)",
                    f"/runs/{root_id(ROOTS - 1)}/graph",
                ),
            ]:
                ms, size = median_ms(client, path)
                print(f"{label:<45} median of {REPEATS}: {ms:8.1f} ms  ({size:,} bytes)")


if __name__ == "__main__":
    main()
