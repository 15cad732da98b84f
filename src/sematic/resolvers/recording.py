"""Recording a resolution: runs, transitions, artifacts and edges, one write per engine step."""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import inspect
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any

from sematic.core.engine import TERMINAL, Run, State
from sematic.core.function import Function
from sematic.core.future import Future
from sematic.core.images import ImageMap
from sematic.core.jobs import InputRef
from sematic.core.ports import ArtifactStore, MetadataStore
from sematic.core.props import FunctionProps
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord
from sematic.core.resources import ResourceRequirements
from sematic.core.usage import execution_json
from sematic.resolvers.reuse import is_final
from sematic.storage.serialization import Serialized, deserialize, serialize, verify

# How often buffered changes are written: a step that finished less than this before its
# resolver was killed may have no record of it, and runs again on resume (see the README).
FLUSH_INTERVAL_S = 0.05


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name, no passwd entry (a container)
        return None


def requirements_json(requirements: ResourceRequirements | None) -> dict[str, Any] | None:
    if requirements is None:
        return None
    return {"kubernetes": requirements.kubernetes.to_dict()}


class _Output:
    __slots__ = ("artifact_id", "hint", "type_description")

    def __init__(self, artifact_id: str, hint: Any, type_description: dict[str, Any]) -> None:
        self.artifact_id = artifact_id
        self.hint = hint
        self.type_description = type_description


