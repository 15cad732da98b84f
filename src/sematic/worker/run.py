"""Run one job: import the function, load and check inputs, execute, persist the outcome.

The outcome (a ``WorkerResult``) goes to the job's ``result_path``. In a Kubernetes pod
that is the container's termination message (``TERMINATION_LOG``), read by the resolver
from the pod's status; the pickles a result may carry (a nested future, the exception) then
go to the artifact store instead of files beside the result, since the pod's files vanish.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from sematic.core import variables
from sematic.core.context import RunContext
from sematic.core.engine import Failed, ReturnedFuture, Succeeded
from sematic.core.execution import execute
from sematic.core.files import write_private
from sematic.core.jobs import TERMINATION_LIMIT, TERMINATION_LOG, WorkerJob, WorkerResult
from sematic.core.loading import load_function
from sematic.core.ports import ArtifactStore
from sematic.core.props import FunctionProps
from sematic.resolvers.stores import worker_artifact_store
from sematic.storage.packed import threshold_of
from sematic.storage.serialization import deserialize, serialize


class _Pickles:
    """Where a result's pickles go: files beside the result, or (in a pod) the store."""

    def __init__(self, job: WorkerJob, store: ArtifactStore | None, in_pod: bool) -> None:
        self._result_path = Path(job.result_path)
        self._in_pod = in_pod
        self._store = store

    def keep(self, kind: str, data: bytes) -> WorkerResult:
        """A result (to be completed) referring to the pickle ``data`` of ``kind``."""
        if not self._in_pod:
            path = self._result_path.with_suffix(f".{kind}.pkl")
            write_private(path, data)
            return WorkerResult(kind="", pickle_path=str(path))
        if self._store is None:
            return WorkerResult(kind="")
        kept = serialize(data, bytes)
        self._store.put(kept.artifact_id, kept.payload, type_key=kept.type_description["type_key"])
        return WorkerResult(
            kind="",
            pickle_artifact={"id": kept.artifact_id, "type_description": kept.type_description},
        )

    def fit(self, result: WorkerResult) -> WorkerResult:
        """``result``, or (in a pod, when it is too long for the termination message and the
        store is reachable) a reference to it kept in the store."""
        if not self._in_pod or self._store is None:
            return result
        text = result.to_json().encode()
        if len(text) <= TERMINATION_LIMIT:
            return result
        kept = serialize(text, bytes)
        self._store.put(kept.artifact_id, kept.payload, type_key=kept.type_description["type_key"])
        reference = {"id": kept.artifact_id, "type_description": kept.type_description}
        return WorkerResult(kind="elsewhere", result_artifact=reference)


def run_job(job: WorkerJob, *, in_pod: bool = False) -> int:
    """Run ``job``; ``in_pod``: its pickles go to the store even though its result goes to
    a file (a warm pod's step: the pod reports the result, its files vanish with it)."""
    in_pod = in_pod or job.result_path == TERMINATION_LOG
    for entry in reversed(job.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        with worker_artifact_store(
            artifact_url=job.artifact_url,
            server_url=job.server_url,
            api_key=os.environ.get(variables.API_KEY) or None,
            # A worker on this machine: the resolver's database, where small payloads are
            # packed (given in the environment, never in the job file: it may hold a password).
            database_url=os.environ.get(variables.DATABASE_URL) or None,
            small_payload_bytes=threshold_of(
                os.environ.get(variables.SMALL_PAYLOAD_BYTES), f"${variables.SMALL_PAYLOAD_BYTES}"
            ),
        ) as store:
            pickles = _Pickles(job, store, in_pod)
            try:
                result = _run_with(job, pickles, store)
            except Exception as error:  # noqa: BLE001 - anything before the function ran
                result = _failure(error, pickles)
            result = pickles.fit(result)
    except Exception as error:  # noqa: BLE001 - the store itself failed
        result = _failure(error, _Pickles(job, None, in_pod))
    _write(result, job.result_path)
    return 0


def _write(result: WorkerResult, result_path: str) -> None:
    if result_path == TERMINATION_LOG:
        text = result.to_json()
        if len(text.encode()) > TERMINATION_LIMIT and result.traceback:
            # The full traceback is in the pod's log; keep its end.
            room = TERMINATION_LIMIT - len(text.encode()) + len(result.traceback.encode()) - 64
            kept = result.traceback.encode()[-max(room, 0) :].decode(errors="ignore")
            text = replace(result, traceback=f"...\n{kept}").to_json()
        with open(result_path, "w") as log:  # a bind mount: written in place
            log.write(text)
        return
    path = Path(result_path)
    tmp = path.with_suffix(".tmp")
    write_private(tmp, result.to_json())
    tmp.replace(path)


def _run_with(job: WorkerJob, pickles: _Pickles, store: ArtifactStore) -> WorkerResult:
    function = load_function(job.function_path, job.main_path)
    input_types = function.input_types
    kwargs = {
        name: deserialize(store.get(ref.artifact_id), ref.type_description, input_types[name])
        for name, ref in job.inputs.items()
    }
    props = FunctionProps(name=function.name, timeout_mins=job.timeout_mins)
    event = execute(
        function, props, kwargs, tuple(kwargs), RunContext(run_id=job.run_id, root_id=job.root_id)
    )
    if isinstance(event, Succeeded):
        serialized = serialize(event.value, function.output_type)
        type_key = serialized.type_description["type_key"]
        store.put(serialized.artifact_id, serialized.payload, type_key=type_key)
        return WorkerResult(
            kind="resolved",
            artifact={
                "id": serialized.artifact_id,
                "type_description": serialized.type_description,
                "summary": serialized.summary,
                "size": len(serialized.payload),
            },
        )
    if isinstance(event, ReturnedFuture):
        import cloudpickle  # only a nested future or a failure is pickled

        return replace(pickles.keep("future", cloudpickle.dumps(event.future)), kind="nested")
    assert isinstance(event, Failed)
    return _failure(event.error, pickles)


def _failure(error: BaseException, pickles: _Pickles) -> WorkerResult:
    try:
        import cloudpickle

        kept = pickles.keep("error", cloudpickle.dumps(error))
    except Exception:  # noqa: BLE001 - unpicklable exception: keep its text only
        kept = WorkerResult(kind="")
    print("".join(traceback.format_exception(error)), file=sys.stderr)
    return replace(
        kept,
        kind="failed",
        exception_type=f"{type(error).__module__}.{type(error).__qualname__}",
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
    )
