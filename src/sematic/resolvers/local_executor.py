"""Runs inline functions in this process and ``inline=False`` ones in worker processes."""

from __future__ import annotations

import shutil
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cloudpickle

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
    SematicError,
    WorkerLostError,
)
from sematic.core.execution import execute_command
from sematic.core.files import private_folder, write_private
from sematic.core.jobs import InputRef, WorkerJob, WorkerResult
from sematic.core.loading import main_script
from sematic.core.timeouts import Interruptible
from sematic.executors.processes import Exited, ProcessPool
from sematic.resolvers.cancel import CancelWatch
from sematic.resolvers.recording import RunRecorder
from sematic.resolvers.reuse import Reuse
from sematic.resolvers.run_logs import LogShipper, captured_output
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import API_KEY_VARIABLE


class _Canceled(BaseException):
    """Raised in the resolver's thread to stop an inline function when a cancel arrives."""


class LocalExecutor:
    """The executor of LocalResolver.

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
        self._pool: Workers = workers or ProcessWorkers(settings)
        self._jobs_dir: Path | None = None
        self._main = main_script()
        self._watch: CancelWatch | None = None
        self._guard = threading.Lock()
        self._interruptible: Interruptible | None = None  # set while an inline function runs
        self._told = False  # the engine has been told of the cancel
        # Workers get the server's API key in their environment, never in their job file.
        key = settings.api_key if settings.server_url else None
        self._env = {API_KEY_VARIABLE: key} if key else None
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
        exited = self._pool.poll()
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
        self._logs.ship(run.id)
        if isinstance(result, WorkerLoss):
            error = result.error(f"the worker of {run.future.props.name}() {result.reason}")
            return Failed(run.id, error, infrastructure=isinstance(error, InfrastructureError))
        if result.kind == "resolved" and result.artifact is not None:
            return Succeeded(run.id, self._recorder.worker_output(run, result.artifact))
        if result.kind == "nested":
            pickled = self._pool.pickle(result)
            if pickled is not None:
                return ReturnedFuture(run.id, cloudpickle.loads(pickled))
        return Failed(run.id, _worker_error(result, self._pool.pickle(result)))


@dataclass(frozen=True, slots=True)
class WorkerLoss:
    """Why a worker reported nothing: ``reason`` ends a sentence starting "the worker of
    f() ..."; ``error`` is the exception the run fails with (an InfrastructureError is
    retried by default, a UserError only if the function's RetrySettings lists it)."""

    reason: str
    error: Callable[[str], SematicError] = WorkerLostError


class Workers(Protocol):
    """Where ``inline=False`` functions run: worker processes here, or pods."""

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None: ...
    def poll(self) -> Exited | None: ...
    def wait_any(self, timeout: float) -> Exited | None: ...
    def kill(self, key: str) -> None: ...
    def close(self) -> None: ...

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        """What the worker reported, or why it reported nothing."""
        ...

    def pickle(self, result: WorkerResult) -> bytes | None:
        """The pickle a result refers to (a nested future, the exception), if any."""
        ...


class ProcessWorkers:
    """Workers as ``python -m sematic.worker JOB_FILE`` processes on this machine."""

    def __init__(self, settings: LocalSettings) -> None:
        self._pool = ProcessPool()
        self._settings = settings

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None:
        job_path = Path(job.result_path).with_suffix(".job")
        write_private(job_path, job.to_json())
        argv = [sys.executable, "-m", "sematic.worker", str(job_path)]
        self._pool.start(job.run_id, argv, self._settings.log_path(job.run_id), env)

    def poll(self) -> Exited | None:
        return self._pool.poll()

    def wait_any(self, timeout: float) -> Exited | None:
        return self._pool.wait_any(timeout=timeout)

    def kill(self, key: str) -> None:
        self._pool.kill(key)

    def close(self) -> None:
        self._pool.close()

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        path = Path(job.result_path)
        if not path.exists():
            return WorkerLoss(
                f"exited with code {exited.returncode} without reporting a result; "
                f"its log is {self._settings.log_path(job.run_id)}"
            )
        return WorkerResult.from_json(path.read_text())

    def pickle(self, result: WorkerResult) -> bytes | None:
        if not result.pickle_path:
            return None
        try:
            return Path(result.pickle_path).read_bytes()
        except OSError:
            return None


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