class RunRecorder:
    """Observes the engine and keeps the metadata and artifact stores up to date.

    Changes are buffered and written by a background flusher every ``interval`` seconds:
    payloads first, then the metadata in one transaction, so a run never points at a
    payload that is not there and the engine never waits on the disk. ``sync`` writes
    everything now (before a worker starts, before a cache lookup, and at the end).

    ``earlier``: the runs already recorded, when resuming a pipeline. A run that resolved
    then is only read, never written again (no row update, no transition); the others keep
    their row's ``created_at`` and ``started_at`` and add the transitions they go through.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        *,
        interval: float = FLUSH_INTERVAL_S,
        images: ImageMap | None = None,
        earlier: Iterable[RunRecord] = (),
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self._images = images  # when runs execute in containers: which image each one ran in
        # Who submits: the OS user here. A team server replaces it with the user of the API
        # key the runs are written with; the metadata store keeps a run's first value.
        self._user = _os_user()
        self._records: dict[str, RunRecord] = {}
        self._dirty: dict[str, RunRecord] = {}
        self._transitions: list[TransitionRecord] = []
        self._new_artifacts: dict[str, ArtifactRecord] = {}
        self._payloads: dict[str, bytes] = {}
        self._edges: list[EdgeRecord] = []
        self._lock = threading.Lock()  # guards the buffers above
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._interval = interval
        self._flusher: threading.Thread | None = None
        self._outputs: dict[str, _Output] = {}
        self._stored: set[str] = set()
        self._sources: dict[int, tuple[str | None, str]] = {}
        self._final: dict[str, RunRecord] = {}  # resumed runs that resolved: read only
        # Resumed runs that ended (failed, canceled) and run again: the store keeps a run's
        # terminal state unless the write says it reopens the run.
        self._reopening: set[str] = set()
        for record in earlier:
            if is_final(record):
                self._final[record.id] = record
            else:
                self._records[record.id] = record
                if record.state in TERMINAL:
                    self._reopening.add(record.id)

    # Observer ---------------------------------------------------------------------------

    def state_changed(
        self, *, run: Run, old: State, new: State, root_id: str, value: Any = None, **_: Any
    ) -> None:
        if run.id in self._final:
            return
        with self._lock:
            self._state_changed(run, new, root_id, value)

    def _state_changed(self, run: Run, new: State, root_id: str, value: Any) -> None:
        now = time.time()
        record = self._records.get(run.id) or self._new_record(run, root_id, now)
        changes: dict[str, Any] = {"state": new.value, "updated_at": now}
        if new is State.SCHEDULED and record.started_at is None:
            changes["started_at"] = now
        if new is State.SCHEDULED and record.ended_at is not None:
            # Resumed after it had failed or been canceled: it is no longer finished.
            changes.update(
                ended_at=None, exception_type=None, exception_message=None, traceback=None
            )
        if new in (State.RESOLVED, State.FAILED, State.NESTED_FAILED, State.CANCELED):
            changes["ended_at"] = now
        if new is State.RESOLVED:
            output = self._output(run, value)
            changes["output"] = output.artifact_id
            if run.id == root_id:
                self._edges.append(EdgeRecord(run.id, None, None, output.artifact_id))
        if new is State.FAILED and run.error is not None:
            error = run.error
            changes["exception_type"] = f"{type(error).__module__}.{type(error).__qualname__}"
            changes["exception_message"] = str(error)
            changes["traceback"] = "".join(traceback.format_exception(error))
        self._update(record, changes)
        self._transitions.append(TransitionRecord(run.id, new, now))

    def flush(self) -> None:
        """The changes of one engine step are complete: the flusher may write them."""
        if self._error is not None:
            self._raise_flusher_error()
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="sematic-recorder", daemon=True
            )
            self._flusher.start()

    def sync(self) -> None:
        """Write everything buffered now; when this returns it is durable."""
        self._write_buffered()
        if self._error is not None:
            self._raise_flusher_error()

    def _image_of(self, props: FunctionProps) -> str | None:
        """The image a run executes in: none when runs run here, and for inline runs
        only when the driver itself runs in an image."""
        images = self._images
        if images is None or (props.inline and images.driver_image is None):
            return None
        return images.image_for(props)

    def close(self) -> None:
        """Stop the flusher and write what remains."""
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self.sync()

    def _flush_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            try:
                self._write_buffered()
            except Exception as error:  # noqa: BLE001 - raised on the resolver's thread
                self._error = error
                return

    def _write_buffered(self) -> None:
        with self._write_lock:
            with self._lock:
                payloads, self._payloads = self._payloads, {}
                runs, self._dirty = list(self._dirty.values()), {}
                transitions, self._transitions = self._transitions, []
                artifacts, self._new_artifacts = list(self._new_artifacts.values()), {}
                edges, self._edges = self._edges, []
                reopened = [run.id for run in runs if run.id in self._reopening]
                self._reopening.difference_update(reopened)
            if payloads:
                # A payload is buffered with its artifact's record: the type key comes along.
                keys = {a.id: str(a.type_description.get("type_key")) for a in artifacts}
                self.artifacts.put_many(payloads, type_keys=keys)
            if runs or transitions or artifacts or edges:
                self.metadata.write(
                    runs=runs,
                    transitions=transitions,
                    artifacts=artifacts,
                    edges=edges,
                    reopened=reopened,
                )

    def _raise_flusher_error(self) -> None:
        error, self._error = self._error, None
        assert error is not None
        raise error

    def record_created(self, run: Run, root_id: str) -> None:
        """Record ``run`` as CREATED before any engine runs it (a detached pipeline's root)."""
        with self._lock:
            if run.id not in self._records:
                self._dirty[run.id] = self._new_record(run, root_id, time.time())

    # Used by the executor ---------------------------------------------------------------

    def record_attempt(self, run: Run, attempt: dict[str, Any]) -> None:
        """``run`` ended an attempt in a pod: add it to the run's execution (its usage
        summed over attempts, retries included)."""
        with self._lock:
            record = self._records.get(run.id)
            if record is None:
                return
            earlier = (record.execution or {}).get("attempts") or []
            self._update(record, {"execution": execution_json([*earlier, attempt])})

    def reopen(self, run: Run) -> None:
        """``run`` resolved before the resume but executes again (its recorded output
        cannot be read back): record it from now on, from the state it is in."""
        with self._lock:
            record = self._final.pop(run.id)
            self._records[run.id] = record
            self._reopening.add(run.id)
            self._state_changed(run, run.state, record.root_id, None)

    def record_inputs(self, run: Run, kwargs: dict[str, Any]) -> dict[str, InputRef]:
        """Store the run's input values as artifacts (once each); return their references."""
        with self._lock:
            return self._record_inputs(run, kwargs)

    def _record_inputs(self, run: Run, kwargs: dict[str, Any]) -> dict[str, InputRef]:
        function = run.future.function
        input_types = function.input_types
        refs: dict[str, InputRef] = {}
        for name, value in kwargs.items():
            hint = input_types[name]
            source = run.future.kwargs[name]
            producer = source.id if isinstance(source, Future) else None
            known = self._outputs.get(producer) if producer else None
            if known is not None and known.hint == hint:
                refs[name] = InputRef(known.artifact_id, known.type_description)
            else:
                serialized = self._store(value, hint)
                refs[name] = InputRef(serialized.artifact_id, serialized.type_description)
            self._edges.append(EdgeRecord(producer, run.id, name, refs[name].artifact_id))
        record = self._records[run.id]
        self._update(record, {"inputs": {k: ref.artifact_id for k, ref in refs.items()}})
        return refs

    def cache_key(self, run: Run, refs: dict[str, InputRef], namespace: str | None) -> str:
        source = self._source(run.future.function)[1]
        parts = [run.future.function.dotted_path, source, namespace or ""]
        parts += [f"{name}={ref.artifact_id}" for name, ref in sorted(refs.items())]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        with self._lock:
            self._update(self._records[run.id], {"cache_key": key})
        return key

    def reuse_output(self, run: Run, artifact_id: str, *, cache_hit: bool) -> Any:
        """Load a recorded output to resolve ``run`` with, without executing it."""
        artifact = self.metadata.get_artifact(artifact_id)
        value = self.load(artifact_id, artifact.type_description, run.future.function.output_type)
        hint = run.future.function.output_type
        with self._lock:
            self._outputs[run.id] = _Output(artifact_id, hint, artifact.type_description)
            if run.id not in self._final:
                self._update(self._records[run.id], {"cache_hit": cache_hit})
        return value

    def worker_output(self, run: Run, artifact: dict[str, Any]) -> Any:
        """Adopt the output a worker stored; return its value."""
        record = ArtifactRecord(
            id=artifact["id"],
            type_description=artifact["type_description"],
            summary=artifact["summary"],
            size=artifact["size"],
            created_at=time.time(),
        )
        hint = run.future.function.output_type
        with self._lock:
            self._new_artifacts[record.id] = record
            self._stored.add(record.id)
            self._outputs[run.id] = _Output(record.id, hint, record.type_description)
        return self.load(record.id, record.type_description, hint)

    def load(self, artifact_id: str, type_description: dict[str, Any], hint: Any) -> Any:
        with self._lock:
            payload = self._payloads.get(artifact_id)
        if payload is None:
            with self._write_lock:  # it may be on its way to the store right now
                payload = self.artifacts.get(artifact_id)
        verify(artifact_id, type_description, payload)
        return deserialize(payload, type_description, hint)

    # Internals --------------------------------------------------------------------------

    def _output(self, run: Run, value: Any) -> _Output:
        known = self._outputs.get(run.id)
        if known is None:
            hint = run.future.function.output_type
            serialized = self._store(value, hint)
            known = _Output(serialized.artifact_id, hint, serialized.type_description)
            self._outputs[run.id] = known
        return known

    def _store(self, value: Any, hint: Any) -> Serialized:
        serialized = serialize(value, hint)
        artifact_id = serialized.artifact_id
        if artifact_id not in self._stored:
            self._payloads[artifact_id] = serialized.payload
            self._new_artifacts[artifact_id] = serialized.to_record(time.time())
            self._stored.add(artifact_id)
        return serialized

    def _update(self, record: RunRecord, changes: dict[str, Any]) -> None:
        updated = dataclasses.replace(record, **changes)
        self._records[record.id] = updated
        self._dirty[record.id] = updated

    def _source(self, function: Function) -> tuple[str | None, str]:
        known = self._sources.get(id(function))
        if known is None:
            try:
                source: str | None = inspect.getsource(function.fn)
            except (OSError, TypeError):
                source = None
            digest = hashlib.sha256((source or function.dotted_path).encode()).hexdigest()
            known = self._sources[id(function)] = (source, digest)
        return known

    def _new_record(self, run: Run, root_id: str, now: float) -> RunRecord:
        future = run.future
        function = future.function
        props = future.props
        record = RunRecord(
            id=run.id,
            root_id=root_id,
            parent_id=run.parent_id,
            name=props.name,
            function_path=function.dotted_path,
            state=State.CREATED,
            created_at=now,
            updated_at=now,
            inline=props.inline,
            source_code=self._source(function)[0],
            docstring=function.fn.__doc__,
            resource_requirements=requirements_json(props.resource_requirements),
            base_image_tag=props.base_image_tag,
            container_image=self._image_of(props),
            tags=props.tags,
            submitted_by=self._user,
        )
        self._records[run.id] = record
        self._transitions.append(TransitionRecord(run.id, State.CREATED, now))
        return record
