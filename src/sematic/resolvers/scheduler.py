"""The scheduler of every resolver that records runs (LocalResolver, CloudResolver and its
driver): each run the engine asks for reuses a recorded output, runs inline in this thread,
or goes to the ``Workers`` (processes here, or Kubernetes Jobs)."""

from __future__ import annotations

import shutil
import sys
import threading
from collections import deque
from pathlib import Path

import cloudpickle

from sematic.core import variables
from sematic.core.engine import (
    CancelRequested,
    Event,
    Execute,
    Failed,
    ReturnedFuture,
    Run,
    Succeeded,
)
from sematic.core.errors import (
    ArtifactCorruptedError,
    ArtifactMissingError,
    InfrastructureError,
)
from sematic.core.execution import execute_command
from sematic.core.files import private_folder
from sematic.core.jobs import InputRef, WorkerJob, WorkerResult
from sematic.core.loading import main_script
from sematic.core.ports import Exited, WorkerLoss, Workers
from sematic.core.timeouts import Interruptible
from sematic.executors.processes import ProcessWorkers
from sematic.resolvers.cancel import CancelWatch
from sematic.resolvers.recording import RunRecorder
from sematic.resolvers.reuse import Reuse
from sematic.resolvers.run_logs import LogShipper, captured_output
from sematic.resolvers.settings import LocalSettings


class _Canceled(BaseException):
    """Raised in the resolver's thread to stop an inline function when a cancel arrives."""


