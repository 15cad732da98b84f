"""Streamed puts (``open_upload``): written a chunk at a time, visible only once committed."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from sematic.core.errors import ConfigurationError
from sematic.core.ports import StreamingArtifactStore
from sematic.storage.artifacts import FsspecArtifactStore, InMemoryArtifactStore


def an_id(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


@pytest.fixture(params=["path", "fsync", "memory-url", "in-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StreamingArtifactStore]:
    if request.param == "path":
        yield FsspecArtifactStore(str(tmp_path / "artifacts"))
    elif request.param == "fsync":
        yield FsspecArtifactStore(str(tmp_path / "artifacts"), fsync=True)
    elif request.param == "memory-url":
        url = f"memory://sematic-uploads/{uuid.uuid4().hex}"
        yield FsspecArtifactStore(url)
        filesystem = fsspec.filesystem("memory")
        if filesystem.exists(url):
            filesystem.rm(url, recursive=True)
    else:
        yield InMemoryArtifactStore()


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.rglob("*") if p.is_file())


def test_an_upload_is_invisible_until_committed(store: StreamingArtifactStore) -> None:
    artifact_id = an_id("upload")
    upload = store.open_upload(artifact_id)
    for chunk in (b"abc", b"", b"def" * 1000):
        upload.write(chunk)
    assert not store.exists(artifact_id)
    upload.commit()
    upload.abort()  # after commit: nothing happens
    assert store.get(artifact_id) == b"abc" + b"def" * 1000


def test_an_aborted_upload_leaves_nothing(store: StreamingArtifactStore, tmp_path: Path) -> None:
    before = _files(tmp_path)
    artifact_id = an_id("aborted")
    upload = store.open_upload(artifact_id)
    upload.write(b"partial")
    upload.abort()
    upload.abort()
    assert not store.exists(artifact_id)
    assert _files(tmp_path) == before
    with pytest.raises(ValueError, match="committed or aborted"):
        upload.write(b"more")
    with pytest.raises(ValueError, match="committed or aborted"):
        upload.commit()


def test_a_commit_replaces_what_was_stored(store: StreamingArtifactStore) -> None:
    artifact_id = an_id("replaced")
    store.put(artifact_id, b"damaged")
    upload = store.open_upload(artifact_id)
    upload.write(b"the right bytes")
    assert store.get(artifact_id) == b"damaged"  # still the old ones while uploading
    upload.commit()
    assert store.get(artifact_id) == b"the right bytes"


def test_the_temporary_file_is_in_the_final_folder(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path))
    artifact_id = an_id("where")
    upload = store.open_upload(artifact_id)
    upload.write(b"x")
    (temporary,) = os.listdir(tmp_path / artifact_id[:2])
    assert temporary.startswith(f".{artifact_id}.") and temporary.endswith(".tmp")
    upload.commit()
    assert os.listdir(tmp_path / artifact_id[:2]) == [artifact_id]


def test_upload_ids_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not an artifact id"):
        FsspecArtifactStore(str(tmp_path)).open_upload("../../etc/passwd")
