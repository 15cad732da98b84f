"""Artifacts on an S3-protocol store, through fsspec and s3fs: ``FsspecArtifactStore("s3://...")``.

The store runs against a real S3-compatible server on 127.0.0.1: moto's standalone server
(tests/harness/s3.py), the one installable here; a real S3 cannot be reached and MinIO cannot
run on this machine. The endpoint and the credentials reach s3fs through the standard AWS
variables (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ...), as they would for a user of
MinIO or S3: no Sematic setting is involved.

Covered: a put/get round trip, exists, bytes damaged behind the store's back detected by
verification, their atomic replacement (a temporary object, then a server-side copy onto the
artifact's key), streamed uploads (multipart ones too), the requests a read sends (counted
by the server: no listing), and one pipeline whose artifacts, written by this process and a
worker process, are on S3, then reused from there by a cached second resolution.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from sematic import LocalResolver
from sematic.core.errors import ArtifactCorruptedError, ArtifactMissingError
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.serialization import Serialized, serialize, verify
from tests.harness.ports import free_port
from tests.harness.s3 import S3Request, S3Server
from tests.pipelines.healing import executions, healing_pipeline
from tests.unit.resolvers.conftest import recorded_runs, store

STEPS = ("cached_inline", "cached_remote", "cached_sum")
X, RESULT = 5, 3010  # healing_pipeline(5, ...) == 1005 + 2005


def an_id(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


def key_of(store: FsspecArtifactStore, artifact_id: str) -> str:
    """The object key of ``artifact_id`` (``<prefix>/<id[:2]>/<id>``)."""
    return store._fs_path(artifact_id).partition("/")[2]


def prefix_of(url: str) -> str:
    return url.removeprefix("s3://").partition("/")[2] + "/"


def operations(requests: list[S3Request]) -> Counter[str]:
    return Counter(request.operation for request in requests)


@pytest.fixture
def value() -> Serialized:
    return serialize({"weights": list(range(5000))}, dict[str, list[int]])


def test_a_store_uses_the_endpoint_the_environment_names_when_it_is_made(
    s3_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec shares filesystems made with the same arguments; a store made after the
    environment moved to another endpoint must not write to the old one."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing there
    with pytest.raises(EndpointConnectionError):
        FsspecArtifactStore(s3_url).get(an_id(0))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    store = FsspecArtifactStore(s3_url)
    store.put(an_id(0), b"here")
    prefix = s3_url.removeprefix(f"s3://{s3_server.bucket}/")
    assert len(s3_server.keys(f"{prefix}/")) == 1


def test_put_get_exists_round_trip(s3_url: str, s3_server: S3Server) -> None:
    store = FsspecArtifactStore(s3_url)
    artifact_id = an_id(1)
    assert not store.exists(artifact_id)
    with pytest.raises(ArtifactMissingError, match=artifact_id) as raised:
        store.get(artifact_id)
    assert s3_url in str(raised.value)

    store.put(artifact_id, b"payload")
    store.put(an_id(2), b"")

    assert store.exists(artifact_id)
    assert store.get(artifact_id) == b"payload"
    assert store.get(an_id(2)) == b""
    # On the server, under the URL's prefix: one object per artifact, no temporary left.
    assert s3_server.keys(prefix_of(s3_url)) == sorted(
        [key_of(store, artifact_id), key_of(store, an_id(2))]
    )
    # Someone else's client reads the same bytes under the same key.
    answer = s3_server.client().get_object(Bucket=s3_server.bucket, Key=key_of(store, artifact_id))
    assert answer["Body"].read() == b"payload"


def test_a_serialized_value_round_trips_and_verifies(s3_url: str, value: Serialized) -> None:
    store = FsspecArtifactStore(s3_url)
    store.put(value.artifact_id, value.payload)
    payload = FsspecArtifactStore(s3_url).get(value.artifact_id)
    verify(value.artifact_id, value.type_description, payload)
    assert payload == value.payload


@pytest.mark.parametrize("damage", ["altered", "truncated"])
def test_bytes_changed_behind_the_store_are_detected_then_replaced_atomically(
    s3_url: str, s3_server: S3Server, value: Serialized, damage: str
) -> None:
    store = FsspecArtifactStore(s3_url)
    store.put(value.artifact_id, value.payload)
    key = key_of(store, value.artifact_id)
    good = value.payload
    damaged = good[:-1] + bytes([good[-1] ^ 1]) if damage == "altered" else good[: len(good) // 2]
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=damaged)

    read = store.get(value.artifact_id)  # get itself does not check: verification does
    assert read == damaged
    with pytest.raises(ArtifactCorruptedError, match=value.artifact_id):
        verify(value.artifact_id, value.type_description, read)

    with s3_server.recording() as requests:
        store.put(value.artifact_id, value.payload)  # stored again: the bytes are replaced

    assert store.get(value.artifact_id) == good
    verify(value.artifact_id, value.type_description, store.get(value.artifact_id))
    assert s3_server.keys(prefix_of(s3_url)) == [key]  # the temporary object is gone
    # The artifact's key is only ever written whole, by a server-side copy of a complete
    # temporary object: a reader gets the damaged bytes or the right ones, never a mix.
    writes = [r for r in requests if r.operation in ("PutObject", "CopyObject", "UploadPart")]
    assert [(r.operation, r.key == key) for r in writes] == [
        ("PutObject", False),
        ("CopyObject", True),
    ]
    assert writes[0].key.startswith(f"{key.rpartition('/')[0]}/.{value.artifact_id}.")


def test_readers_see_whole_payloads_while_damaged_bytes_are_replaced(
    s3_url: str, s3_server: S3Server, value: Serialized
) -> None:
    store = FsspecArtifactStore(s3_url)
    key = key_of(store, value.artifact_id)
    damaged = value.payload[:-1] + bytes([value.payload[-1] ^ 1])
    client = s3_server.client()
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        reader = s3_server.client()
        while not stop.is_set():
            seen.add(reader.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())

    store.put(value.artifact_id, value.payload)
    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(10):
            client.put_object(Bucket=s3_server.bucket, Key=key, Body=damaged)
            store.put(value.artifact_id, value.payload)
    finally:
        stop.set()
        thread.join()
    assert seen <= {value.payload, damaged}
    assert store.get(value.artifact_id) == value.payload


def test_an_intact_payload_is_not_written_again(
    s3_url: str, s3_server: S3Server, value: Serialized
) -> None:
    store = FsspecArtifactStore(s3_url)
    store.put(value.artifact_id, value.payload)
    again = FsspecArtifactStore(s3_url)
    with pytest.MonkeyPatch.context() as patch, s3_server.recording() as requests:
        patch.setattr(again._fs, "mv", lambda *a, **k: pytest.fail("rewrote an artifact"))
        again.put(value.artifact_id, value.payload)
    # Compared with what is stored (its size, then its bytes), nothing written or listed.
    assert set(operations(requests)) == {"HeadObject", "GetObject"}
    assert again.get(value.artifact_id) == value.payload


def test_a_failed_replacement_leaves_the_old_object_whole(
    s3_url: str, s3_server: S3Server, value: Serialized
) -> None:
    store = FsspecArtifactStore(s3_url)
    store.put(value.artifact_id, value.payload)
    key = key_of(store, value.artifact_id)
    damaged = value.payload[: len(value.payload) // 2]
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=damaged)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("connection reset")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store._fs, "mv", fail)
        with pytest.raises(OSError, match="connection reset"):
            store.put(value.artifact_id, value.payload)

    assert store.get(value.artifact_id) == damaged
    assert s3_server.keys(prefix_of(s3_url)) == [key]  # the temporary object was removed
    store.put(value.artifact_id, value.payload)
    assert store.get(value.artifact_id) == value.payload


def test_reads_do_not_list_the_bucket(s3_url: str, s3_server: S3Server) -> None:
    store = FsspecArtifactStore(s3_url)
    for i in range(20):  # other artifacts under the same prefix and the same folders
        store.put(an_id(i), f"payload {i}".encode())
    present, absent = an_id(3), an_id("absent")

    with s3_server.recording() as get_requests:
        assert store.get(present) == b"payload 3"
    with s3_server.recording() as exists_requests:
        assert store.exists(present)
    with s3_server.recording() as missing_requests:
        assert not store.exists(absent)
        with pytest.raises(ArtifactMissingError):
            store.get(absent)

    # A read of a stored artifact: its size (HEAD), then its bytes (GET); nothing listed.
    assert operations(get_requests) == {"HeadObject": 1, "GetObject": 1}
    assert operations(exists_requests) == {"HeadObject": 1}
    assert {r.key for r in get_requests + exists_requests} == {key_of(store, present)}
    # An absent one: the HEAD answers 404, then s3fs asks whether a "folder" of that name
    # exists, listing at most one key under "<key>/" (never the bucket or the prefix).
    assert operations(missing_requests) == {"HeadObject": 2, "ListObjectsV2": 2}
    probes = [request for request in missing_requests if request.is_listing]
    assert {request.query["prefix"][0] for request in probes} == {key_of(store, absent) + "/"}
    assert {request.query["max-keys"][0] for request in probes} == {"1"}


def test_a_streamed_upload_is_invisible_until_committed(
    s3_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FsspecArtifactStore(s3_url)
    # Parts of 5 MiB (S3's smallest) rather than s3fs's 50 MiB: 12 MiB make a multipart upload.
    monkeypatch.setattr(store._fs, "default_block_size", 5 * 2**20)
    chunks = [os.urandom(2**20) for _ in range(12)]
    artifact_id = an_id("streamed")
    key = key_of(store, artifact_id)

    with s3_server.recording() as requests:
        upload = store.open_upload(artifact_id)
        for chunk in chunks:
            upload.write(chunk)
        assert not store.exists(artifact_id)
        upload.commit()
        upload.abort()  # after commit: nothing happens

    assert store.get(artifact_id) == b"".join(chunks)
    assert s3_server.keys(prefix_of(s3_url)) == [key]
    counted = operations(requests)
    assert counted["UploadPart"] == 3 and counted["CompleteMultipartUpload"] == 1
    assert [r.operation for r in requests if r.key == key and r.method != "HEAD"] == ["CopyObject"]


def test_an_aborted_upload_leaves_nothing(s3_url: str, s3_server: S3Server) -> None:
    store = FsspecArtifactStore(s3_url)
    store.put(an_id("other"), b"other")
    artifact_id = an_id("aborted")
    upload = store.open_upload(artifact_id)
    upload.write(b"partial")
    upload.abort()
    assert not store.exists(artifact_id)
    assert s3_server.keys(prefix_of(s3_url)) == [key_of(store, an_id("other"))]
    with pytest.raises(ValueError, match="committed or aborted"):
        upload.write(b"more")


def test_a_commit_replaces_what_was_stored(s3_url: str) -> None:
    store = FsspecArtifactStore(s3_url)
    artifact_id = an_id("replaced")
    store.put(artifact_id, b"damaged")
    upload = store.open_upload(artifact_id)
    upload.write(b"the right bytes")
    assert store.get(artifact_id) == b"damaged"  # still the old ones while uploading
    upload.commit()
    assert store.get(artifact_id) == b"the right bytes"


def _resolve(witness: str) -> tuple[str, int]:
    future = healing_pipeline(X, witness)
    value = future.resolve(LocalResolver(progress=False))
    return future.id, value


def _outputs(root_id: str) -> dict[str, str]:
    outputs = {run.name: run.output for run in recorded_runs(root_id)}
    return {name: output for name, output in outputs.items() if output is not None}


def test_a_pipeline_keeps_its_artifacts_on_s3_and_reuses_them(
    home: Path,
    tmp_path: Path,
    s3_url: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LocalResolver with SEMATIC_ARTIFACT_URL=s3://...: an inline step and a worker-process
    step (which reaches S3 through the environment it inherits) write there; a second
    resolution reuses the cached outputs from there; a damaged one is recomputed."""
    monkeypatch.setenv("SEMATIC_ARTIFACT_URL", s3_url)
    # Every value an object of its own, small ones too: this test is about what S3 holds
    # (small values packed in the database: tests/unit/resolvers/test_packed_pipeline.py).
    monkeypatch.setenv("SEMATIC_SMALL_PAYLOAD_BYTES", "0")
    witness = str(tmp_path / "witness")

    first, value = _resolve(witness)

    assert value == RESULT
    assert {step: executions(witness, step) for step in STEPS} == dict.fromkeys(STEPS, 1)
    assert not (home / "artifacts").exists()  # nothing in the local default
    outputs = _outputs(first)
    assert set(STEPS) <= set(outputs)
    probe = FsspecArtifactStore(s3_url)
    stored = set(s3_server.keys(prefix_of(s3_url)))
    with store() as metadata:
        for artifact_id in outputs.values():
            assert key_of(probe, artifact_id) in stored
            description = metadata.get_artifact(artifact_id).type_description
            verify(artifact_id, description, probe.get(artifact_id))
    assert not [key for key in stored if key.endswith(".tmp")]

    with s3_server.recording() as requests:
        second, value = _resolve(witness)

    assert value == RESULT
    assert {step: executions(witness, step) for step in STEPS} == dict.fromkeys(STEPS, 1)
    assert {run.name: run.cache_hit for run in recorded_runs(second) if run.name in STEPS} == (
        dict.fromkeys(STEPS, True)
    )
    assert _outputs(second)["cached_sum"] == outputs["cached_sum"]
    # Read from S3 (GETs of the cached outputs); nothing written, nothing listed.
    counted = operations(requests)
    assert counted["GetObject"] >= 1
    assert not [r for r in requests if r.is_listing or r.method in ("PUT", "POST", "DELETE")]

    # Damaged behind Sematic's back: verification catches it, the worker step runs again and
    # its output is stored again, whole.
    remote = outputs["cached_remote"]
    key = key_of(probe, remote)
    good = probe.get(remote)
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=good[:-1])

    third, value = _resolve(witness)

    assert value == RESULT
    assert executions(witness, "cached_remote") == 2
    assert executions(witness, "cached_inline") == executions(witness, "cached_sum") == 1
    assert probe.get(remote) == good
