"""Reference figures of the real Sematic 0.41's ``SilentResolver``, for comparison.

Run it with a Python that has ``sematic==0.41.0`` installed (never this project's venv):

    python3 -m venv /tmp/sematic041-venv
    /tmp/sematic041-venv/bin/pip install sematic==0.41.0
    /tmp/sematic041-venv/bin/python benchmarks/sematic041_reference.py [--json] [--sizes 100,1000]

It measures build + resolve of the pipelines of ``silent_overhead.py`` (chain and fan-out
wrapped in a pipeline function, since 0.41 requires concrete root inputs; nested as is) at
N = 100 and 1000, the longest chain 0.41 resolves before its recursive graph walk raises
RecursionError, and ``import sematic`` time. Sematic 0.41 writes ``~/.sematic`` when
imported, so the script re-runs itself with a throwaway HOME. ``silent_overhead.py
--compare PYTHON`` runs it with ``--json`` and prints the figures beside its own.
"""

# No ``from __future__ import annotations``: Sematic 0.41 reads annotations as real types.
import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _bench import import_ms, ms, ns_per, print_table

SHAPES = ("chain", "fan-out", "nested")


def define_pipelines() -> tuple[Any, dict[str, Callable[[int], Any]]]:
    """Import Sematic 0.41 and decorate the benchmark pipelines: (module, shape -> pipeline)."""
    import sematic

    @sematic.func
    def inc(x: int) -> int:
        return x + 1

    @sematic.func
    def total(xs: list[int]) -> int:
        return sum(xs)

    @sematic.func
    def chain(n: int) -> int:
        x = inc(0)
        for _ in range(n - 1):
            x = inc(x)
        return x

    @sematic.func
    def fanout(n: int) -> int:
        return total(xs=[inc(i) for i in range(n)])

    @sematic.func
    def recurse(n: int) -> int:
        if n == 0:
            return 0
        return inc(recurse(n - 1))

    return sematic, {"chain": chain, "fan-out": fanout, "nested": recurse}


def expected_value(shape: str, n: int) -> int:
    return n * (n + 1) // 2 if shape == "fan-out" else n


def resolve_seconds(sematic: Any, pipeline: Callable[[int], Any], shape: str, n: int) -> float:
    """Seconds to build and resolve ``pipeline(n)`` once; raises what the resolver raises."""
    start = time.perf_counter()
    value = pipeline(n).resolve(sematic.SilentResolver())
    elapsed = time.perf_counter() - start
    if value != expected_value(shape, n):
        raise RuntimeError(f"{shape}({n}) resolved to {value!r}")
    return elapsed


def error_name(error: BaseException) -> str:
    """The RecursionError that 0.41 wraps in PipelineRunError, else the error's own type."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, RecursionError):
            return "RecursionError"
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


def measure(sematic: Any, pipeline: Callable[[int], Any], shape: str, n: int) -> dict[str, Any]:
    """Best of 5 (just one run if it takes over a second), or the error it raised."""
    try:
        best = resolve_seconds(sematic, pipeline, shape, n)
        if best < 1.0:
            best = min(best, *(resolve_seconds(sematic, pipeline, shape, n) for _ in range(4)))
    except Exception as error:  # noqa: BLE001 - a failure is a figure to report
        return {"shape": shape, "n": n, "seconds": None, "error": error_name(error)}
    return {"shape": shape, "n": n, "seconds": best, "error": None}


def chain_limit(sematic: Any, chain: Callable[[int], Any], failing: int) -> int:
    """The largest chain length that resolves, below ``failing`` (which does not)."""
    works = 1
    while failing - works > 1:
        middle = (works + failing) // 2
        try:
            resolve_seconds(sematic, chain, "chain", middle)
            works = middle
        except Exception:  # noqa: BLE001 - RecursionError, wrapped by 0.41
            failing = middle
    return works


def run(sizes: list[int]) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)  # 0.41 logs a deprecation notice and every failure
    sematic, pipelines = define_pipelines()
    with contextlib.redirect_stdout(sys.stderr):
        results = [measure(sematic, pipelines[s], s, n) for s in SHAPES for n in sizes]
        failing = [r["n"] for r in results if r["shape"] == "chain" and r["error"]]
        limit = chain_limit(sematic, pipelines["chain"], min(failing)) if failing else None
    return {
        "version": sematic.__version__,
        "results": results,
        "chain_limit": limit,
        "import_ms": import_ms(sys.executable, "sematic", runs=5),
    }


def print_report(report: dict[str, Any]) -> None:
    version = report["version"]
    print(f"Sematic {version} SilentResolver (build + resolve, best of up to 5)")
    rows: list[list[object]] = []
    for result in report["results"]:
        n, seconds = result["n"], result["seconds"]
        figures = [ms(seconds), ns_per(seconds, n)] if seconds is not None else [result["error"]]
        rows.append([result["shape"], f"{n:,}", *figures])
    print_table(["shape", "N", "total ms", "ns/step"], rows)
    if report["chain_limit"]:
        print(f"longest chain that resolves: N = {report['chain_limit']:,}")
    print(f"import sematic: {report['import_ms']:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--sizes", default="100,1000", help="comma-separated N")
    args = parser.parse_args()
    if "SEMATIC_BENCH_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="sematic041-home-")
        try:
            env = {**os.environ, "HOME": home, "SEMATIC_BENCH_HOME": home}
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env, check=False)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        sys.exit(child.returncode)
    report = run([int(size) for size in args.sizes.split(",")])
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
