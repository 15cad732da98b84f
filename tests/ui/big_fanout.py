"""A pipeline of 100,000 steps, as records written straight into a metadata store.

``big_fanout``: a root, 100,000 runs of ``inc`` under it (every FAILED_EVERY-th failed,
with an exception message and a traceback; the last RUNNING still SCHEDULED; durations
spread from 50 ms to 1 s), and one ``total`` run waiting for them. ``finish_running``
resolves the RUNNING ones, as a resolver would. Used by ``tests/ui/test_ui_large.py`` and
``benchmarks/ui_render.py``; written BATCH runs at a time (SQLite takes it in about 15 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord
from sematic.storage.sql import SqlMetadataStore

STEPS = 100_000
FAILED_EVERY = 10_000  # 10 failures
RUNNING = 5
BATCH = 5_000
AGO = 7200  # the pipeline started two hours ago: what changes now is newer than all of it


def _hex(*parts: int, width: int) -> str:
    return "".join(f"{part:08x}" for part in parts).rjust(width, "0")


def step_id(i: int) -> str:
    return _hex(0xB1, i, width=32)


def is_failed(i: int) -> bool:
    return i % FAILED_EVERY == FAILED_EVERY - 1


def is_running(i: int, steps: int = STEPS, running: int = RUNNING) -> bool:
    """The ``running`` steps before the last (which fails)."""
    return steps - 1 - running <= i < steps - 1


def big_fanout_batches(
    now: float, steps: int = STEPS, running: int = RUNNING
) -> Iterator[tuple[list[RunRecord], list[ArtifactRecord], list[EdgeRecord]]]:
    """The pipeline's records, BATCH runs at a time: the root and ``total`` first."""
    root = _hex(0xB0, 0, width=32)
    total = _hex(0xB2, 0, width=32)
    seed = _hex(0xB3, 0, width=64)
    artifacts = [
        ArtifactRecord(
            id=seed,
            type_description={"type_key": "builtins.int", "type": "int", "kind": "json"},
            summary=7,
            size=1,
            created_at=now,
        )
    ]
    runs = [
        RunRecord(
            id=root,
            root_id=root,
            parent_id=None,
            name="big_fanout",
            function_path="tests.ui.big_fanout",
            state="SCHEDULED",
            created_at=now,
            updated_at=now + 600,
            started_at=now,
        ),
        RunRecord(
            id=total,
            root_id=root,
            parent_id=root,
            name="total",
            function_path="tests.ui.total",
            state="CREATED",
            created_at=now + 500,
            updated_at=now + 600,
        ),
    ]
    yield runs, artifacts, []
    for start in range(0, steps, BATCH):
        runs = []
        edges = []
        for i in range(start, min(steps, start + BATCH)):
            begun = now + 1 + i / 1000
            bad = is_failed(i)
            waiting = is_running(i, steps, running)
            runs.append(
                RunRecord(
                    id=step_id(i),
                    root_id=root,
                    parent_id=root,
                    name="inc",
                    function_path="tests.ui.inc",
                    state="SCHEDULED" if waiting else "FAILED" if bad else "RESOLVED",
                    created_at=begun,
                    updated_at=begun + 1,
                    started_at=begun,
                    ended_at=None if waiting else begun + 0.05 + (i % 97) / 100,
                    inputs={"x": seed},
                    exception_type="ValueError" if bad else None,
                    exception_message=f"inc({i}) refused its input: {i} is unlucky"
                    if bad
                    else None,
                    traceback=(
                        f'Traceback (most recent call last):\n  File "inc.py", line 3, in inc\n'
                        f"ValueError: inc({i}) refused its input"
                        if bad
                        else None
                    ),
                )
            )
            edges.append(EdgeRecord(step_id(i), total, "values", seed))
        yield runs, [], edges


def write_big_fanout(database_url: str, steps: int = STEPS, running: int = RUNNING) -> str:
    """Writes the pipeline into ``database_url``; returns its root run's id."""
    root_id = ""
    with SqlMetadataStore(database_url) as store:
        for runs, artifacts, edges in big_fanout_batches(time.time() - AGO, steps, running):
            root_id = root_id or runs[0].id
            store.write(runs=runs, artifacts=artifacts, edges=edges)
    return root_id


def finish_running(database_url: str, steps: int = STEPS) -> None:
    """Resolves the RUNNING steps still SCHEDULED, now."""
    now = time.time()
    with SqlMetadataStore(database_url) as store:
        runs = [store.get_run(step_id(i)) for i in range(steps) if is_running(i, steps)]
        store.write(
            runs=[replace(run, state="RESOLVED", updated_at=now, ended_at=now) for run in runs]
        )


WIDE_PARTS = 120
WIDE_LEAVES = 19  # fewer than the UI folds: the parts' children are shown one by one


def wide_records(now: float) -> list[RunRecord]:
    """``wide``: WIDE_PARTS runs under the root (of ten functions, 12 runs each: none
    folded), each with WIDE_LEAVES children: 2,401 runs, more than the server lists at
    once, so the parts come with their children cut (``nested``)."""
    root = _hex(0xC0, 0, width=32)
    runs = [
        RunRecord(
            id=root,
            root_id=root,
            parent_id=None,
            name="wide",
            function_path="tests.ui.wide",
            state="RESOLVED",
            created_at=now,
            updated_at=now + 60,
            started_at=now,
            ended_at=now + 60,
        )
    ]
    for p in range(WIDE_PARTS):
        part = _hex(0xC1, p, width=32)
        runs.append(
            RunRecord(
                id=part,
                root_id=root,
                parent_id=root,
                name=f"part{p}",
                function_path=f"tests.ui.part{p % 10}",
                state="RESOLVED",
                created_at=now + p / 100,
                updated_at=now + 1,
            )
        )
        runs.extend(
            RunRecord(
                id=_hex(0xC2, p, j, width=32),
                root_id=root,
                parent_id=part,
                name=f"leaf{p}_{j}",
                function_path="tests.ui.leaf",
                state="RESOLVED",
                created_at=now + p / 100 + j / 10_000,
                updated_at=now + 1,
            )
            for j in range(WIDE_LEAVES)
        )
    return runs
