"""Canceling a pipeline from outside its resolver: requested in the store, honoured at once."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.core.errors import PipelineCanceledError, PipelineFinishedError, RunNotFoundError
from sematic.core.future import Future
from sematic.resolvers.cancel import force_cancel, request_cancel
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import executions, resumable, three_steps, waits_remotely
from tests.unit.resolvers.conftest import recorded_runs


def _store() -> SqlMetadataStore:
    return SqlMetadataStore(LocalSettings.from_environment().database_url)


def _recorded(run_id: str) -> bool:
    with _store() as store:
        return any(run.id == run_id for run in store.list_runs(root_only=True))


def _when(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class _Background:
    """``future.resolve(LocalResolver())`` in a thread; ``error()`` waits for its end."""

    def __init__(self, future: Future) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(future,))
        self._thread.start()

    def _run(self, future: Future) -> None:
        try:
            future.resolve(LocalResolver(progress=False))
        except BaseException as error:  # noqa: BLE001 - the test reads it
            self._error = error

    def error(self) -> BaseException | None:
        self._thread.join(60)
        assert not self._thread.is_alive(), "the resolver did not stop"
        return self._error


def test_a_cancel_request_stops_a_worker_and_cancels_every_unfinished_run(
    home: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "w"
    future = waits_remotely(str(witness), 120.0)
    background = _Background(future)
    _when(lambda: bool(list(witness.glob("remote_wait.*"))), "the worker to start")
    worker_pid = int(next(witness.glob("remote_wait.*")).read_text())

    with _store() as store:
        root = request_cancel(store, future.id, "stopped from a test")
    assert root.id == future.id

    error = background.error()
    assert isinstance(error, PipelineCanceledError)
    assert "stopped from a test" in str(error)
    states = {run.name: run.state for run in recorded_runs(future.id)}
    assert states == {"waits_remotely": "CANCELED", "remote_wait": "CANCELED", "square": "CANCELED"}
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)


def test_a_cancel_request_interrupts_a_running_inline_function(home: Path, tmp_path: Path) -> None:
    witness = tmp_path / "w"
    future = resumable(str(witness), 120.0)  # its last step polls for a file for 120 s
    background = _Background(future)
    _when(lambda: executions(str(witness), "slow16") == 1, "the slow inline step to start")
    _when(lambda: _recorded(future.id), "the root run to be recorded")

    with _store() as store:
        request_cancel(store, future.id, "enough")

    assert isinstance(background.error(), PipelineCanceledError)
    states = {run.name: run.state for run in recorded_runs(future.id)}
    assert states["slow_step"] == "CANCELED"
    assert states["resumable"] == "CANCELED"
    assert [s for name, s in states.items() if name == "square"] == ["RESOLVED"]


def test_canceling_a_finished_pipeline_or_an_unknown_run_is_a_clear_error(
    home: Path, tmp_path: Path
) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    with _store() as store:
        with pytest.raises(PipelineFinishedError, match="already finished: it is RESOLVED"):
            request_cancel(store, future.id, "too late")
        with pytest.raises(RunNotFoundError):
            request_cancel(store, "0" * 32, "who")
        assert store.cancel_request(future.id) is None
    assert {run.state for run in recorded_runs(future.id)} == {"RESOLVED"}


def test_an_old_request_does_not_cancel_the_pipeline_again_when_it_is_resumed(
    home: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "w"
    future = resumable(str(witness), 120.0)
    background = _Background(future)
    _when(lambda: executions(str(witness), "slow16") == 1, "the slow inline step to start")
    _when(lambda: _recorded(future.id), "the root run to be recorded")
    with _store() as store:
        request_cancel(store, future.id, "pause")
    assert isinstance(background.error(), PipelineCanceledError)

    (witness / "release").touch()
    assert LocalResolver(progress=False).resume(future.id) == 16
    # The two quick steps were not run again.
    assert executions(str(witness), "square2") == executions(str(witness), "square4") == 1
    assert {run.state for run in recorded_runs(future.id)} == {"RESOLVED"}


def test_force_cancel_marks_the_runs_of_a_pipeline_whose_resolver_is_gone(
    home: Path, tmp_path: Path
) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    # As if the resolver had died mid-run: two runs left unfinished in the store.
    with _store() as store:
        runs = store.runs_of_root(future.id)
        stuck = [r for r in runs if r.name in ("three_steps", "step_c")]
        unfinished = [dataclasses.replace(r, state="SCHEDULED", ended_at=None) for r in stuck]
        store.write(runs=unfinished, reopened=[r.id for r in stuck])
        assert force_cancel(store, future.id, "resolver gone") == 2
        after = {run.name: run for run in store.runs_of_root(future.id)}
        transitions = store.transitions_of(after["step_c"].id)
    assert after["three_steps"].state == after["step_c"].state == "CANCELED"
    assert after["step_c"].exception_message == "resolver gone"
    assert after["step_a"].state == after["step_b"].state == "RESOLVED"  # untouched
    assert transitions[-1].state == "CANCELED"
