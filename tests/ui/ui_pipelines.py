"""Pipelines the UI tests record: values of several types, nesting, worker logs, a slow step.

Imported as ``tests.ui.ui_pipelines`` (workers import functions by that path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

import sematic


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    label: str
    best_city: str


@sematic.func
def make_frame(rows: int) -> pd.DataFrame:
    """A small table of cities and scores."""
    return pd.DataFrame(
        {"city": [f"city{i}" for i in range(rows)], "score": [i * 1.5 for i in range(rows)]}
    )


@sematic.func
def scale(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    return frame.assign(score=frame["score"] * factor)


@sematic.func
def prepare(rows: int) -> pd.DataFrame:
    """Builds the table, then scales it: a nested pipeline."""
    return scale(make_frame(rows), 2.0)


@sematic.func
def make_weights(rows: int) -> np.ndarray:
    return np.arange(rows, dtype=np.int64) * 7


@sematic.func(inline=False)
def announce(rows: int) -> str:
    print(f"announcing {rows} rows from a worker", flush=True)
    return f"{rows} rows"


@sematic.func
def evaluate(frame: pd.DataFrame, note: str, weights: np.ndarray) -> Evaluation:
    best = frame.sort_values("score").iloc[-1]["city"]
    return Evaluation(accuracy=0.875, label=note, best_city=str(best))


@sematic.func
def report(rows: int) -> Evaluation:
    """Prepares a table, announces it, evaluates it."""
    return evaluate(prepare(rows), announce(rows), make_weights(rows))


@sematic.func(inline=False)
def wait_here(seconds: float) -> int:
    """Says it started, then waits (the UI tests cancel it)."""
    print("waiting step started", flush=True)
    time.sleep(seconds)
    return 1


@sematic.func
def waiting_pipeline(seconds: float) -> int:
    return wait_here(seconds)
