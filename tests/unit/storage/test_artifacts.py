"""Artifact stores: layout, atomic and idempotent writes, missing payloads, concurrency."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import pytest

from sematic.core.errors import ArtifactCorruptedError, ArtifactMissingError, ConfigurationError
from sematic.storage.artifacts import (
    FsspecArtifactStore,
    InMemoryArtifactStore,
)
from sematic.storage.serialization import deserialize, serialize, verify

Store = FsspecArtifactStore | InMemoryArtifactStore


def an_id(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://sematic-tests/{uuid.uuid4().hex}"
    yield url
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(url):
        filesystem.rm(url, recursive=True)


@pytest.fixture(params=["path", "file-url", "memory-url", "in-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, memory_url: str) -> Store:
    if request.param == "path":
        return FsspecArtifactStore(str(tmp_path / "artifacts"))
    if request.param == "file-url":
        return FsspecArtifactStore(f"file://{tmp_path}/artifacts")
    if request.param == "memory-url":
        return FsspecArtifactStore(memory_url)
    return InMemoryArtifactStore()


def test_put_get_exists(store: Store) -> None:
    artifact_id = an_id(1)
    assert not store.exists(artifact_id)
    store.put(artifact_id, b"payload")
    assert store.exists(artifact_id)
    assert store.get(artifact_id) == b"payload"
    store.put(an_id(2), b"")
    assert store.get(an_id(2)) == b""


def test_put_is_idempotent(store: Store) -> None:
    artifact_id = an_id("same")
    store.put(artifact_id, b"first")
    store.put(artifact_id, b"first")  # same id, same content: stored once
    assert store.get(artifact_id) == b"first"
    # Different bytes under the same id mean the stored ones were damaged: replaced
    # (test_artifact_healing.py).
    store.put(artifact_id, b"fixed")
    assert store.get(artifact_id) == b"fixed"


def test_a_missing_artifact_is_a_clear_error(store: Store) -> None:
    artifact_id = an_id("missing")
    with pytest.raises(ArtifactMissingError, match=artifact_id) as raised:
        store.get(artifact_id)
    assert "run the pipeline again" in str(raised.value)
    if isinstance(store, FsspecArtifactStore):
        assert store.url in str(raised.value)


def test_serialized_values_go_through_the_store(store: Store) -> None:
    stored = serialize({"weights": [0.5, float("nan")], "name": "model"}, dict[str, Any])
    store.put(stored.artifact_id, stored.payload)
    payload = store.get(stored.artifact_id)
    verify(stored.artifact_id, stored.type_description, payload)
    back = deserialize(payload, stored.type_description)
    assert back["name"] == "model"
    assert back["weights"][0] == 0.5


def test_local_layout(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    artifact_id = an_id("layout")
    store.put(artifact_id, b"x")
    assert (tmp_path / artifact_id[:2] / artifact_id).read_bytes() == b"x"
    assert os.listdir(tmp_path / artifact_id[:2]) == [artifact_id]  # no temporary left


def test_memory_url_layout(memory_url: str) -> None:
    store = FsspecArtifactStore(memory_url)
    artifact_id = an_id("layout")
    store.put(artifact_id, b"x")
    filesystem = fsspec.filesystem("memory")
    root = memory_url.removeprefix("memory:/")
    assert filesystem.cat_file(f"{root}/{artifact_id[:2]}/{artifact_id}") == b"x"
    assert [
        path.rpartition("/")[2] for path in filesystem.ls(f"{root}/{artifact_id[:2]}", detail=False)
    ] == [artifact_id]


def test_a_crash_while_writing_leaves_no_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    artifact_id = an_id("crash")
    real_write = os.write

    def write_half_then_fail(descriptor: int, data: Any) -> int:
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        store.put(artifact_id, b"0123456789" * 100)
    monkeypatch.undo()

    assert not store.exists(artifact_id)
    assert list((tmp_path / artifact_id[:2]).iterdir()) == []  # the temporary is gone too
    with pytest.raises(ArtifactMissingError):
        store.get(artifact_id)
    store.put(artifact_id, b"complete")
    assert store.get(artifact_id) == b"complete"


def test_a_crash_while_writing_to_fsspec_leaves_no_artifact(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(memory_url)
    artifact_id = an_id("crash")
    filesystem: Any = store._fs  # the filesystem the store writes to

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("connection reset")

    monkeypatch.setattr(filesystem, "mv", fail)
    with pytest.raises(OSError, match="connection reset"):
        store.put(artifact_id, b"payload")
    monkeypatch.undo()
    assert not store.exists(artifact_id)
    root = memory_url.removeprefix("memory:/")
    assert filesystem.ls(f"{root}/{artifact_id[:2]}", detail=False) == []


def test_a_corrupted_payload_is_detected(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    stored = serialize(list(range(10)), list[int])
    store.put(stored.artifact_id, stored.payload)
    (tmp_path / stored.artifact_id[:2] / stored.artifact_id).write_bytes(stored.payload[:-3])
    payload = store.get(stored.artifact_id)  # get itself does not check
    with pytest.raises(ArtifactCorruptedError, match=stored.artifact_id):
        verify(stored.artifact_id, stored.type_description, payload)


@pytest.mark.parametrize("make", [FsspecArtifactStore, lambda url: InMemoryArtifactStore()])
def test_concurrent_puts_of_the_same_artifact(make: Callable[[str], Store], tmp_path: Path) -> None:
    store = make(str(tmp_path))
    payload = os.urandom(256 * 1024)
    artifact_id = an_id("concurrent")
    barrier = threading.Barrier(16)

    def put(_: int) -> None:
        barrier.wait()
        store.put(artifact_id, payload)
        assert store.get(artifact_id) == payload

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(16)))
    assert store.get(artifact_id) == payload
    if isinstance(store, FsspecArtifactStore):
        assert os.listdir(tmp_path / artifact_id[:2]) == [artifact_id]


def test_concurrent_puts_of_many_artifacts(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    ids = [an_id(i) for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda artifact_id: store.put(artifact_id, artifact_id.encode()), ids))
    assert all(store.get(artifact_id) == artifact_id.encode() for artifact_id in ids)


def test_nothing_is_fsynced_unless_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    FsspecArtifactStore(str(tmp_path)).put(an_id("fast"), b"x")
    assert synced == []
    store = FsspecArtifactStore(str(tmp_path), fsync=True)
    store.put(an_id("durable"), b"x")
    assert len(synced) == 2  # the file, then its folder
    assert store.get(an_id("durable")) == b"x"


def test_ids_are_checked(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    with pytest.raises(ConfigurationError, match="not an artifact id"):
        store.put("../../etc/passwd", b"x")
    with pytest.raises(ArtifactMissingError):
        store.get("../x")
    assert not store.exists("ABC")


def test_default_artifact_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sematic.resolvers.settings import LocalSettings

    def default_artifact_url() -> str:
        return LocalSettings.from_environment().artifact_url

    monkeypatch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    assert default_artifact_url() == str(tmp_path / "home" / "artifacts")
    monkeypatch.delenv("SEMATIC_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_artifact_url() == str(tmp_path / ".sematic" / "artifacts")
