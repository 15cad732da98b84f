"""How fast the API lists runs and serves a pipeline's graph, on 10,000 recorded runs.

Writes 10 pipelines of 1,000 runs each (a chain: every run takes the previous run's output)
straight through ``SqlMetadataStore.write`` into a temporary SQLite database, starts
``python -m sematic.server`` on it, and prints the median wall time of 20 requests each.

    python benchmarks/server_runs_list.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def _pipeline(
    root: int, now: float
) -> tuple[list[RunRecord], list[ArtifactRecord], list[EdgeRecord]]:
    root_id = _hex(root, 0, width=32)
    runs, artifacts, edges = [], [], []
    previous: str | None = None
    for i in range(RUNS_PER_ROOT):
        run_id = root_id if i == 0 else _hex(root, i, width=32)
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
                root_id=root_id,
                parent_id=None if i == 0 else root_id,
                name="pipeline" if i == 0 else f"step{i % 7}",
                function_path=f"bench.step{i % 7}",
                state="RESOLVED",
                created_at=now + root * RUNS_PER_ROOT + i,
                updated_at=now + root * RUNS_PER_ROOT + i,
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


def _median_ms(client: httpx.Client, path: str) -> tuple[float, int]:
    times = []
    size = 0
    for _ in range(REPEATS):
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
        start = time.perf_counter()
        with SqlMetadataStore(url) as store:
            now = time.time()
            for root in range(ROOTS):
                runs, artifacts, edges = _pipeline(root, now)
                store.write(runs=runs, artifacts=artifacts, edges=edges)
        print(f"wrote {ROOTS * RUNS_PER_ROOT:,} runs in {time.perf_counter() - start:.2f} s")

        env = {**os.environ, "SEMATIC_HOME": str(home), "SEMATIC_DATABASE_URL": url}
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
            base = output.read_text().split(READY)[1].split()[0]
            root_id = _hex(ROOTS - 1, 0, width=32)
            with httpx.Client(base_url=base + "/api/v1", timeout=30) as client:
                client.get("/health").raise_for_status()
                for label, path in [
                    ("GET /runs?limit=50", "/runs?limit=50"),
                    ("GET /runs?limit=50&offset=9000", "/runs?limit=50&offset=9000"),
                    ("GET /runs?root_only=true&tag=bench", "/runs?root_only=true&tag=bench"),
                    ("GET /runs?name=step3&status=RESOLVED", "/runs?name=step3&status=RESOLVED"),
                    (
                        f"GET /runs/{{root}}/graph ({RUNS_PER_ROOT:,} runs)",
                        f"/runs/{root_id}/graph",
                    ),
                ]:
                    ms, size = _median_ms(client, path)
                    print(f"{label:<45} median of {REPEATS}: {ms:8.1f} ms  ({size:,} bytes)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
