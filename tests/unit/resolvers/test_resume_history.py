"""Resume after SIGKILL keeps history: finished runs are only read, never re-written."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sematic import LocalResolver
from tests.pipelines.resume import executions
from tests.unit.resolvers.conftest import recorded_runs

ROOT = Path(__file__).parents[3]

SCRIPT = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.pipelines.resume import outer
    future = outer(sys.argv[1], 60.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)

# Step name in the witness folder -> the function that writes it.
STEPS = {
    "add1+1": "add",
    "remote_add2+1": "remote_add",
    "add3+10": "add",
    "add13+1": "add",
    "remote_add14+2": "remote_add",
    "hold16": "hold",
    "add16+100": "add",
}


def _rows(database: Path, root_id: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Each RESOLVED run's row, and each run's transition rows, exactly as stored."""
    connection = sqlite3.connect(database)
    try:
        runs = connection.execute(
            "SELECT * FROM runs WHERE root_id = ? AND state = 'RESOLVED' ORDER BY id", (root_id,)
        ).fetchall()
        transitions: dict[str, list[Any]] = {}
        for row in connection.execute(
            "SELECT t.id, t.run_id, t.state, t.at FROM run_transitions t "
            "JOIN runs r ON r.id = t.run_id WHERE r.root_id = ? ORDER BY t.id",
            (root_id,),
        ):
            transitions.setdefault(row[1], []).append(row)
    finally:
        connection.close()
    return {row[0]: row for row in runs}, transitions


def _kill_while_holding(witness: Path) -> str:
    """Run ``outer`` in a subprocess; SIGKILL it once every step before ``hold`` is
    recorded RESOLVED and ``hold`` is executing. Return the root run id."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(witness)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        root_id = process.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the pipeline process ended before it was killed"
            assert time.monotonic() < deadline, "the pipeline never reached its holding step"
            resolved = [run.name for run in recorded_runs(root_id) if run.state == "RESOLVED"]
            if executions(str(witness), "hold16") and len(resolved) == 5:
                return root_id
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_resume_keeps_finished_runs_untouched_and_does_not_run_them_again(
    home: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "w"
    witness.mkdir()
    root_id = _kill_while_holding(witness)
    database = home / "db.sqlite3"
    runs_before, transitions_before = _rows(database, root_id)
    resolved = sorted(run.name for run in recorded_runs(root_id) if run.state == "RESOLVED")
    assert resolved == ["add"] * 3 + ["remote_add"] * 2 and len(runs_before) == 5
    ran_before = {step: executions(str(witness), step) for step in STEPS}

    (witness / "release").touch()
    assert LocalResolver(progress=False).resume(root_id) == 116

    runs_after, transitions_after = _rows(database, root_id)
    for run_id, row in runs_before.items():
        assert runs_after[run_id] == row  # created_at, started_at, ended_at, state... as they were
        assert transitions_after[run_id] == transitions_before[run_id]  # no transition added
    # Steps recorded as resolved did not run again; the others ran (again) once.
    for step, function in STEPS.items():
        if ran_before[step]:
            finished = function != "hold"
            assert executions(str(witness), step) == (1 if finished else 2), step
        else:
            assert executions(str(witness), step) == 1, step
    assert all(run.state == "RESOLVED" for run in recorded_runs(root_id))


def test_resume_keeps_when_unfinished_runs_were_created_and_started(
    home: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "w"
    witness.mkdir()
    root_id = _kill_while_holding(witness)
    before = {run.id: run for run in recorded_runs(root_id) if run.state != "RESOLVED"}
    assert root_id in before and before[root_id].state == "RAN"

    (witness / "release").touch()
    LocalResolver(progress=False).resume(root_id)

    after = {run.id: run for run in recorded_runs(root_id)}
    for run_id, run in before.items():
        assert after[run_id].created_at == run.created_at
        assert after[run_id].started_at == run.started_at
        assert after[run_id].state == "RESOLVED"


def test_a_resolved_step_whose_output_was_damaged_executes_again_and_is_recorded(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_SMALL_PAYLOAD_BYTES", "0")  # every value a file, to damage
    witness = tmp_path / "w"
    witness.mkdir()
    root_id = _kill_while_holding(witness)
    resolved = [run for run in recorded_runs(root_id) if run.state == "RESOLVED"]
    damaged = min((run for run in resolved if run.name == "add"), key=lambda r: r.created_at)
    assert damaged.output is not None
    payload = home / "artifacts" / damaged.output[:2] / damaged.output
    payload.write_bytes(payload.read_bytes() + b" tampered")
    _, transitions_before = _rows(home / "db.sqlite3", root_id)

    (witness / "release").touch()
    assert LocalResolver(progress=False).resume(root_id) == 116

    after = {run.id: run for run in recorded_runs(root_id)}[damaged.id]
    assert after.state == "RESOLVED" and after.created_at == damaged.created_at
    _, transitions_after = _rows(home / "db.sqlite3", root_id)
    new = transitions_after[damaged.id][len(transitions_before[damaged.id]) :]
    assert [row[2] for row in new] == ["SCHEDULED", "RESOLVED"]
    assert executions(str(witness), "add1+1") == 2  # add(1, 1): its output was damaged
