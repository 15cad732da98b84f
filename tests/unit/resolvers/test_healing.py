"""Damaged artifacts heal, and a rerun from a run always executes it (issue 14, finding 7).

An artifact whose file was altered, truncated or deleted is treated as absent: a cached or
recorded output is not reused, its step executes again and the store replaces the bytes.
Real SQLite database and artifact folder (a private SEMATIC_HOME), worker processes too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.core.errors import ArtifactCorruptedError, ArtifactMissingError
from sematic.core.records import RunRecord
from sematic.resolvers.local import rebuild_pipeline
from sematic.storage.serialization import verify
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.healing import executions, healing_pipeline
from tests.unit.cli.conftest import invoke
from tests.unit.resolvers.conftest import recorded_runs, store
from tests.unit.server.conftest import Server, start_server

STEPS = ("cached_inline", "cached_remote", "cached_sum")
X, RESULT = 5, 3010  # healing_pipeline(5, ...) == 1005 + 2005


def _alter(path: Path) -> None:
    """The same size, one bit flipped: still valid JSON, a wrong value if it were read."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _delete(path: Path) -> None:
    path.unlink()


DAMAGES = {"altered": _alter, "truncated": _truncate, "deleted": _delete}


@pytest.fixture(autouse=True)
def every_value_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests damage files: every value gets one, small ones too (packed values heal
    the same way: tests/unit/resolvers/test_packed_pipeline.py)."""
    monkeypatch.setenv("SEMATIC_SMALL_PAYLOAD_BYTES", "0")


def by_name(root_id: str) -> dict[str, RunRecord]:
    return {run.name: run for run in recorded_runs(root_id)}


def payload_path(artifacts: Path, artifact_id: str) -> Path:
    return artifacts / artifact_id[:2] / artifact_id


def assert_verifies(artifacts: Path, artifact_id: str, database_url: str | None = None) -> None:
    """The stored bytes of ``artifact_id`` hash to it, and no temporary file is left."""
    with SqlMetadataStore(database_url) if database_url else store() as metadata:
        description = metadata.get_artifact(artifact_id).type_description
    path = payload_path(artifacts, artifact_id)
    verify(artifact_id, description, path.read_bytes())
    assert not list(path.parent.glob("*.tmp"))


def resolve(witness: str, resolver: LocalResolver | None = None) -> tuple[str, int]:
    future = healing_pipeline(X, witness)
    value = future.resolve(resolver or LocalResolver(progress=False))
    return future.id, value


def counts(witness: str) -> dict[str, int]:
    return {step: executions(witness, step) for step in STEPS}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
@pytest.mark.parametrize("step", STEPS)
def test_a_damaged_cached_output_is_recomputed_and_replaced(
    home: Path, tmp_path: Path, step: str, damage: Callable[[Path], None]
) -> None:
    witness = str(tmp_path / "w")
    first, value = resolve(witness)
    assert value == RESULT
    artifact_id = by_name(first)[step].output
    assert artifact_id is not None
    good = payload_path(home / "artifacts", artifact_id).read_bytes()
    damage(payload_path(home / "artifacts", artifact_id))

    second, value = resolve(witness)

    assert value == RESULT
    assert counts(witness) == {s: 2 if s == step else 1 for s in STEPS}
    runs = by_name(second)
    assert {s: runs[s].cache_hit for s in STEPS} == {s: s != step for s in STEPS}
    assert runs[step].output == artifact_id  # the same artifact, stored again
    assert payload_path(home / "artifacts", artifact_id).read_bytes() == good
    assert_verifies(home / "artifacts", artifact_id)

    third, value = resolve(witness)  # healed: a plain cache hit again
    assert value == RESULT and counts(witness)[step] == 2
    assert by_name(third)[step].cache_hit is True


def test_a_fresh_cache_namespace_replaces_damaged_bytes(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)
    artifact_id = by_name(first)["cached_inline"].output
    assert artifact_id is not None
    _alter(payload_path(home / "artifacts", artifact_id))

    _, value = resolve(witness, LocalResolver(progress=False, cache_namespace="fresh"))

    assert value == RESULT
    assert counts(witness) == {"cached_inline": 2, "cached_remote": 2, "cached_sum": 2}
    assert_verifies(home / "artifacts", artifact_id)


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_rerun_recomputes_a_damaged_output_it_would_reuse(
    home: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)
    runs = by_name(first)
    artifact_id = runs["cached_inline"].output  # upstream of the rerun's start: reused
    assert artifact_id is not None
    damage(payload_path(home / "artifacts", artifact_id))

    _, value = resolve(witness, LocalResolver(progress=False, rerun_from=runs["cached_sum"].id))

    assert value == RESULT
    assert counts(witness) == {"cached_inline": 2, "cached_remote": 1, "cached_sum": 2}
    assert_verifies(home / "artifacts", artifact_id)


@pytest.mark.parametrize("start", ["cached_inline", "cached_remote"])
def test_rerun_from_a_cached_run_executes_it_and_what_is_downstream(
    home: Path, tmp_path: Path, start: str
) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)
    start_id = by_name(first)[start].id

    second, value = resolve(witness, LocalResolver(progress=False, rerun_from=start_id))

    assert value == RESULT
    assert counts(witness) == {s: 2 if s in (start, "cached_sum") else 1 for s in STEPS}
    runs = by_name(second)
    assert runs[start].cache_hit is False and runs["cached_sum"].cache_hit is False
    assert runs[start].cache_key  # its fresh output is what the cache finds next
    third, _ = resolve(witness)
    assert counts(witness)[start] == 2 and by_name(third)[start].cache_hit is True


def test_sematic_rerun_from_a_cached_run_executes_it(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)

    result = invoke("rerun", first, "--from", by_name(first)["cached_inline"].id)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(str(RESULT))
    assert counts(witness) == {"cached_inline": 2, "cached_remote": 1, "cached_sum": 2}


def test_sematic_rerun_of_the_root_executes_every_cached_step(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)

    result = invoke("rerun", first)

    assert result.exit_code == 0, result.stderr
    assert counts(witness) == {"cached_inline": 2, "cached_remote": 2, "cached_sum": 2}


@pytest.mark.parametrize(
    ("damage", "error"),
    [(_alter, ArtifactCorruptedError), (_delete, ArtifactMissingError)],
    ids=["altered", "deleted"],
)
def test_a_damaged_input_of_a_rerun_is_a_clear_error_until_called_again(
    home: Path, tmp_path: Path, damage: Callable[[Path], None], error: type[Exception]
) -> None:
    witness = str(tmp_path / "w")
    first, _ = resolve(witness)
    artifact_id = by_name(first)["healing_pipeline"].inputs["x"]
    damage(payload_path(home / "artifacts", artifact_id))

    with pytest.raises(error) as raised:
        rebuild_pipeline(first)
    message = str(raised.value)
    assert f"run {first}" in message and f"input 'x' is artifact {artifact_id}" in message
    assert "Call healing_pipeline() again with that input's value" in message
    result = invoke("rerun", first)
    assert result.exit_code == 1 and artifact_id in result.stderr

    _, value = resolve(witness)  # called again with the value: the input is stored again
    assert value == RESULT
    assert_verifies(home / "artifacts", artifact_id)
    rebuild_pipeline(first)  # and the rerun works again


@pytest.fixture
def served(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A server over a SEMATIC_HOME of its own, which this process writes through; its
    home is returned."""
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    server: Server = start_server(server_home)
    monkeypatch.setenv("SEMATIC_SERVER_URL", server.url)
    try:
        yield server_home
    finally:
        server.stop()


@pytest.mark.parametrize("step", ["cached_inline", "cached_remote"])
def test_a_damaged_artifact_on_the_server_heals_through_the_api(
    served: Path, tmp_path: Path, step: str
) -> None:
    witness = str(tmp_path / "w")
    database_url = f"sqlite:///{served / 'db.sqlite3'}"
    first, _ = resolve(witness)
    with SqlMetadataStore(database_url) as metadata:
        runs = {run.name: run for run in metadata.runs_of_root(first)}
    artifact_id = runs[step].output
    assert artifact_id is not None
    _alter(payload_path(served / "artifacts", artifact_id))

    _, value = resolve(witness)

    assert value == RESULT
    assert counts(witness)[step] == 2
    assert_verifies(served / "artifacts", artifact_id, database_url)
