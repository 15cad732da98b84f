"""LocalResolver with packed storage: small values leave no file, large ones do.

Real SQLite database and artifact folder (a private SEMATIC_HOME) and real worker
processes (``inline=False``): a worker reads a packed input and packs its output through
the database the resolver hands it. A cached second resolution reads the packed values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update

from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import open_stores
from sematic.storage.serialization import verify
from sematic.storage.sql import SqlMetadataStore
from sematic.storage.sql.models import small_payloads
from tests.harness.s3 import S3Server
from tests.pipelines.healing import executions
from tests.pipelines.packed import LARGE, packed_pipeline
from tests.unit.resolvers.conftest import recorded_runs

X = 4
RESULT = LARGE + 10 * (X + 1)
STEPS = ("small_inline", "small_remote", "large_text")


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def packed_ids(settings: LocalSettings, ids: set[str]) -> set[str]:
    with SqlMetadataStore(settings.database_url) as store:
        return set(store.small_payloads().get_many(ids))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_small_values_are_packed_large_ones_are_files_and_a_cached_rerun_reads_them(
    home: Path,
    tmp_path: Path,
    database: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On SQLite, workers reach the packed payloads through sqlite3; on PostgreSQL, through
    SQLAlchemy."""
    if database == "postgresql":
        monkeypatch.setenv("SEMATIC_DATABASE_URL", request.getfixturevalue("postgres_url"))
    witness = str(tmp_path / "w")
    future = packed_pipeline(X, witness)
    assert future.resolve(LocalResolver(progress=False)) == RESULT
    settings = LocalSettings.from_environment()
    runs = {run.name: run for run in recorded_runs(future.id)}
    outputs = {name: run.output for name, run in runs.items()}
    assert all(outputs.values())
    large = outputs["large_text"]
    assert large is not None
    everything = {i for run in runs.values() for i in [*run.inputs.values(), run.output] if i}
    # Only the large value has a file; every other one (the worker's output too) is packed.
    assert files(Path(settings.artifact_url)) == {large}
    assert packed_ids(settings, everything) == everything - {large}
    metadata, artifacts = open_stores(settings)
    try:
        for artifact_id in everything:
            description = metadata.get_artifact(artifact_id).type_description
            verify(artifact_id, description, artifacts.get(artifact_id))
    finally:
        metadata.close()

    again = packed_pipeline(X, witness)
    assert again.resolve(LocalResolver(progress=False)) == RESULT
    assert {step: executions(witness, step) for step in STEPS} == dict.fromkeys(STEPS, 1)
    cached = {run.name: run for run in recorded_runs(again.id)}
    assert all(cached[step].cache_hit for step in STEPS)
    assert {step: cached[step].output for step in STEPS} == {s: outputs[s] for s in STEPS}
    assert files(Path(settings.artifact_url)) == {large}


def test_with_packing_off_every_value_is_a_file_the_workers_too(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_SMALL_PAYLOAD_BYTES", "0")
    future = packed_pipeline(X, str(tmp_path / "w"))
    assert future.resolve(LocalResolver(progress=False)) == RESULT
    settings = LocalSettings.from_environment()
    runs = recorded_runs(future.id)
    everything = {i for run in runs for i in [*run.inputs.values(), run.output] if i}
    assert files(Path(settings.artifact_url)) == everything
    assert packed_ids(settings, everything) == set()


@pytest.mark.parametrize("damage", ["altered", "deleted"])
def test_a_damaged_packed_value_is_recomputed_and_healed(
    home: Path, tmp_path: Path, damage: str
) -> None:
    """The worker's packed output, damaged in the database: the cached step executes again
    (in a worker) and storing its output replaces the bad row."""
    witness = str(tmp_path / "w")
    first = packed_pipeline(X, witness)
    assert first.resolve(LocalResolver(progress=False)) == RESULT
    settings = LocalSettings.from_environment()
    artifact_id = {run.name: run.output for run in recorded_runs(first.id)}["small_remote"]
    assert artifact_id is not None
    with SqlMetadataStore(settings.database_url) as store:
        good = store.small_payloads().get(artifact_id)
        where = small_payloads.c.id == artifact_id
        with store._engine.begin() as conn:
            if damage == "altered":
                conn.execute(update(small_payloads).where(where).values(data=b"99"))
            else:
                conn.execute(delete(small_payloads).where(where))

    again = packed_pipeline(X, witness)
    assert again.resolve(LocalResolver(progress=False)) == RESULT
    assert {step: executions(witness, step) for step in STEPS} == {
        step: 2 if step == "small_remote" else 1 for step in STEPS
    }
    assert packed_ids(settings, {artifact_id}) == {artifact_id}
    with SqlMetadataStore(settings.database_url) as store:
        assert store.small_payloads().get(artifact_id) == good


def test_on_s3_only_the_large_value_is_an_object(
    home: Path,
    tmp_path: Path,
    s3_url: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The small values, the worker's too, never reach S3: no object, no request."""
    monkeypatch.setenv("SEMATIC_ARTIFACT_URL", s3_url)
    future = packed_pipeline(X, str(tmp_path / "w"))
    with s3_server.recording() as requests:
        assert future.resolve(LocalResolver(progress=False)) == RESULT
    large = {run.name: run.output for run in recorded_runs(future.id)}["large_text"]
    assert large is not None
    prefix = s3_url.removeprefix(f"s3://{s3_server.bucket}/")
    assert s3_server.keys(f"{prefix}/") == [f"{prefix}/{large[:2]}/{large}"]
    keys = {request.key for request in requests if request.key}
    assert keys and all(large in key for key in keys)
