"""Pipelines for the CLI tests (module level, so that `sematic rerun` can import them)."""

from __future__ import annotations

import time
from pathlib import Path

import sematic


@sematic.func
def talks(witness: str, seconds: float) -> int:
    """Prints, waits (at most ``seconds``) for a "release" file in ``witness``, prints again."""
    print("before the wait", flush=True)
    Path(witness).mkdir(parents=True, exist_ok=True)
    (Path(witness) / "started").touch()
    deadline = time.monotonic() + seconds
    while not (Path(witness) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("after the wait", flush=True)
    return 7
