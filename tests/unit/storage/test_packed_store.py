"""``PackedArtifactStore``: payloads up to the threshold in the database's ``small_payloads``
table, larger ones in a file of their own (a real folder; SQLite, through SQLAlchemy and
through the standard library's sqlite3 as workers do, and PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from sematic.core.errors import ArtifactCorruptedError, ArtifactMissingError, ConfigurationError
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.packed import (
    DEFAULT_THRESHOLD,
    MAX_THRESHOLD,
    PackedArtifactStore,
    SmallPayloads,
    threshold_of,
)
from sematic.storage.serialization import Serialized, serialize, verify
from sematic.storage.sql import SqlMetadataStore
from sematic.storage.sql.models import small_payloads
from sematic.storage.sqlite_payloads import SqliteSmallPayloads, sqlite_path

T = 64  # the threshold of these tests


def sized(size: int, seed: str = "x") -> Serialized:
    """A ``str`` value whose payload is exactly ``size`` bytes (its JSON: two quotes)."""
    value = (seed * size)[: size - 2]
    serialized = serialize(value, str)
    assert len(serialized.payload) == size
    return serialized


def type_key(value: Serialized) -> str:
    return str(value.type_description["type_key"])


def files(folder: Path) -> list[str]:
    """Every file under ``folder`` (temporary ones included)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


STDLIB = "sqlite-through-sqlite3"


