"""Per-step overhead of ``SilentResolver`` against calling the same plain functions directly.

Three graph shapes, each of N steps of a trivial ``inc(x) -> x + 1``:

- chain:   ``x = inc(x)`` N times at top level, then resolve the last future (N runs);
- fan-out: ``total(xs=[inc(i) for i in range(N)])`` (N + 1 runs);
- nested:  ``recurse(n)`` returns ``inc(recurse(n - 1))``, a graph built while it runs
  (2N + 1 runs).

For each N it prints the graph-building and resolving times (best of several repeats for
small N), ns per step (total / N), the time of the plain Python equivalent measured in the
same run, and their ratio; then the peak RSS growth of the largest size of each shape, each
measured in a fresh subprocess. Nothing is asserted about time.

    .venv/bin/python benchmarks/silent_overhead.py              # N = 10 .. 100k
    .venv/bin/python benchmarks/silent_overhead.py --quick      # N = 10, 100, 1k
    .venv/bin/python benchmarks/silent_overhead.py --sizes 50,5000
    .venv/bin/python benchmarks/silent_overhead.py --compare /tmp/sematic041-venv/bin/python

``--compare`` runs ``sematic041_reference.py`` with that interpreter (Sematic 0.41) and
prints its figures beside this package's, measured on the same pipelines.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import sematic
from _bench import best_of, import_ms, ms, ns_per, print_table, repeats_for, timed
from local_pipelines import chain as chain_pipeline
from local_pipelines import fan_out as fanout_pipeline
from local_pipelines import inc, total
from sematic import Future, SilentResolver

HERE = Path(__file__).resolve().parent
SIZES = (10, 100, 1_000, 10_000, 100_000)
QUICK_SIZES = (10, 100, 1_000)
COMPARE_SIZES = (100, 1_000)


# The baseline: plain Python functions ------------------------------------------------


def plain_inc(x: int) -> int:
    return x + 1


def plain_total(xs: list[int]) -> int:
    return sum(xs)


def plain_recurse(n: int) -> int:
    return 0 if n == 0 else plain_inc(plain_recurse(n - 1))


def plain_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = plain_inc(x)
    return x


def plain_fanout(n: int) -> int:
    return plain_total([plain_inc(i) for i in range(n)])


def plain_nested(n: int) -> int:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, n + 1_000))  # plain recursion needs the room
    try:
        return plain_recurse(n)
    finally:
        sys.setrecursionlimit(limit)


# The same functions with Sematic ----------------------------------------------------


@sematic.func
def recurse(n: int) -> int:
    if n == 0:
        return 0
    return inc(recurse(n - 1))


def build_chain(n: int) -> Future:
    x = inc(0)
    for _ in range(n - 1):
        x = inc(x)
    return x


def build_fanout(n: int) -> Future:
    return total(xs=[inc(i) for i in range(n)])


# Sematic 0.41 refuses futures as the root's inputs: --compare wraps chain and fan-out in a
# pipeline function (local_pipelines.chain and fan_out), as sematic041_reference.py does.


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[int], Future]
    plain: Callable[[int], int]
    runs: Callable[[int], int]


SHAPES = {
    "chain": Shape("chain", build_chain, plain_chain, lambda n: n),
    "fan-out": Shape("fan-out", build_fanout, plain_fanout, lambda n: n + 1),
    "nested": Shape("nested", recurse, plain_nested, lambda n: 2 * n + 1),
}
PIPELINES: dict[str, Callable[[int], Future]] = {
    "chain": chain_pipeline,
    "fan-out": fanout_pipeline,
    "nested": recurse,
}


def build_and_resolve(build: Callable[[int], Future], n: int, expected: int) -> tuple[float, ...]:
    """(build seconds, resolve seconds) of one pipeline, its value checked."""
    start = time.perf_counter()
    future = build(n)
    built = time.perf_counter()
    value = future.resolve(SilentResolver())
    done = time.perf_counter()
    if value != expected:
        raise RuntimeError(f"resolved to {value!r}, expected {expected!r}")
    return built - start, done - built


def overhead_row(shape: Shape, n: int) -> list[object]:
    expected = shape.plain(n)
    (plain,) = best_of(max(5, repeats_for(n)), lambda: (timed(lambda: shape.plain(n)),))
    try:
        build, resolve = best_of(
            repeats_for(n), lambda: build_and_resolve(shape.build, n, expected)
        )
    except Exception as error:  # noqa: BLE001 - a failure is a finding: show it in the table
        return [shape.name, f"{n:,}", f"{shape.runs(n):,}", type(error).__name__]
    elapsed = build + resolve
    return [
        shape.name,
        f"{n:,}",
        f"{shape.runs(n):,}",
        ms(build),
        ms(resolve),
        ms(elapsed),
        ns_per(elapsed, n),
        ms(plain),
        f"{elapsed / plain:,.0f}x",
    ]


def peak_rss_kib() -> int:
    """This process's peak RSS. Linux: VmHWM, since ru_maxrss carries the parent's over exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def rss_growth_kib(shape_name: str, n: int) -> int:
    """In this (fresh) process: how much the peak RSS grows while building and resolving."""
    shape = SHAPES[shape_name]
    build_and_resolve(shape.build, 10, shape.plain(10))  # warm up (first-use imports)
    expected = shape.plain(n)
    before = peak_rss_kib()
    build_and_resolve(shape.build, n, expected)
    return peak_rss_kib() - before