class Scheduler:
    """The ``Executor`` of the recording resolvers.

    Before running anything it records the run's inputs, then: reuses a recorded output
    (resume, rerun-from, or a cache hit), runs an inline function here, or starts a worker process
    (``python -m sematic.worker``, the same entry point as a Kubernetes pod), at most
    ``max_parallelism`` at a time. A request to cancel the pipeline (``sematic cancel``, the
    UI) is noticed within a fraction of a second: a running inline function is interrupted
    (at its next Python instruction) and the engine is told.
    """

    def __init__(
        self,
        recorder: RunRecorder,
        settings: LocalSettings,
        *,
        max_parallelism: int,
        cache_namespace: str | None,
        reuse: Reuse,
        workers: Workers | None = None,
    ) -> None:
        self._recorder = recorder
        self._settings = settings
        self._max_parallelism = max_parallelism
        self._cache_namespace = cache_namespace
        self._reuse = reuse
        self._ready: deque[Event] = deque()
        self._inline: deque[Execute] = deque()
        self._waiting: deque[tuple[Execute, WorkerJob]] = deque()
        self._running: dict[str, tuple[Execute, WorkerJob]] = {}
        self._pool: Workers = workers or ProcessWorkers(settings.log_path)
        self._jobs_dir: Path | None = None
        self._main = main_script()
        self._watch: CancelWatch | None = None
        self._guard = threading.Lock()
        self._interruptible: Interruptible | None = None  # set while an inline function runs
        self._told = False  # the engine has been told of the cancel
        # Workers get the server's API key in their environment, never in their job file;
        # without a server, the database's URL (it may hold a password too): they read (and
        # pack) small payloads there.
        if settings.server_url:
            key = settings.api_key
            self._env = {variables.API_KEY: key} if key else None
        else:
            self._env = {
                variables.DATABASE_URL: settings.database_url,
                variables.SMALL_PAYLOAD_BYTES: str(settings.small_payload_bytes),
            }
        self._logs = LogShipper(settings.logs, settings.server_url, settings.api_key)

    def submit(self, command: Execute) -> None:
        run = command.run
        if self._watch is None:
            self._watch = CancelWatch(self._recorder.metadata, command.root_id, self._canceled)
        resumed = self._reuse.resumed_output(run.id)
        if resumed is not None:  # resolved before the resume: its rows are only read
            if self._take(run, resumed, cache_hit=False):
                return
            self._recorder.reopen(run)  # its output is damaged: it executes again
        refs = self._recorder.record_inputs(run, command.kwargs)
        earlier = self._reuse.output_for(run, refs)
        if earlier is not None and self._take(run, earlier, cache_hit=False):
            return
        props = run.future.props
        if props.cache:
            key = self._recorder.cache_key(run, refs, self._cache_namespace)
            if not self._reuse.must_execute(run, refs):  # a rerun's start executes anyway
                self._recorder.sync()  # an earlier run of this resolution may hold it
                hit = self._recorder.metadata.find_cached_output(key)
                if hit is not None and self._take(run, hit, cache_hit=True):
                    return
        if props.inline:
            self._inline.append(command)
        else:
            self._waiting.append((command, self._job(command, refs)))
            self._start_waiting()

    def next_event(self) -> Event:
        canceled = self._cancel_event()
        if canceled is not None:
            return canceled
        if self._ready:
            return self._ready.popleft()
        exited = self._pool.wait_any(timeout=0)
        if exited is not None:
            return self._finished(exited)
        if self._inline:
            return self._run_inline(self._inline.popleft())
        while True:
            exited = self._pool.wait_any(timeout=0.1)
            if exited is not None:
                return self._finished(exited)
            canceled = self._cancel_event()
            if canceled is not None:
                return canceled

    def abort(self, run: Run) -> None:
        self._inline = deque(c for c in self._inline if c.run is not run)
        self._waiting = deque(w for w in self._waiting if w[0].run is not run)
        if run.id in self._running:
            self._pool.kill(run.id)
            del self._running[run.id]

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        self._pool.close()
        self._logs.close()
        self._running.clear()
        if self._jobs_dir is not None:
            shutil.rmtree(self._jobs_dir, ignore_errors=True)

    # Internals --------------------------------------------------------------------------

    def _take(self, run: Run, artifact_id: str, *, cache_hit: bool) -> bool:
        """Resolve ``run`` with a recorded output. False when its payload is missing or
        fails verification: the run then executes, and storing its output heals it."""
        try:
            value = self._recorder.reuse_output(run, artifact_id, cache_hit=cache_hit)
        except (ArtifactMissingError, ArtifactCorruptedError):
            return False
        self._ready.append(Succeeded(run.id, value))
        return True

    def _canceled(self, _reason: str) -> None:
        """Called by the watch thread: interrupt the inline function running, if any."""
        with self._guard:
            if self._interruptible is not None:
                self._interruptible.interrupt(_Canceled())

    def _cancel_event(self) -> CancelRequested | None:
        watch = self._watch
        if self._told or watch is None or watch.reason is None:
            return None
        self._told = True
        return CancelRequested(f"canceled: {watch.reason}")

    def _run_inline(self, command: Execute) -> Event:
        interruptible = Interruptible()
        with self._guard:
            self._interruptible = interruptible
        if self._watch is not None and self._watch.reason is not None:
            interruptible.interrupt(_Canceled())  # it came before the line above
        try:
            with captured_output(self._settings.log_path(command.run.id)):
                event = interruptible.run(lambda: execute_command(command))
        except _Canceled:
            return self._cancel_event() or CancelRequested("canceled")
        finally:
            with self._guard:
                self._interruptible = None
        self._logs.ship(command.run.id)
        return self._cancel_event() or event

    def _job(self, command: Execute, refs: dict[str, InputRef]) -> WorkerJob:
        run = command.run
        if self._jobs_dir is None:
            self._jobs_dir = self._settings.jobs / command.root_id
            private_folder(self._jobs_dir)
        result_path = self._jobs_dir / f"{run.id}-{run.attempts}.result.json"
        return WorkerJob(
            run_id=run.id,
            root_id=command.root_id,
            function_path=run.future.function.dotted_path,
            inputs=refs,
            artifact_url=self._settings.artifact_url,
            result_path=str(result_path),
            timeout_mins=run.future.props.timeout_mins,
            main_path=self._main,
            sys_path=[p for p in sys.path if p],
            server_url=self._settings.server_url,
        )

    def _start_waiting(self) -> None:
        if self._waiting:
            self._recorder.sync()  # workers read their inputs from the artifact store
        if self._main and "__main__" in sys.modules:
            # Workers load the user's script as __mp_main__; let what they send back resolve.
            sys.modules.setdefault("__mp_main__", sys.modules["__main__"])
        while self._waiting and len(self._running) < self._max_parallelism:
            command, job = self._waiting.popleft()
            self._pool.start(command, job, self._env)
            self._running[job.run_id] = (command, job)

    def _finished(self, exited: Exited) -> Event:
        command, job = self._running.pop(exited.key)
        self._start_waiting()
        run = command.run
        result = self._pool.result(job, exited)
        attempt = self._pool.attempt(exited.key)
        if attempt is not None:
            self._recorder.record_attempt(run, attempt)
        self._logs.ship(run.id)
        if isinstance(result, WorkerLoss):
            error = result.error(f"the worker of {run.future.props.name}() {result.reason}")
            return Failed(run.id, error, infrastructure=isinstance(error, InfrastructureError))
        if result.kind == "elsewhere":
            result = self._full_result(result)
        if result.kind == "resolved" and result.artifact is not None:
            return Succeeded(run.id, self._recorder.worker_output(run, result.artifact))
        if result.kind == "nested":
            pickled = self._pickle(result)
            if pickled is not None:
                return ReturnedFuture(run.id, cloudpickle.loads(pickled))
        return Failed(run.id, _worker_error(result, self._pickle(result)))

    def _full_result(self, reference: WorkerResult) -> WorkerResult:
        """The result a pod kept in the store because it was too long for its termination
        message (or a failure saying it cannot be read back)."""
        kept = reference.result_artifact or {}
        try:
            text: bytes = self._recorder.load(kept["id"], kept["type_description"], bytes)
            return WorkerResult.from_json(text.decode())
        except (KeyError, ValueError, TypeError, ArtifactMissingError, ArtifactCorruptedError) as e:
            return WorkerResult(
                kind="failed",
                exception_type=f"{type(e).__module__}.{type(e).__qualname__}",
                message=f"the worker's result was kept in the artifact store and cannot be "
                f"read back: {e}",
            )

    def _pickle(self, result: WorkerResult) -> bytes | None:
        """The pickle a result refers to (a nested future, the exception), if any: a file
        beside the job (a process here) or an artifact (a pod)."""
        if result.pickle_path:
            try:
                return Path(result.pickle_path).read_bytes()
            except OSError:
                return None
        kept = result.pickle_artifact
        if kept is None:
            return None
        try:
            data: bytes = self._recorder.load(kept["id"], kept["type_description"], bytes)
        except (ArtifactMissingError, ArtifactCorruptedError):
            return None
        return data


def _worker_error(result: WorkerResult, pickled: bytes | None) -> BaseException:
    error: BaseException | None = None
    if pickled is not None:
        try:
            error = cloudpickle.loads(pickled)
        except Exception:  # noqa: BLE001 - fall back to the text of the error
            error = None
    if not isinstance(error, BaseException):
        error = RuntimeError(f"{result.exception_type}: {result.message}")
    if result.traceback:
        error.add_note(f"Traceback in the worker process:\n{result.traceback}")
    return error
