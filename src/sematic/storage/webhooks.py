"""Run state changes sent to a webhook: a ``MetadataStore`` decorator.

``WebhookStore`` wraps any metadata store. After the wrapped ``write`` succeeded, it queues
one notification per transition whose state is configured (of root runs only, or of every
run) and returns at once; one daemon thread posts them, as Slack-compatible JSON::

    {"text": "<one line for humans>",
     "sematic": {"event": "run.state_changed", "run_id": ..., "root_id": ..., "parent_id": ...,
                 "name": ..., "function_path": ..., "old_state": ..., "state": ...,
                 "at": "<ISO 8601, UTC>", "url": ..., "error": ...}}

(Slack shows ``text`` and ignores the other key.) Each post gets ``timeout`` seconds and up
to ``attempts`` tries, backing off, when the webhook cannot be reached, times out or answers
5xx or 429. The queue holds ``queue_size`` notifications: beyond that, new ones are dropped
and counted (one warning). ``close`` sends what is queued for at most ``flush_timeout``
seconds, then gives up. Nothing here raises into the pipeline nor makes ``write`` wait on
the webhook. The webhook's URL (Slack's carries a token in its path) is only ever logged
with its path hidden (``redact_url``).

A transition the wrapped store will not record is not sent: a run already recorded in a
terminal state keeps it (unless reopened), and a transition sent again (a client's retried
write) is recognized by its run, state and time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from sematic.core.engine import TERMINAL, State
from sematic.core.errors import SematicError
from sematic.core.ports import MetadataStore
from sematic.core.records import (
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_STATES", "WebhookConfig", "WebhookStore", "redact_url"]

_log = logging.getLogger(__name__)

# What a team usually wants to hear about: how each pipeline ended.
DEFAULT_STATES: frozenset[State] = TERMINAL
RunsScope = Literal["pipelines", "all"]
_SEEN = 10_000  # transitions remembered, to recognize one sent again
_MAX_BACKOFF_S = 10.0
_ICONS = {
    State.RESOLVED: "\u2705",  # white heavy check mark
    State.FAILED: "\u274c",  # cross mark
    State.NESTED_FAILED: "\u274c",
    State.CANCELED: "\u26d4",  # no entry
}


def redact_url(url: str) -> str:
    """``url`` with its path, query and credentials hidden: ``https://hooks.slack.com/...``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unparsable URL>"
    shown = f"[{host}]" if ":" in host else host
    hidden = "/..." if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{shown}{port}{hidden}"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where and what to notify. ``runs``: "pipelines" (root runs only) or "all".
    ``ui_url``: the Sematic server whose web UI the messages link to (None: no link)."""

    url: str = field(repr=False)
    states: frozenset[State] = DEFAULT_STATES
    runs: RunsScope = "pipelines"
    ui_url: str | None = None
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    queue_size: int = 1000
    flush_timeout: float = 3.0

    def __repr__(self) -> str:
        states = ",".join(sorted(self.states))
        return f"WebhookConfig({redact_url(self.url)!r}, states={states}, runs={self.runs})"


class WebhookStore:
    """``inner``, notifying ``config.url`` of the state changes written through it."""

    def __init__(self, inner: MetadataStore, config: WebhookConfig) -> None:
        self.inner = inner
        self.config = config
        self.sent = 0  # notifications the webhook accepted
        self.failed = 0  # notifications given up after their attempts
        self.dropped = 0  # notifications not queued (queue full, or closed)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(config.queue_size)
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, State, float], None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._abandon = threading.Event()
        self._failing = False

    def __repr__(self) -> str:
        return f"WebhookStore({self.inner!r}, {self.config!r})"

    # -- the decorated write ---------------------------------------------------------------

    def write(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        transitions: Sequence[TransitionRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        edges: Sequence[EdgeRecord] = (),
        reopened: Sequence[str] = (),
    ) -> None:
        wanted = [t for t in transitions if t.state in self.config.states]
        if wanted and self.config.runs == "pipelines":  # no need to read the steps' rows
            steps = {run.id for run in runs if run.parent_id is not None}
            wanted = [t for t in wanted if t.run_id not in steps]
        stored = self._stored(wanted) if wanted else {}
        self.inner.write(
            runs=runs, transitions=transitions, artifacts=artifacts, edges=edges, reopened=reopened
        )
        if not wanted:
            return
        try:
            self._queue_notifications(wanted, runs, transitions, reopened, stored)
        except Exception:  # noqa: BLE001 (never into the pipeline: the write succeeded)
            _log.exception("webhook %s: could not prepare a notification", self._shown)

    def _stored(self, wanted: Sequence[TransitionRecord]) -> dict[str, RunRecord | None]:
        """The runs of ``wanted`` as stored before the write (None: not yet recorded)."""
        found: dict[str, RunRecord | None] = {}
        for run_id in {t.run_id for t in wanted}:
            try:
                found[run_id] = self.inner.get_run(run_id)
            except SematicError:  # not recorded yet (or unreadable: notify anyway)
                found[run_id] = None
            except Exception:  # noqa: BLE001 (a notification never keeps a write from happening)
                _log.exception("webhook %s: could not read run %s", self._shown, run_id)
                found[run_id] = None
        return found

    def _queue_notifications(
        self,
        wanted: Sequence[TransitionRecord],
        runs: Sequence[RunRecord],
        transitions: Sequence[TransitionRecord],
        reopened: Sequence[str],
        stored: dict[str, RunRecord | None],
    ) -> None:
        written = {run.id: run for run in runs}
        for transition in sorted(wanted, key=lambda t: t.at):
            before = stored.get(transition.run_id)
            if before is not None and before.state in TERMINAL and before.id not in reopened:
                continue  # the store keeps the terminal state it had: nothing changed
            record = written.get(transition.run_id) or before
            if record is None:
                continue
            if self.config.runs == "pipelines" and record.parent_id is not None:
                continue
            if not self._first_time(transition):
                continue
            earlier = sorted(
                (t for t in transitions if t.run_id == transition.run_id and t.at < transition.at),
                key=lambda t: t.at,
            )
            old = earlier[-1].state if earlier else (before.state if before else None)
            self._enqueue(self._payload(record, transition, old))

    def _first_time(self, transition: TransitionRecord) -> bool:
        key = (transition.run_id, transition.state, transition.at)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > _SEEN:
                self._seen.popitem(last=False)
            return True

    def _payload(
        self, run: RunRecord, transition: TransitionRecord, old: State | None
    ) -> dict[str, Any]:
        state = transition.state
        kind = "Pipeline" if run.parent_id is None else "Run"
        change = f"{old} -> {state}" if old is not None and old != state else str(state)
        url = f"{self.config.ui_url.rstrip('/')}/#/runs/{run.id}" if self.config.ui_url else None
        error = None
        if state in (State.FAILED, State.NESTED_FAILED) and run.exception_type:
            message = (run.exception_message or "").strip().splitlines()
            error = run.exception_type.rpartition(".")[2]
            if message:
                error = f"{error}: {message[0][:300]}"
        text = f"{_ICONS.get(state, '')} {kind} {run.name} {change} (run {run.id})".strip()
        if error:
            text += f": {error}"
        if url:
            text += f" <{url}|open in Sematic>"
        return {
            "text": text,
            "sematic": {
                "event": "run.state_changed",
                "run_id": run.id,
                "root_id": run.root_id,
                "parent_id": run.parent_id,
                "name": run.name,
                "function_path": run.function_path,
                "old_state": None if old is None else str(old),
                "state": str(state),
                # timezone.utc, not UTC (3.11): worker images may run Python 3.10
                "at": datetime.fromtimestamp(transition.at, timezone.utc).isoformat(),  # noqa: UP017
                "url": url,
                "error": error,
            },
        }

    # -- the sender ------------------------------------------------------------------------

    @property
    def _shown(self) -> str:
        return redact_url(self.config.url)

    def _enqueue(self, payload: dict[str, Any]) -> None:
        with self._lock:
            if self._closing.is_set():
                self.dropped += 1
                return
            try:
                self._queue.put_nowait(payload)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1:
                    _log.warning(
                        "webhook %s: %d notifications queued, the webhook is too slow; "
                        "dropping new ones (counted in .dropped)",
                        self._shown,
                        self.config.queue_size,
                    )
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_all, name="sematic-webhook", daemon=True
                )
                self._thread.start()

    def _send_all(self) -> None:
        import httpx

        try:
            with httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client:
                while not self._abandon.is_set():
                    try:
                        payload = self._queue.get(timeout=0.05)
                    except queue.Empty:
                        if self._closing.is_set():
                            return
                        continue
                    self._deliver(client, payload)
        except Exception:  # noqa: BLE001 (the thread ends quietly whatever happens)
            _log.exception("webhook %s: the sender stopped", self._shown)

    def _deliver(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        import httpx

        reason = "not sent"
        for attempt in range(self.config.attempts):
            if attempt:
                delay = min(self.config.backoff * 2 ** (attempt - 1), _MAX_BACKOFF_S)
                if self._abandon.wait(delay):
                    break
            try:
                response = client.post(self.config.url, json=payload)
            except httpx.TransportError as exc:  # unreachable, timed out: try again
                reason = f"{type(exc).__name__}"
                continue
            except httpx.HTTPError as exc:  # e.g. an invalid URL: trying again cannot help
                reason = f"{type(exc).__name__}"
                break
            if response.is_success:
                self.sent += 1
                if self._failing:
                    self._failing = False
                    _log.info("webhook %s: delivering again", self._shown)
                return
            reason = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break
        self.failed += 1
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        _log.log(
            level,
            "webhook %s: gave up a notification of run %s (%s)",
            self._shown,
            payload["sematic"]["run_id"],
            reason,
        )

    def close(self) -> None:
        """Send what is queued for at most ``flush_timeout`` seconds, then close ``inner``."""
        try:
            with self._lock:
                self._closing.set()
                thread = self._thread
            if thread is not None:
                thread.join(self.config.flush_timeout)
                if thread.is_alive():
                    self._abandon.set()
                    _log.warning(
                        "webhook %s: gave up sending %d queued notifications (and the one "
                        "being sent) after %.0f s",
                        self._shown,
                        self._queue.qsize(),
                        self.config.flush_timeout,
                    )
        finally:
            self.inner.close()

    def __enter__(self) -> WebhookStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- everything else is the wrapped store's --------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        return self.inner.get_run(run_id)

    def runs_of_root(self, root_id: str) -> list[RunRecord]:
        return self.inner.runs_of_root(root_id)

    def list_runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        root_only: bool = False,
        submitted_by: str | None = None,
        root_id: str | None = None,
        in_pods: bool = False,
        after: tuple[float, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        return self.inner.list_runs(
            status=status,
            name=name,
            tag=tag,
            root_only=root_only,
            submitted_by=submitted_by,
            root_id=root_id,
            in_pods=in_pods,
            after=after,
            limit=limit,
            offset=offset,
        )

    def count_runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        root_only: bool = False,
        submitted_by: str | None = None,
        root_id: str | None = None,
        in_pods: bool = False,
        cap: int | None = None,
    ) -> int:
        return self.inner.count_runs(
            status=status,
            name=name,
            tag=tag,
            root_only=root_only,
            submitted_by=submitted_by,
            root_id=root_id,
            in_pods=in_pods,
            cap=cap,
        )

    def transitions_of(self, run_id: str) -> list[TransitionRecord]:
        return self.inner.transitions_of(run_id)

    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        return self.inner.get_artifact(artifact_id)

    def get_artifacts(self, ids: Sequence[str]) -> list[ArtifactRecord]:
        return self.inner.get_artifacts(ids)

    def edges_of_root(self, root_id: str) -> list[EdgeRecord]:
        return self.inner.edges_of_root(root_id)

    def find_cached_output(self, cache_key: str) -> str | None:
        return self.inner.find_cached_output(cache_key)

    def changed_runs(
        self,
        *,
        since: float,
        root_id: str | None = None,
        limit: int = 1000,
        after_id: str | None = None,
    ) -> list[RunRecord]:
        return self.inner.changed_runs(since=since, root_id=root_id, limit=limit, after_id=after_id)

    def request_cancel(self, root_id: str, reason: str) -> None:
        self.inner.request_cancel(root_id, reason)

    def cancel_request(self, root_id: str) -> CancelRecord | None:
        return self.inner.cancel_request(root_id)
