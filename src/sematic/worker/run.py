"""Run one job: import the function, load and check inputs, execute, persist the outcome."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import cloudpickle

from sematic.core.context import RunContext
from sematic.core.engine import Failed, ReturnedFuture, Succeeded
from sematic.core.execution import execute
from sematic.core.jobs import WorkerJob, WorkerResult
from sematic.core.loading import load_function
from sematic.core.ports import ArtifactStore
from sematic.core.props import FunctionProps
from sematic.resolvers.stores import API_KEY_VARIABLE, worker_artifact_store
from sematic.storage.serialization import deserialize, serialize


def run_job(job: WorkerJob) -> int:
    for entry in reversed(job.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    result_path = Path(job.result_path)
    try:
        result = _run(job, result_path)
    except Exception as error:  # noqa: BLE001 - anything before the function ran
        result = _failure(error, result_path)
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(result.to_json())
    tmp.replace(result_path)
    return 0


def _run(job: WorkerJob, result_path: Path) -> WorkerResult:
    with worker_artifact_store(
        artifact_url=job.artifact_url,
        server_url=job.server_url,
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
    ) as store:
        return _run_with(job, result_path, store)


def _run_with(job: WorkerJob, result_path: Path, store: ArtifactStore) -> WorkerResult:
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
        pickle_path = result_path.with_suffix(".future.pkl")
        pickle_path.write_bytes(cloudpickle.dumps(event.future))
        return WorkerResult(kind="nested", pickle_path=str(pickle_path))
    assert isinstance(event, Failed)
    return _failure(event.error, result_path)


def _failure(error: BaseException, result_path: Path) -> WorkerResult:
    pickle_path: str | None = str(result_path.with_suffix(".error.pkl"))
    try:
        Path(str(pickle_path)).write_bytes(cloudpickle.dumps(error))
    except Exception:  # noqa: BLE001 - unpicklable exception: keep its text only
        pickle_path = None
    print("".join(traceback.format_exception(error)), file=sys.stderr)
    return WorkerResult(
        kind="failed",
        pickle_path=pickle_path,
        exception_type=f"{type(error).__module__}.{type(error).__qualname__}",
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
    )