@pytest.fixture(params=["sqlite", STDLIB, "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Where the small payloads are: SQLite through SQLAlchemy (``SqlSmallPayloads``), the
    same through the standard library (``SqliteSmallPayloads``, the workers'), PostgreSQL."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'metadata' / 'db.sqlite'}"


@pytest.fixture
def small(backend: str, store: SqlMetadataStore, db_url: str) -> Iterator[SmallPayloads]:
    if backend != STDLIB:
        yield store.small_payloads()
        return
    path = sqlite_path(db_url)
    assert path is not None
    lite = SqliteSmallPayloads(path)
    yield lite
    lite.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def packed(small: SmallPayloads, folder: Path) -> PackedArtifactStore:
    return PackedArtifactStore(FsspecArtifactStore(str(folder)), small, T)


def test_the_threshold_is_small_and_one_byte_more_is_a_file(
    packed: PackedArtifactStore, store: SqlMetadataStore, folder: Path
) -> None:
    at, above = sized(T), sized(T + 1)
    packed.put(at.artifact_id, at.payload, type_key=type_key(at))
    packed.put(above.artifact_id, above.payload, type_key=type_key(above))
    assert files(folder) == [above.artifact_id]
    small = store.small_payloads()
    assert small.get(at.artifact_id) == at.payload
    assert small.get(above.artifact_id) is None
    for value in (at, above):
        assert packed.exists(value.artifact_id)
        assert packed.get(value.artifact_id) == value.payload
        verify(value.artifact_id, value.type_description, packed.get(value.artifact_id))


def test_put_many_packs_the_small_ones_together(
    packed: PackedArtifactStore, store: SqlMetadataStore, folder: Path
) -> None:
    values = [sized(size, seed) for size in (2, 10, T) for seed in "ab"] + [sized(T + 1)]
    packed.put_many(
        {v.artifact_id: v.payload for v in values},
        type_keys={v.artifact_id: type_key(v) for v in values},
    )
    assert files(folder) == [values[-1].artifact_id]
    found = store.small_payloads().get_many([v.artifact_id for v in values])
    assert found == {v.artifact_id: v.payload for v in values[:-1]}
    assert all(packed.get(v.artifact_id) == v.payload for v in values)
    packed.put_many({})  # nothing to do


@pytest.mark.parametrize(
    ("chunks", "packs"),
    [
        ([T], True),
        ([10, 20, T - 30], True),  # exactly the threshold, in pieces
        ([0, T], True),
        ([T + 1], False),
        ([T, 1], False),  # the last byte tips it over
        ([10, T], False),  # the second chunk tips it over
        ([T - 1, 5, 300, 7], False),
    ],
)
def test_an_upload_is_held_up_to_the_threshold_then_streamed(
    packed: PackedArtifactStore,
    store: SqlMetadataStore,
    folder: Path,
    chunks: list[int],
    packs: bool,
) -> None:
    value = sized(sum(chunks) if sum(chunks) >= 2 else 2)
    upload = packed.open_upload(value.artifact_id)
    offset = 0
    for size in chunks:
        upload.write(value.payload[offset : offset + size])
        offset += size
    # Before commit: nothing visible, nothing packed.
    assert not packed.exists(value.artifact_id)
    upload.commit()
    upload.abort()  # after commit: nothing
    assert packed.get(value.artifact_id) == value.payload
    packed_copy = store.small_payloads().get(value.artifact_id)
    if packs:
        assert packed_copy == value.payload and files(folder) == []
    else:
        assert packed_copy is None and files(folder) == [value.artifact_id]
    with pytest.raises(ValueError, match="committed or aborted"):
        upload.write(b"more")


@pytest.mark.parametrize("size", [T, 10 * T])
def test_an_aborted_upload_leaves_nothing(
    packed: PackedArtifactStore, store: SqlMetadataStore, folder: Path, size: int
) -> None:
    value = sized(size)
    upload = packed.open_upload(value.artifact_id)
    upload.write(value.payload)
    upload.abort()
    upload.abort()
    assert not packed.exists(value.artifact_id)
    assert store.small_payloads().get(value.artifact_id) is None
    assert files(folder) == []  # no temporary file either
    with pytest.raises(ValueError, match="committed or aborted"):
        upload.commit()


def test_values_stored_unpacked_before_still_read(
    packed: PackedArtifactStore, folder: Path
) -> None:
    """Written by a store that did not pack (before packing, or another writer)."""
    value = sized(5)
    FsspecArtifactStore(str(folder)).put(value.artifact_id, value.payload)
    assert packed.exists(value.artifact_id)
    assert packed.get(value.artifact_id) == value.payload
    packed.put(value.artifact_id, value.payload)  # stored again: now packed too
    assert packed.get(value.artifact_id) == value.payload


def test_put_is_idempotent_and_a_damaged_packed_copy_heals(
    packed: PackedArtifactStore, store: SqlMetadataStore, folder: Path
) -> None:
    value = sized(20)
    packed.put(value.artifact_id, value.payload)
    packed.put(value.artifact_id, value.payload)
    packed.put_many({value.artifact_id: value.payload})
    assert store.small_payloads().get_many([value.artifact_id]) == {
        value.artifact_id: value.payload
    }
    damaged = value.payload[:-2] + b'y"'  # the same size, other bytes
    with store._engine.begin() as conn:
        conn.execute(
            update(small_payloads)
            .where(small_payloads.c.id == value.artifact_id)
            .values(data=damaged)
        )
    assert packed.get(value.artifact_id) == damaged
    with pytest.raises(ArtifactCorruptedError):
        verify(value.artifact_id, value.type_description, packed.get(value.artifact_id))
    packed.put(value.artifact_id, value.payload)  # stored again: replaced
    verify(value.artifact_id, value.type_description, packed.get(value.artifact_id))
    assert files(folder) == []


def test_a_large_put_forgets_a_copy_packed_under_a_higher_threshold(
    store: SqlMetadataStore, small: SmallPayloads, folder: Path
) -> None:
    """The packed copy is read first: it must not hide the file just stored (here it is
    damaged, and storing the value again, under a lower threshold, heals it)."""
    value = sized(T + 10)
    store.small_payloads().put_many({value.artifact_id: b"damaged"})
    lower = PackedArtifactStore(FsspecArtifactStore(str(folder)), small, T)
    assert lower.get(value.artifact_id) == b"damaged"
    lower.put(value.artifact_id, value.payload)
    assert store.small_payloads().get(value.artifact_id) is None
    assert lower.get(value.artifact_id) == value.payload
    for stream in (False, True):
        store.small_payloads().put_many({value.artifact_id: b"damaged"})
        if stream:
            upload = lower.open_upload(value.artifact_id)
            upload.write(value.payload)
            upload.commit()
        else:
            lower.put_many({value.artifact_id: value.payload})
        assert lower.get(value.artifact_id) == value.payload


def test_missing_and_invalid_ids(packed: PackedArtifactStore) -> None:
    absent = sized(3).artifact_id
    assert not packed.exists(absent)
    with pytest.raises(ArtifactMissingError, match=absent):
        packed.get(absent)
    for bad in ("../etc/passwd", "AB" * 32, ""):
        assert not packed.exists(bad)
        with pytest.raises(ArtifactMissingError):
            packed.get(bad)
        with pytest.raises(ConfigurationError, match="not an artifact id"):
            packed.put(bad, b"1")
        with pytest.raises(ConfigurationError, match="not an artifact id"):
            packed.open_upload(bad)
        with pytest.raises(ConfigurationError, match="not an artifact id"):
            packed.put_many({absent: b"1", bad: b"2"})
    assert not packed.exists(absent)  # the batch was refused before anything was stored


def test_threshold_zero_packs_nothing_but_reads_what_was_packed(
    store: SqlMetadataStore, small: SmallPayloads, folder: Path
) -> None:
    earlier = sized(4, "e")
    store.small_payloads().put_many({earlier.artifact_id: earlier.payload})
    off = PackedArtifactStore(FsspecArtifactStore(str(folder)), small, 0)
    empty = hashlib.sha256(b"no bytes").hexdigest()  # the store does not check ids
    tiny = sized(2)
    off.put(tiny.artifact_id, tiny.payload)
    upload = off.open_upload(empty)
    upload.commit()  # an upload of no bytes at all
    assert sorted(files(folder)) == sorted([tiny.artifact_id, empty])
    assert store.small_payloads().get(tiny.artifact_id) is None
    assert off.get(earlier.artifact_id) == earlier.payload
    assert off.get(empty) == b""


def test_thresholds_are_checked() -> None:
    assert threshold_of(None, "$X") == threshold_of(" ", "$X") == DEFAULT_THRESHOLD == 4096
    assert threshold_of("0", "$X") == 0
    assert threshold_of(str(MAX_THRESHOLD), "$X") == MAX_THRESHOLD
    for bad in ("-1", "4k", "1.5", str(MAX_THRESHOLD + 1), "١٢"):
        with pytest.raises(ConfigurationError, match=r"\$X is the size"):
            threshold_of(bad, "$X")
    with pytest.raises(ConfigurationError, match="from 0 to"):
        PackedArtifactStore(FsspecArtifactStore("unused"), _NoSmall(), -1)


class _NoSmall:
    """Never reached: the store refuses its threshold first."""

    def put_many(self, payloads: object) -> None:
        raise AssertionError

    def get(self, artifact_id: str) -> bytes | None:
        raise AssertionError

    def exists(self, artifact_id: str) -> bool:
        raise AssertionError

    def discard(self, ids: object) -> None:
        raise AssertionError
