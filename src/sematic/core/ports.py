"""The small interfaces adapters implement; resolvers wire them to the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sematic.core.engine import Event, Execute, Run, State
from sematic.core.errors import SematicError, WorkerLostError
from sematic.core.jobs import WorkerJob, WorkerResult
from sematic.core.keys import ApiKeyRecord, NewApiKey, Principal, Role
from sematic.core.records import (
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)


class Executor(Protocol):
    """Runs the functions the engine schedules and reports what came of them.

    Lifecycle: ``submit`` any number of runs, ``next_event`` blocks until one of them
    reports, ``abort`` stops one, ``close`` releases everything (also after an error).
    """

    def submit(self, command: Execute) -> None: ...

    def next_event(self) -> Event: ...

    def abort(self, run: Run) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Exited:
    """A worker ended: ``key`` is its run's id; ``returncode`` negative when killed by that
    signal (a process), 0 or 1 for a Job that succeeded or failed."""

    key: str
    returncode: int


@dataclass(frozen=True, slots=True)
class WorkerLoss:
    """Why a worker reported nothing: ``reason`` ends a sentence starting "the worker of
    f() ..."; ``error`` is the exception the run fails with (an InfrastructureError is
    retried by default, a UserError only if the function's RetrySettings lists it)."""

    reason: str
    error: Callable[[str], SematicError] = WorkerLostError


class Workers(Protocol):
    """Where ``inline=False`` functions run: worker processes on this machine
    (``executors.processes.ProcessWorkers``) or Kubernetes Jobs
    (``kubernetes.workers.KubernetesWorkers``). Each runs ``python -m sematic.worker`` with
    a ``WorkerJob``; the scheduler reads what it stored through its ArtifactStore."""

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None: ...

    def wait_any(self, timeout: float) -> Exited | None:
        """The next worker to end within ``timeout`` seconds (0: only one already ended)."""
        ...

    def kill(self, key: str) -> None: ...

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        """What the worker reported, or why it reported nothing."""
        ...

    def attempt(self, key: str) -> dict[str, Any] | None:
        """Where the run ``key`` just ended (a pod: ``sematic.core.usage``), asked once
        after ``wait_any``; None for a process on this machine (its run's times say it)."""
        ...

    def close(self) -> None: ...


class RunObserver(Protocol):
    """Told of every state change, in order (recorders, progress displays).

    ``value`` is the run's value when ``new`` is RESOLVED. ``flush`` is called after the
    changes of each engine step: a recorder makes them durable there, in one write.
    Implementations accept and ignore keyword arguments they do not know.
    """

    def state_changed(
        self, *, run: Run, old: State, new: State, root_id: str, value: Any = None
    ) -> None: ...

    def flush(self) -> None: ...


class MetadataStore(Protocol):
    """Keeps runs, their transitions, artifact descriptions and edges (never payloads).

    ``write`` applies everything it is given in one transaction: when it returns, it is
    durable. Runs are upserted by id; artifacts and edges already present are left as is;
    a transition already recorded is not recorded again. A run recorded in a terminal state
    keeps it (a late writer's other state is dropped), unless its id is in ``reopened``:
    a resumed pipeline runs again what failed or was canceled.
    """

    def write(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        transitions: Sequence[TransitionRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        edges: Sequence[EdgeRecord] = (),
        reopened: Sequence[str] = (),
    ) -> None: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def runs_of_root(self, root_id: str) -> list[RunRecord]: ...

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
        """Matching runs, newest first (ties: greater id first); ``after`` is the
        ``(created_at, id)`` of the previous page's last run."""
        ...

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
        """How many runs ``list_runs`` would list; with ``cap``, at most ``cap``."""
        ...

    def transitions_of(self, run_id: str) -> list[TransitionRecord]: ...

    def get_artifact(self, artifact_id: str) -> ArtifactRecord: ...

    def get_artifacts(self, ids: Sequence[str]) -> list[ArtifactRecord]: ...

    def edges_of_root(self, root_id: str) -> list[EdgeRecord]: ...

    def find_cached_output(self, cache_key: str) -> str | None: ...

    def changed_runs(
        self,
        *,
        since: float,
        root_id: str | None = None,
        limit: int = 1000,
        after_id: str | None = None,
    ) -> list[RunRecord]: ...

    def request_cancel(self, root_id: str, reason: str) -> None: ...

    def cancel_request(self, root_id: str) -> CancelRecord | None: ...

    def close(self) -> None: ...


class ApiKeyStore(Protocol):
    """The API keys of a team server, kept hashed (``sematic.core.keys``).

    ``authenticate`` reads the store on every call, so that a key revoked through one
    server is refused by every server sharing the store at its next request.
    """

    def create(self, user: str, name: str, role: Role) -> NewApiKey: ...

    def list(self) -> list[ApiKeyRecord]: ...

    def revoke(self, key_id: str) -> ApiKeyRecord: ...

    def rotate(self, key_id: str) -> NewApiKey: ...

    def authenticate(self, key: str) -> Principal | None: ...


class Mailbox(Protocol):
    """Ordered channels of small JSON messages (``channel`` names as in
    ``sematic.server.mailbox``): warm worker pods and their driver exchange steps and
    results through them.

    ``post`` gives the new message's id; ids increase across all channels, so a reader
    keeps the last id it saw as its cursor. ``read`` gives the channel's messages with an
    id above ``after``, oldest first, at most ``limit``. ``drop`` deletes the messages of
    ``channel`` and of every channel under ``channel/``, and says how many.
    """

    def post(self, channel: str, message: dict[str, Any]) -> int: ...

    def read(
        self, channel: str, after: int, limit: int = 100
    ) -> list[tuple[int, dict[str, Any]]]: ...

    def drop(self, channel: str) -> int: ...


class ArtifactStore(Protocol):
    """Keeps artifact payloads by id. ``put`` is atomic and idempotent.

    ``type_key`` is the type key the id was computed from (sha256 of type key and bytes):
    a store that checks what it is given against the id (the HTTP store, whose server
    verifies before storing) needs it; stores on trusted storage ignore it.
    ``put_many`` stores several (each as ``put`` would); a remote store sends them at once.
    """

    def put(self, artifact_id: str, payload: bytes, *, type_key: str | None = None) -> None: ...

    def put_many(
        self, payloads: Mapping[str, bytes], *, type_keys: Mapping[str, str] | None = None
    ) -> None: ...

    def get(self, artifact_id: str) -> bytes: ...

    def exists(self, artifact_id: str) -> bool: ...


class PayloadUpload(Protocol):
    """A payload being stored a chunk at a time (``StreamingArtifactStore.open_upload``).

    Lifecycle: ``write`` the chunks in order; then ``commit`` makes them the artifact,
    atomically (a reader sees the old bytes or the new ones, never a part), replacing what
    was stored under the id; or ``abort`` discards them. ``abort`` after ``commit``, or
    twice, does nothing, so callers may always call it last.
    """

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class StreamingArtifactStore(ArtifactStore, Protocol):
    """An artifact store that also takes a payload in chunks, never whole in memory (the
    server's uploads, checked against their id before ``commit``)."""

    def open_upload(self, artifact_id: str) -> PayloadUpload: ...


class LogSink(Protocol):
    """Where followed logs go besides the local file (``HttpLogs`` is one)."""

    def append(self, run_id: str, offset: int, data: bytes) -> int:
        """Append ``data`` if the log holds ``offset`` bytes; return its size afterwards
        (not ``offset + len(data)``: nothing was appended; append at that size)."""
        ...

    def close(self) -> None: ...
