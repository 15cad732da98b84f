"""Steering local runs: rerun-from, Ctrl-C, progress, corruption, PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import cached_pipeline, executions, mixed, three_steps
from tests.unit.resolvers.conftest import recorded_runs

ROOT = Path(__file__).parents[3]


def runs_of(root_id: str) -> dict[str, str]:
    return {run.name: run.state for run in recorded_runs(root_id)}


def run_ids_by_name(root_id: str) -> dict[str, str]:
    return {run.name: run.id for run in recorded_runs(root_id)}


def test_rerun_from_reexecutes_that_run_and_downstream_only(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    first = three_steps(witness)
    assert first.resolve(LocalResolver()) == 111
    step_b = run_ids_by_name(first.id)["step_b"]

    again = three_steps(witness)
    assert again.resolve(LocalResolver(rerun_from=step_b)) == 111
    assert executions(witness, "step_a") == 1  # upstream: reused
    assert executions(witness, "step_b") == 2
    assert executions(witness, "step_c") == 2  # downstream: executed again
    assert set(runs_of(again.id).values()) == {"RESOLVED"}


def test_rerun_from_an_unknown_run_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    from sematic.core.errors import RunNotFoundError

    three_steps(str(tmp_path / "w")).resolve(LocalResolver())
    with pytest.raises(RunNotFoundError, match="nope"):
        three_steps(str(tmp_path / "w")).resolve(LocalResolver(rerun_from="nope"))


SCRIPT = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.pipelines.local import waits_remotely
    future = waits_remotely(sys.argv[1], 120.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)


def test_ctrl_c_cancels_every_unfinished_run_and_stops_workers(home: Path, tmp_path: Path) -> None:
    witness = tmp_path / "w"
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(witness)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as process:
        assert process.stdout is not None
        root_id = process.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while not list(witness.glob("remote_wait.*")):
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.05)
        worker_pid = int(next(witness.glob("remote_wait.*")).read_text())
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert "KeyboardInterrupt" in stderr
    assert process.returncode != 0
    states = runs_of(root_id)
    assert states == {"waits_remotely": "CANCELED", "remote_wait": "CANCELED", "square": "CANCELED"}
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)


def test_progress_display_prints_the_root_and_a_summary(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=True))
    err = capsys.readouterr().err
    assert f"root run {future.id}" in err
    assert "three_steps: resolved — 4 done, 0 running, 0 failed" in err


def _delete(payload: Path) -> None:
    payload.unlink()


def _tamper(payload: Path) -> None:
    payload.write_bytes(payload.read_bytes() + b" tampered")


@pytest.mark.parametrize("damage", [_delete, _tamper], ids=["missing", "corrupted"])
def test_damaged_artifacts_heal_and_nothing_else_is_lost(
    home: Path, tmp_path: Path, damage: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_SMALL_PAYLOAD_BYTES", "0")  # every value a file, to damage
    witness = str(tmp_path / "w")
    first = cached_pipeline(5, witness)
    first.resolve(LocalResolver())
    for payload in (home / "artifacts").rglob("*"):
        if payload.is_file():
            damage(payload)
    # Treated as absent: the cached step executes again and every payload is stored again
    # (more cases in test_healing.py).
    assert cached_pipeline(5, witness).resolve(LocalResolver()) == 1005
    assert executions(witness, "expensive5") == 2
    assert runs_of(first.id) == {"cached_pipeline": "RESOLVED", "expensive": "RESOLVED"}


def test_local_resolution_on_postgresql(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEMATIC_DATABASE_URL", postgres_url)
    future = mixed(2, str(tmp_path / "w"))
    assert future.resolve(LocalResolver()).total == 2
    with SqlMetadataStore(postgres_url) as metadata:
        runs = metadata.runs_of_root(future.id)
    assert len(runs) == 8 and {run.state for run in runs} == {"RESOLVED"}
