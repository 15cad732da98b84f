"""Small helpers shared by the benchmark scripts: timing, import time, table printing and
a Sematic server to measure.

Only the standard library is used, so the Sematic 0.41 reference script can import this
module from another virtualenv.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def best_of(repeats: int, run: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
    """Call ``run`` ``repeats`` times; return the timings of the call with the least total.

    ``run`` returns its own timings (seconds), e.g. ``(build, resolve)``. Garbage left by
    the previous call is collected before each call, outside the measured time.
    """
    best: tuple[float, ...] | None = None
    for _ in range(repeats):
        gc.collect()
        timings = run()
        if best is None or sum(timings) < sum(best):
            best = timings
    assert best is not None
    return best


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action()`` takes, measured with ``time.perf_counter``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def repeats_for(size: int) -> int:
    """How many repeats to take the best of: more for small sizes, one for 100k."""
    if size <= 1_000:
        return 7
    if size <= 10_000:
        return 3
    return 1


def import_ms(
    python: str, module: str, runs: int = 7, env: Mapping[str, str] | None = None
) -> float:
    """Median wall time (ms) of ``import module`` in a fresh interpreter, startup excluded.

    Each round runs ``python -c pass`` and ``python -c "import module"`` back to back; the
    result is the median of the per-round differences.
    """
    full_env = {**os.environ, **(env or {})}

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([python, "-c", code], check=True, env=full_env)
        return time.perf_counter() - start

    wall("pass")  # warm the OS file cache
    wall(f"import {module}")
    differences = [wall(f"import {module}") - wall("pass") for _ in range(runs)]
    return statistics.median(differences) * 1000


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` under ``headers``: first column left-aligned, the others right.

    A row may be shorter than ``headers`` (e.g. a shape that failed): it is padded.
    """
    width = len(headers)
    cells = [[str(h) for h in headers]]
    cells += [[str(c) for c in row] + [""] * (width - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * width for width in widths))
    for row in cells[1:]:
        print(line(row))


def ms(seconds: float) -> str:
    """Seconds as milliseconds with a precision suited to the magnitude."""
    value = seconds * 1000
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def ns_per(seconds: float, count: int) -> str:
    return f"{seconds * 1e9 / count:,.0f}"


SERVER_READY = "sematic server listening on "


def start_server(home: Path, source: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m sematic.server --port 0`` of the package in ``source``, keeping its runs
    in ``home`` (no other ``SEMATIC_*`` setting); returns the process and its base URL."""
    home.mkdir(parents=True, exist_ok=True)
    output = home / "server.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMATIC_")}
    env.update(SEMATIC_HOME=str(home), PYTHONPATH=str(source))
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sematic.server", "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if line.startswith(SERVER_READY):
                return process, line.removeprefix(SERVER_READY).strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the server did not start: {output.read_text()}")
