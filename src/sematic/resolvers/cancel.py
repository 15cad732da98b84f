"""Canceling a pipeline from outside its resolver: a request in the metadata store.

``request_cancel`` records the request; the resolver running the pipeline notices it within
a fraction of a second (``CancelWatch``), stops its workers and marks what had not finished
CANCELED. ``force_cancel`` marks the runs CANCELED itself, for a pipeline whose resolver is
gone (its process was killed) and so will never act on the request.

A watch that cannot read the store logs each failure (logger ``sematic.resolvers.cancel``)
and asks again later and later; after ``MAX_FAILURES`` failures in a row it gives up with an
``InfrastructureError`` rather than leave the pipeline deaf to cancels.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from sematic.core.engine import TERMINAL, State
from sematic.core.errors import InfrastructureError, PipelineFinishedError
from sematic.core.ports import MetadataStore
from sematic.core.records import RunRecord, TransitionRecord

_log = logging.getLogger(__name__)

# Store errors in a row before a CancelWatch gives up; with the back-off below (doubling
# from the interval up to MAX_BACKOFF_S) that is about a minute of a store that fails.
MAX_FAILURES = 16
MAX_BACKOFF_S = 5.0


def request_cancel(metadata: MetadataStore, run_id: str, reason: str) -> RunRecord:
    """Ask to cancel the pipeline ``run_id`` belongs to; return its root run.

    Raises ``RunNotFoundError`` for an unknown run and ``PipelineFinishedError`` when the
    pipeline has already finished.
    """
    root = metadata.get_run(metadata.get_run(run_id).root_id)
    if root.state in TERMINAL:
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
    unfinished = [run for run in metadata.runs_of_root(root_id) if run.state not in TERMINAL]
    metadata.write(
        runs=[
            dataclasses.replace(
                run,
                state=state,
                updated_at=now,
                ended_at=now,
                exception_type=exception_type or run.exception_type,
                exception_message=reason if exception_type else (run.exception_message or reason),
            )
            for run in unfinished
        ],
        transitions=[TransitionRecord(run.id, state, now) for run in unfinished],
    )
    return len(unfinished)


def is_finished(run: RunRecord) -> bool:
    return run.state in TERMINAL


class CancelWatch:
    """Polls the metadata store for a request to cancel one pipeline, in a daemon thread.

    Only requests made after the watch started count (an old request of a pipeline being
    resumed does not cancel it again); no clocks are compared. ``on_cancel`` is called
    once, from the watch thread.

    A store error is logged and counted (``failures``: in a row), and the next poll waits
    twice as long (up to ``max_backoff`` seconds); a poll that succeeds starts over. After
    ``max_failures`` errors in a row the watch stops: ``failure`` holds an
    ``InfrastructureError`` chained to the last store error, and reading ``reason`` raises
    it, so the resolver polling ``reason`` fails instead of never hearing of a cancel.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        root_id: str,
        on_cancel: Callable[[str], None],
        *,
        interval: float = 0.25,
        max_failures: int = MAX_FAILURES,
        max_backoff: float = MAX_BACKOFF_S,
    ) -> None:
        self._metadata = metadata
        self._root_id = root_id
        self._on_cancel = on_cancel
        self._interval = interval
        self._max_failures = max_failures
        self._max_backoff = max(max_backoff, interval)
        self._stop = threading.Event()
        self._reason: str | None = None
        self.failures = 0
        self.failure: InfrastructureError | None = None
        self._old = metadata.cancel_request(root_id)
        self._thread = threading.Thread(target=self._watch, name="sematic-cancel", daemon=True)
        self._thread.start()

    @property
    def reason(self) -> str | None:
        """Why the pipeline was canceled, once a request came (None until then).

        Raises ``failure`` once the watch gave up on the store.
        """
        if self.failure is not None:
            raise self.failure
        return self._reason

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self._delay()):
            try:
                request = self._metadata.cancel_request(self._root_id)
            except Exception as error:  # noqa: BLE001 - a store hiccup: counted, asked again
                if self._failed(error):
                    return
                continue
            if self.failures:
                _log.warning(
                    "read the cancel requests of pipeline %s again after %d failures",
                    self._root_id,
                    self.failures,
                )
                self.failures = 0
            if request is not None and request != self._old:
                self._reason = request.reason
                self._on_cancel(request.reason)
                return

    def _delay(self) -> float:
        """The interval, doubled for each store error in a row (up to the maximum)."""
        return min(self._interval * 2.0 ** min(self.failures, 32), self._max_backoff)

    def _failed(self, error: Exception) -> bool:
        """Count and log one store error; True when the watch gives up."""
        self.failures += 1
        what = f"{type(error).__name__}: {error}"
        if self.failures < self._max_failures:
            _log.warning(
                "cannot read the cancel requests of pipeline %s (failure %d of %d in a "
                "row, asking again in %.1f s): %s",
                self._root_id,
                self.failures,
                self._max_failures,
                self._delay(),
                what,
            )
            return False
        failure = InfrastructureError(
            f"gave up watching for a request to cancel pipeline {self._root_id}: the "
            f"metadata store failed {self.failures} times in a row (last: {what}); a cancel "
            "could no longer reach this resolver. Check that its database or Sematic server "
            "is reachable."
        )
        failure.__cause__ = error
        self.failure = failure
        _log.error("%s", failure)
        return True
