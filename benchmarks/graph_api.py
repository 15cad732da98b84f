"""A 100,000-step pipeline's graph through the API: the whole graph against the folded one.

Runs ``local_pipelines.fan_out(N)`` (N trivial ``inc`` steps and a ``total``) with the
LocalResolver into a SEMATIC_HOME kept under ``~/.cache/sematic-dev/bench`` (made once,
reused: the run takes half a minute), starts ``python -m sematic.server`` over it and
prints, side by side, size and time of:

- ``GET /runs/ROOT/graph``: every run, edge and artifact (what the run page read before);
- ``GET /runs/ROOT/graph?fold=20``: the folded graph, first request after the server
  started (nothing cached), then again (cached), then revalidated with its ETag (304);
- a page of the group's runs, failed first (``/children?function=...&limit=50``), the
  last page, and the group's summary with a 20-bin histogram of durations.

    python benchmarks/graph_api.py [--steps 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _bench import start_server

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "sematic-dev" / "bench"
REPEATS = 5


def recorded_home(steps: int) -> tuple[Path, str]:
    """A SEMATIC_HOME holding one run of ``fan_out(steps)``, and its root run's id."""
    home = CACHE / f"fan-out-{steps}"
    marker = home / "root-id"
    if marker.is_file():
        return home, marker.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    code = (
        "import time, local_pipelines as p\n"
        "start = time.perf_counter()\n"
        f"future = p.fan_out({steps})\n"
        "future.resolve()\n"
        "print(future.id, time.perf_counter() - start)\n"
    )
    env = {**os.environ, "SEMATIC_HOME": str(home)}
    for name in ("SEMATIC_DATABASE_URL", "SEMATIC_ARTIFACT_URL", "SEMATIC_SERVER_URL"):
        env.pop(name, None)
    print(f"recording fan_out({steps:,}) with the LocalResolver (once; cached in {home}) ...")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=HERE, env=env, check=True, capture_output=True, text=True
    )
    root_id, seconds = done.stdout.split()[-2:]
    print(f"  recorded in {float(seconds):.1f} s")
    marker.write_text(root_id)
    return home, root_id


def measure(
    client: httpx.Client, path: str, repeats: int = REPEATS, **headers: str
) -> tuple[float, int, int]:
    """Median ms of ``repeats`` GETs of ``path``, the answer's size and status."""
    times, size, status = [], 0, 0
    for _ in range(repeats):
        start = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        size, status = len(answer.content), answer.status_code
    return statistics.median(times), size, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    home, root = recorded_home(args.steps)
    server, url = start_server(home, HERE.parent / "src")
    rows: list[tuple[str, float, int, int]] = []
    try:
        with httpx.Client(base_url=url + "/api/v1", timeout=120) as client:
            folded = f"/runs/{root}/graph?fold=20"
            rows.append(("folded graph, first request", *measure(client, folded, repeats=1)))
            rows.append(("folded graph, again", *measure(client, folded)))
            etag = client.get(folded).headers["etag"]
            rows.append(
                ("folded graph, If-None-Match", *measure(client, folded, **{"If-None-Match": etag}))
            )
            whole = f"/runs/{root}/graph"
            rows.append(("whole graph (before)", *measure(client, whole, repeats=1)))
            group = client.get(folded).json()["groups"][0]
            children = f"/runs/{root}/children?function={group['function_path']}"
            rows.append(
                ("group page 1 (50, failed first)", *measure(client, children + "&limit=50"))
            )
            last = f"{children}&limit=50&offset={group['count'] - 50}"
            rows.append(("group last page", *measure(client, last)))
            summary = f"/runs/{root}/children/summary?function={group['function_path']}"
            rows.append(("group summary + histogram", *measure(client, summary)))
    finally:
        server.terminate()
        server.wait(10)
    print(f"\nfan_out({args.steps:,}): {args.steps + 2:,} runs")
    print(f"{'request':<34} {'median ms':>10} {'bytes':>13} {'status':>7}")
    for label, ms, size, status in rows:
        print(f"{label:<34} {ms:>10.1f} {size:>13,} {status:>7}")
    whole_ms, whole_size = rows[3][1], rows[3][2]
    first_ms, first_size = rows[0][1], rows[0][2]
    print(
        f"\nfolded/whole: first request {first_ms / whole_ms:.3f}x the time, "
        f"{first_size / whole_size:.5f}x the bytes ({whole_size / first_size:,.0f}x smaller)"
    )


if __name__ == "__main__":
    main()
