"""LocalResolver under debuggers and profilers: the same values, timeouts and cancels as without.

Each pipeline run (tests/pipelines/tracing.py) is a subprocess with a deadline, so a regression
(CPython 3.11 spinning forever once a trace function is set) fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines import tracing

ROOT = Path(__file__).parents[3]
DEADLINE = 60  # seconds; the whole script takes about 6 s
SLOWEST_TIMEOUT = 3.0  # seconds for a step with timeout_mins=0.01 (0.6 s) to fail


def _breakpoint_line() -> int:
    source = Path(tracing.__file__).read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if line.endswith("# breakpoint"))


def _run(tmp_path: Path, how: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    python = [sys.executable]
    args = [str(out)]
    stdin = None
    if how in ("settrace", "setprofile"):
        args.append(how)
    elif how == "cProfile":
        python += ["-m", "cProfile", "-o", str(tmp_path / "profile")]
    elif how == "pdb":
        # A breakpoint keeps pdb's trace function set after "continue" (without one pdb
        # removes it); this one is never reached.
        python += ["-m", "pdb"]
        stdin = f"break {tracing.__file__}:{_breakpoint_line()}\ncontinue\nquit\n"
    completed = subprocess.run(
        [*python, "-m", "tests.pipelines.tracing", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    assert out.exists(), completed.stdout[-2000:] + completed.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report


@pytest.mark.parametrize("how", ["plain", "settrace", "setprofile", "cProfile", "pdb"])
def test_a_pipeline_resolves_times_out_and_cancels_the_same_under_a_tracer(
    home: Path, tmp_path: Path, how: str
) -> None:
    report = _run(tmp_path, how)

    assert (report["three_inline"]["value"], report["three_inline"]["error"]) == (6, None)
    for step in ("spins", "sleeps"):
        # Stopped at its timeout, also when blocked in a C call (CPython 3.11 would make a
        # traced resolver wait for that call).
        assert report[step]["error"] == "PipelineFailedError"
        assert report[step]["cause"] == "FunctionTimeoutError"
        assert report[step]["seconds"] < SLOWEST_TIMEOUT, report[step]
    assert report["canceled"]["error"] == "PipelineCanceledError"
    assert report["canceled"]["seconds"] < 10
    # Nothing arrives late: the next pipeline resolves; the timed-out steps were stopped.
    assert (report["again"]["value"], report["again"]["error"]) == (16, None)
    assert report["helpers_stopped"] is True
    assert report["returned"] == []
