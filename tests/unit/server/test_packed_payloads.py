"""The server packs small payloads: uploads through its API (one at a time, streamed, or
a batch) land in its database's ``small_payloads`` table up to the threshold, in a file of
their own beyond; every read route gives them back. A real ``python -m sematic.server``
over a SQLite database and an artifact folder of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sematic.core.errors import ArtifactCorruptedError
from sematic.storage.http import HttpArtifactStore, HttpMetadataStore
from sematic.storage.serialization import Serialized, serialize, verify
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import Server, start_server


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    path = tmp_path / "server-home"
    path.mkdir()
    return path


@pytest.fixture
def server(server_home: Path) -> Iterator[Server]:
    started = start_server(server_home)
    try:
        yield started
    finally:
        started.stop()


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def type_key(value: Serialized) -> str:
    return str(value.type_description["type_key"])


def test_uploads_are_packed_up_to_the_threshold_and_read_back_by_every_route(
    server: Server, server_home: Path
) -> None:
    alone = serialize(7, int)
    batch = [serialize(f"value {i}", str) for i in range(3)]
    at = serialize("a" * 4094, str)  # 4096 bytes: the default threshold
    large = serialize("z" * 4095, str)  # one byte more
    assert len(at.payload) == 4096 and len(large.payload) == 4097
    with HttpArtifactStore(server.url) as store:
        store.put(alone.artifact_id, alone.payload, type_key=type_key(alone))  # PUT, streamed
        store.put(at.artifact_id, at.payload, type_key=type_key(at))
        store.put(large.artifact_id, large.payload, type_key=type_key(large))
        store.put_many(  # POST /payloads, one request
            {v.artifact_id: v.payload for v in batch},
            type_keys={v.artifact_id: type_key(v) for v in batch},
        )
        wrong = serialize(8, int)
        with pytest.raises(ArtifactCorruptedError, match="does not hash"):
            store.put(wrong.artifact_id, alone.payload, type_key=type_key(wrong))
        assert not store.exists(wrong.artifact_id)
        values = [alone, at, large, *batch]
        for value in values:
            assert store.exists(value.artifact_id)
            verify(value.artifact_id, value.type_description, store.get(value.artifact_id))

    assert files(server_home / "artifacts") == {large.artifact_id}
    with SqlMetadataStore(f"sqlite:///{server_home / 'db.sqlite3'}") as database:
        packed = database.small_payloads().get_many([v.artifact_id for v in values])
    assert packed == {v.artifact_id: v.payload for v in values if v is not large}

    # The read API's payload route (the UI's) serves a recorded packed artifact as well.
    with HttpMetadataStore(server.url) as metadata:
        metadata.write(artifacts=[alone.to_record(time.time())])
    response = httpx.get(f"{server.url}/api/v1/artifacts/{alone.artifact_id}/payload", timeout=10)
    assert response.status_code == 200 and response.content == alone.payload
