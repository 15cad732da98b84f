"""LocalResolver's cost per step, with every run and artifact recorded when resolve() returns.

Prints, in one run: ms/step of LocalResolver (embedded SQLite in WAL mode and a local
artifact folder, all in a temporary SEMATIC_HOME) on chains and fan-outs; the same
pipelines under SilentResolver (nothing recorded) for the ratio; Prefect 3 with its default
local tracking when /tmp/prefect-venv exists (see prefect_reference.py); and the speedup of
8 CPU-bound inline=False steps with max_parallelism=2 against max_parallelism=1.

    .venv/bin/python benchmarks/local_overhead.py [--sizes 100,1000,10000] [--no-parallel]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sematic
from _bench import print_table
from local_pipelines import burn_all, chain, fan_out
from sematic import LocalResolver, SilentResolver
from sematic.storage.sql import SqlMetadataStore

PREFECT = Path("/tmp/prefect-venv/bin/python")
SHAPES = {"chain": chain, "fan-out": fan_out}


def local_seconds(shape: str, size: int) -> tuple[float, int]:
    """Seconds to resolve, and the runs recorded (checked after resolve() returned)."""
    future = SHAPES[shape](size)
    start = time.perf_counter()
    future.resolve(LocalResolver(progress=False))
    elapsed = time.perf_counter() - start
    url = f"sqlite:///{os.environ['SEMATIC_HOME']}/db.sqlite3"
    with SqlMetadataStore(url) as store:
        runs = store.runs_of_root(future.id)
    assert all(run.state == "RESOLVED" and run.output for run in runs)
    return elapsed, len(runs)


def silent_seconds(shape: str, size: int) -> float:
    future = SHAPES[shape](size)
    start = time.perf_counter()
    future.resolve(SilentResolver())
    return time.perf_counter() - start


def prefect_figures(sizes: list[int]) -> dict[str, dict[str, dict[str, float]]]:
    if not PREFECT.exists():
        return {}
    script = Path(__file__).with_name("prefect_reference.py")
    wanted = ",".join(str(s) for s in sizes if s <= 1000)
    done = subprocess.run(
        [str(PREFECT), str(script), "--json", "--sizes", wanted],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"(prefect reference failed: {done.stderr.strip()[-300:]})")
        return {}
    figures: dict[str, dict[str, dict[str, float]]] = json.loads(done.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--no-parallel", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="sematic-bench-") as home:
        os.environ["SEMATIC_HOME"] = home
        chain(2).resolve(LocalResolver(progress=False))  # create and migrate the database
        prefect = prefect_figures(sizes)
        rows = []
        for shape in SHAPES:
            for size in sizes:
                local, runs = local_seconds(shape, size)
                silent = silent_seconds(shape, size)
                row: list[object] = [
                    shape,
                    f"{size:,}",
                    f"{runs:,}",
                    f"{local * 1000 / runs:.3f}",
                    f"{silent * 1000 / runs:.3f}",
                    f"{local / silent:.0f}x",
                ]
                theirs = prefect.get(shape, {}).get(str(size))
                if theirs:
                    row += [
                        f"{theirs['ms_per_step']:.2f}",
                        f"{theirs['recorded_ms_per_step']:.2f}",
                        f"{theirs['recorded_ms_per_step'] / (local * 1000 / runs):.0f}x",
                    ]
                rows.append(row)
        print(f"LocalResolver per step, sematic {sematic.__version__} (SQLite WAL, local folder)")
        print_table(
            [
                "shape",
                "N",
                "runs",
                "local ms/run",
                "silent ms/run",
                "local/silent",
                "prefect ms/step",
                "prefect recorded",
                "prefect/local",
            ],
            rows,
        )
        if not args.no_parallel:
            print()
            parallel(home)


def parallel(home: str) -> None:
    timings = {}
    for limit in (1, 2):
        start = time.perf_counter()
        burn_all(8, 1.0).resolve(LocalResolver(max_parallelism=limit, progress=False))
        timings[limit] = time.perf_counter() - start
    print("8 CPU-bound inline=False steps of 1 s each, in worker processes (2 cores)")
    print_table(
        ["max_parallelism", "seconds", "speedup"],
        [[limit, f"{t:.2f}", f"{timings[1] / t:.2f}x"] for limit, t in timings.items()],
    )


if __name__ == "__main__":
    main()
