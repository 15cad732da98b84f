"""Canceling a pipeline from outside its resolver: a request in the metadata store.

``request_cancel`` records the request; the resolver running the pipeline notices it within
a fraction of a second (``CancelWatch``), stops its workers and marks what had not finished
CANCELED. ``force_cancel`` marks the runs CANCELED itself, for a pipeline whose resolver is
gone (its process was killed) and so will never act on the request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from sematic.core.engine import State
from sematic.core.errors import PipelineFinishedError
from sematic.core.ports import MetadataStore
from sematic.core.records import CancelRecord, RunRecord, TransitionRecord

_FINISHED = frozenset(state.value for state in State if state.is_terminal)


def request_cancel(metadata: MetadataStore, run_id: str, reason: str) -> RunRecord:
    """Ask to cancel the pipeline ``run_id`` belongs to; return its root run.

    Raises ``RunNotFoundError`` for an unknown run and ``PipelineFinishedError`` when the
    pipeline has already finished.
    """
    root = metadata.get_run(metadata.get_run(run_id).root_id)
    if root.state in _FINISHED:
        raise PipelineFinishedError(
            f"pipeline {root.name} (root run {root.id}) already finished: it is {root.state}"
        )
    metadata.request_cancel(root.id, reason)
    return root


def force_cancel(metadata: MetadataStore, root_id: str, reason: str) -> int:
    """Mark every unfinished run of the pipeline ``root_id`` CANCELED; return how many."""
    return end_unfinished(metadata, root_id, State.CANCELED, reason)


def end_unfinished(
    metadata: MetadataStore,
    root_id: str,
    state: State,
    reason: str,
    *,
    exception_type: str | None = None,
) -> int:
    """Move every unfinished run of the pipeline ``root_id`` to ``state`` now; return how
    many. With ``exception_type``, each run's error becomes that type and ``reason``;
    without, a run keeps its own error message, else gets ``reason``."""
    now = time.time()
    unfinished = [run for run in metadata.runs_of_root(root_id) if run.state not in _FINISHED]
    metadata.write(
        runs=[
            dataclasses.replace(
                run,
                state=state.value,
                updated_at=now,
                ended_at=now,
                exception_type=exception_type or run.exception_type,
                exception_message=reason if exception_type else (run.exception_message or reason),
            )
            for run in unfinished
        ],
        transitions=[TransitionRecord(run.id, state.value, now) for run in unfinished],
    )
    return len(unfinished)


def is_finished(run: RunRecord) -> bool:
    return run.state in _FINISHED


class CancelWatch:
    """Polls the metadata store for a request to cancel one pipeline, in a daemon thread.

    Only requests made after the watch started count (an old request of a pipeline being
    resumed does not cancel it again); no clocks are compared. ``on_cancel`` is called
    once, from the watch thread.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        root_id: str,
        on_cancel: Callable[[str], None],
        *,
        interval: float = 0.25,
    ) -> None:
        self._metadata = metadata
        self._root_id = root_id
        self._on_cancel = on_cancel
        self._interval = interval
        self._stop = threading.Event()
        self.reason: str | None = None
        self._old = metadata.cancel_request(root_id)
        self._thread = threading.Thread(target=self._watch, name="sematic-cancel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            request = self._request()
            if request is not None and request != self._old:
                self.reason = request.reason
                self._on_cancel(request.reason)
                return

    def _request(self) -> CancelRecord | None:
        try:
            return self._metadata.cancel_request(self._root_id)
        except Exception:  # noqa: BLE001 - a store hiccup: ask again next time
            return None
