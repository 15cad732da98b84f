"""A damaged payload is replaced, atomically, when its artifact is stored again.

Ids are content hashes: ``put`` of an id already stored keeps bytes equal to the payload
and replaces altered or truncated ones through a temporary file and a rename.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from sematic.storage.artifacts import FsspecArtifactStore, InMemoryArtifactStore
from sematic.storage.serialization import Serialized, serialize, verify

Store = FsspecArtifactStore | InMemoryArtifactStore
Damage = Callable[[bytes], bytes]

DAMAGES: dict[str, Damage] = {
    "altered": lambda good: good[:-1] + bytes([good[-1] ^ 1]),  # the same size
    "truncated": lambda good: good[: len(good) // 2],
    "emptied": lambda good: b"",
    "longer": lambda good: good + b" and more",
}


@pytest.fixture
def value() -> Serialized:
    return serialize({"weights": list(range(5000))}, dict[str, list[int]])


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://sematic-healing-tests/{uuid.uuid4().hex}"
    yield url
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(url):
        filesystem.rm(url, recursive=True)


def _overwrite(store: Store, artifact_id: str, data: bytes) -> None:
    """Damage what ``store`` holds for ``artifact_id`` behind its back."""
    if isinstance(store, InMemoryArtifactStore):
        store._payloads[artifact_id] = data
        return
    filesystem: Any = store._fs
    if filesystem is None:
        assert store._root is not None
        Path(store._root, artifact_id[:2], artifact_id).write_bytes(data)
    else:
        filesystem.pipe_file(store._fs_path(artifact_id), data)


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
@pytest.mark.parametrize("kind", ["path", "memory-url", "in-memory"])
def test_storing_again_replaces_a_damaged_payload(
    kind: str, damage: Damage, value: Serialized, tmp_path: Path, memory_url: str
) -> None:
    store: Store = {
        "path": lambda: FsspecArtifactStore(str(tmp_path / "artifacts")),
        "memory-url": lambda: FsspecArtifactStore(memory_url),
        "in-memory": InMemoryArtifactStore,
    }[kind]()
    store.put(value.artifact_id, value.payload)
    _overwrite(store, value.artifact_id, damage(value.payload))
    assert store.get(value.artifact_id) != value.payload

    store.put(value.artifact_id, value.payload)

    assert store.get(value.artifact_id) == value.payload
    verify(value.artifact_id, value.type_description, store.get(value.artifact_id))
    if kind == "path":
        assert os.listdir(tmp_path / "artifacts" / value.artifact_id[:2]) == [value.artifact_id]


def test_a_payload_already_stored_is_not_written_again(
    value: Serialized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    store.put(value.artifact_id, value.payload)
    path = tmp_path / value.artifact_id[:2] / value.artifact_id
    before = path.stat()
    monkeypatch.setattr(os, "replace", lambda *args: pytest.fail("rewrote an intact payload"))
    store.put(value.artifact_id, value.payload)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_damaged_payload_is_replaced_by_a_rename(value: Serialized, tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    store.put(value.artifact_id, value.payload)
    path = tmp_path / value.artifact_id[:2] / value.artifact_id
    path.write_bytes(DAMAGES["altered"](value.payload))
    with path.open("rb") as reader:  # a reader of the damaged file, as the rename happens
        damaged_inode = os.fstat(reader.fileno()).st_ino
        store.put(value.artifact_id, value.payload)
        assert reader.read() == DAMAGES["altered"](value.payload)  # never a mix of both
    assert path.stat().st_ino != damaged_inode
    assert path.read_bytes() == value.payload


def test_a_crash_while_replacing_leaves_the_old_file_whole(
    value: Serialized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    store.put(value.artifact_id, value.payload)
    path = tmp_path / value.artifact_id[:2] / value.artifact_id
    damaged = DAMAGES["truncated"](value.payload)
    path.write_bytes(damaged)
    real_write = os.write

    def write_half_then_fail(descriptor: int, data: Any) -> int:
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        store.put(value.artifact_id, value.payload)
    monkeypatch.undo()

    assert path.read_bytes() == damaged  # untouched: the write went to a temporary
    assert os.listdir(path.parent) == [value.artifact_id]
    store.put(value.artifact_id, value.payload)
    assert path.read_bytes() == value.payload


def test_a_crash_while_replacing_through_fsspec_leaves_the_old_object_whole(
    value: Serialized, memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(memory_url)
    store.put(value.artifact_id, value.payload)
    damaged = DAMAGES["altered"](value.payload)
    _overwrite(store, value.artifact_id, damaged)
    filesystem: Any = store._fs

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("connection reset")

    monkeypatch.setattr(filesystem, "mv", fail)
    with pytest.raises(OSError, match="connection reset"):
        store.put(value.artifact_id, value.payload)
    monkeypatch.undo()

    assert store.get(value.artifact_id) == damaged
    folder = store._fs_path(value.artifact_id).rpartition("/")[0]
    assert [p.rpartition("/")[2] for p in filesystem.ls(folder, detail=False)] == [
        value.artifact_id
    ]
    store.put(value.artifact_id, value.payload)
    assert store.get(value.artifact_id) == value.payload