def memory_rows(n: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for shape in SHAPES.values():
        child = subprocess.run(
            [sys.executable, __file__, "--rss", shape.name, str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            last = (child.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append([shape.name, f"{n:,}", last])
            continue
        kib = int(child.stdout)
        rows.append([shape.name, f"{n:,}", f"{kib / 1024:,.1f}", f"{kib * 1024 / n:,.0f}"])
    return rows


def compare(python: str) -> None:
    """Sematic 0.41 (run by ``python``) beside this package, on the same pipelines."""
    reference = subprocess.run(
        [python, str(HERE / "sematic041_reference.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs: dict[str, Any] = json.loads(reference.stdout)
    version = theirs["version"]
    rows: list[list[object]] = []
    for result in theirs["results"]:
        name, n = result["shape"], result["n"]
        expected = SHAPES[name].plain(n)
        run = partial(build_and_resolve, PIPELINES[name], n, expected)
        ours = sum(best_of(repeats_for(n), run))
        if result["error"]:
            rows.append([name, f"{n:,}", ms(ours), result["error"], "-"])
        else:
            theirs_seconds = result["seconds"]
            ratio = f"{theirs_seconds / ours:.1f}x"
            rows.append([name, f"{n:,}", ms(ours), ms(theirs_seconds), ratio])
    ours_import = import_ms(sys.executable, "sematic")
    rows.append(
        [
            "import sematic",
            "",
            f"{ours_import:.1f}",
            f"{theirs['import_ms']:.1f}",
            f"{theirs['import_ms'] / ours_import:.1f}x",
        ]
    )
    print(f"\nSematic {version} beside this package (ms; build + resolve, best of repeats)")
    print("chain and fan-out run inside a pipeline function (0.41 needs concrete root inputs)")
    print_table(["shape", "N", "ours ms", f"{version} ms", f"{version} / ours"], rows)
    limit = theirs.get("chain_limit")
    if limit:
        print(
            f"Sematic {version}: the longest chain that resolves is N = {limit:,} "
            f"(N = {limit + 1:,} raises RecursionError)"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated N, e.g. 10,1000 (default 10..100k)")
    parser.add_argument("--quick", action="store_true", help="N = 10, 100, 1k only")
    parser.add_argument("--compare", metavar="PYTHON", help="a Python with sematic 0.41")
    parser.add_argument("--no-memory", action="store_true", help="skip the RSS measurement")
    parser.add_argument("--rss", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.rss:
        print(rss_growth_kib(args.rss[0], int(args.rss[1])))
        return
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        sizes = tuple(int(size) for size in args.sizes.split(","))
    for shape in SHAPES.values():
        build_and_resolve(shape.build, 10, shape.plain(10))  # warm up (first-use imports)

    print(
        f"SilentResolver overhead: sematic {sematic.__version__}, Python "
        f"{platform.python_version()}; best of 7/3/1 repeats for N <= 1k/10k/more"
    )
    print("ns/step = total / N; ratio = total / plain (the same functions called directly)")
    rows = [overhead_row(shape, n) for shape in SHAPES.values() for n in sizes]
    headers = ["shape", "N", "runs", "build ms", "resolve ms", "total ms", "ns/step"]
    print_table([*headers, "plain ms", "ratio"], rows)

    if not args.no_memory:
        largest = max(sizes)
        print(f"\nPeak RSS growth, build + resolve (a fresh process per shape, N={largest:,})")
        print_table(["shape", "N", "MiB", "bytes/step"], memory_rows(largest))

    if args.compare:
        compare(args.compare)


if __name__ == "__main__":
    main()
