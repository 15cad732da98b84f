"""A pod's result too long for its termination message (4096 bytes) is kept in the artifact
store and read back by the scheduler: a step may return a picture or a wide table."""

from __future__ import annotations

from pathlib import Path

from sematic.core.jobs import TERMINATION_LIMIT, TERMINATION_LOG, WorkerJob, WorkerResult
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.serialization import deserialize
from sematic.worker.run import _Pickles


def _job(result_path: str) -> WorkerJob:
    return WorkerJob(
        run_id="a" * 32, root_id="a" * 32, function_path="m.f", inputs={},
        artifact_url="unused", result_path=result_path,
    )  # fmt: skip


def _long_result() -> WorkerResult:
    summary = {"preview": "x" * 20_000}  # e.g. a PNG preview, base64
    return WorkerResult(
        kind="resolved", artifact={"id": "b" * 64, "type_description": {}, "summary": summary}
    )


def test_a_long_result_in_a_pod_is_kept_in_the_store(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    result = _long_result()
    fitted = _Pickles(_job(TERMINATION_LOG), store, True).fit(result)
    assert fitted.kind == "elsewhere"
    assert len(fitted.to_json().encode()) <= TERMINATION_LIMIT
    reference = fitted.result_artifact
    assert reference is not None
    text = deserialize(store.get(reference["id"]), reference["type_description"], bytes)
    assert WorkerResult.from_json(text.decode()) == result


def test_a_short_result_or_a_process_result_is_left_as_it_is(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    short = WorkerResult(kind="resolved", artifact={"id": "b" * 64, "summary": 3})
    assert _Pickles(_job(TERMINATION_LOG), store, True).fit(short) == short
    long = _long_result()
    assert _Pickles(_job(str(tmp_path / "result.json")), store, False).fit(long) == long
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*"))
