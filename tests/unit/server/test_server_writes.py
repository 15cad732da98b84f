"""The store API (``sematic.server.writes``) and its client, against real server processes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sematic.core import wire
from sematic.core.errors import (
    ArtifactCorruptedError,
    ArtifactMissingError,
    ConfigurationError,
    InfrastructureError,
    PipelineFinishedError,
    RunNotFoundError,
    StoreError,
)
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord
from sematic.core.wire import MAX_LOG_BYTES
from sematic.storage.http import (
    HttpArtifactStore,
    HttpLogs,
    HttpMetadataStore,
    _connection,
    metadata,
)
from sematic.storage.serialization import FORMAT, hint_key, serialize
from sematic.storage.sql import SqlMetadataStore
from tests.harness.payloads import stored_payloads
from tests.harness.ports import free_port
from tests.unit.server.conftest import TAG, Recorded, Server, server_env, start_server

KEY = "writes-test-key"
SECRET = "PLANTED-SECRET"
JSON = {"Content-Type": "application/json"}
BYTES = {"Content-Type": "application/octet-stream"}


@dataclasses.dataclass
class Home:
    server: Server
    home: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'db.sqlite3'}"

    def stored(self, artifact_id: str) -> bool:
        """Whether the server stored a payload under ``artifact_id`` (packed or a file)."""
        with stored_payloads(self.database_url, str(self.home / "artifacts")) as payloads:
            return payloads.exists(artifact_id)


def _start(tmp_path_factory: pytest.TempPathFactory, *args: str, **env: str) -> Iterator[Home]:
    home = tmp_path_factory.mktemp("writes") / "home"
    home.mkdir()
    server = start_server(home, *args, env=server_env(home, **env))
    try:
        yield Home(server, home)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    yield from _start(tmp_path_factory)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    yield from _start(tmp_path_factory, "--api-key-env", "K", K=KEY)


def _records(value: Any = 42) -> tuple[RunRecord, TransitionRecord, ArtifactRecord, bytes, str]:
    """A resolved run with a fresh id, its transition, its output artifact and payload."""
    serialized = serialize(value, type(value))
    run_id = hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]
    now = time.time()
    run = RunRecord(
        id=run_id,
        root_id=run_id,
        parent_id=None,
        name="f",
        function_path="tests.f",
        state="RESOLVED",
        created_at=now,
        updated_at=now,
        output=serialized.artifact_id,
        tags=("a", "b"),
    )
    return (
        run,
        TransitionRecord(run_id, "RESOLVED", now),
        serialized.to_record(now),
        serialized.payload,
        serialized.type_description["type_key"],
    )


def _body(run: RunRecord, transition: TransitionRecord, artifact: ArtifactRecord) -> bytes:
    edge = EdgeRecord(run.id, None, None, artifact.id)
    return wire.batch([run], [transition], [artifact], [edge])


def _recorded(home: Home, run_id: str) -> bool:
    with SqlMetadataStore(home.database_url) as store:
        try:
            store.get_run(run_id)
        except RunNotFoundError:
            return False
        return True


# Writes --------------------------------------------------------------------------------


def test_a_write_is_recorded_as_sent(open_server: Home) -> None:
    run, transition, artifact, payload, type_key = _records({"x": [1.5, None]})
    with HttpArtifactStore(open_server.server.url) as payloads:
        payloads.put(artifact.id, payload, type_key=type_key)
    with HttpMetadataStore(open_server.server.url) as store:
        store.write(runs=[run], transitions=[transition], artifacts=[artifact])
        store.write()  # nothing to write: no request
    with SqlMetadataStore(open_server.database_url) as sql:
        assert sql.get_run(run.id) == run
        assert sql.transitions_of(run.id) == [transition]
        assert sql.get_artifact(artifact.id) == artifact
    with stored_payloads(open_server.database_url, str(open_server.home / "artifacts")) as stored:
        assert stored.get(artifact.id) == payload


def _mutated(path: str, value: Any) -> bytes:
    run, transition, artifact, _, _ = _records()
    body = json.loads(_body(run, transition, artifact))
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return json.dumps(body).encode()


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("runs.0.bogus", 1, "runs[0].bogus: Unexpected keyword argument"),
        ("runs.0.inline", "yes", "runs[0].inline: Input should be a valid boolean"),
        ("runs.0.name", _DELETE, "runs[0].name: Field required"),
        ("runs.0.created_at", "today", "runs[0].created_at: Input should be a valid number"),
        ("runs.0.tags", "a,b", "runs[0].tags: Input should be a valid"),
        ("runs.0.state", "DONE", "runs[0].state: unknown state 'DONE'"),
        ("runs.0.id", "../../etc", "runs[0].id: '../../etc' is not a run id"),
        ("runs.0.output", "f" * 63, "runs[0].output: '" + "f" * 63 + "' is not an artifact id"),
        ("runs.0.inputs", {"x": "nope"}, "runs[0].inputs.x: 'nope' is not an artifact id"),
        ("transitions.0.state", "NOPE", "transitions[0].state: unknown state 'NOPE'"),
        ("artifacts.0.id", "A" * 64, "artifacts[0].id: '" + "A" * 64 + "' is not an artifact id"),
        ("artifacts.0.size", -1, "artifacts[0].size: must not be negative"),
        ("edges.0.artifact_id", "x", "edges[0].artifact_id: 'x' is not an artifact id"),
        ("extra", [], "extra: Extra inputs are not permitted"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(
    open_server: Home, path: str, value: Any, message: str
) -> None:
    body = _mutated(path, value)
    response = httpx.post(open_server.server.url + "/api/v1/write", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert not _recorded(open_server, json.loads(body)["runs"][0]["id"])


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"runs": {}}'])
def test_a_body_that_is_not_a_batch_is_a_400(open_server: Home, body: bytes) -> None:
    response = httpx.post(open_server.server.url + "/api/v1/write", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_batch_the_database_refuses_is_a_409_and_writes_nothing(open_server: Home) -> None:
    run, transition, artifact, _, _ = _records()
    orphan = TransitionRecord("e" * 32, "CREATED", 1.0)  # its run does not exist
    with pytest.raises(StoreError, match="409"), HttpMetadataStore(open_server.server.url) as s:
        s.write(runs=[run], transitions=[transition, orphan], artifacts=[artifact])
    assert not _recorded(open_server, run.id)


# API key -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_without_the_key_nothing_is_written(keyed_server: Home, headers: dict[str, str]) -> None:
    run, transition, artifact, payload, type_key = _records("keyed")
    base = keyed_server.server.url + "/api/v1"
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        write = client.post("/write", content=_body(run, transition, artifact), headers=JSON)
        batch = client.post(
            "/payloads",
            content=wire.payload_batch([(artifact.id, type_key, payload)]),
            headers={"Content-Type": wire.PAYLOADS_TYPE},
        )
        put = client.put(
            f"/artifacts/{artifact.id}/payload",
            content=payload,
            headers={wire.TYPE_KEY_HEADER: type_key.replace("\n", "%0A"), **BYTES},
        )
        reads = [
            client.get(f"/payloads/{artifact.id}"),
            client.head(f"/payloads/{artifact.id}"),
            client.get("/cached-outputs/" + "0" * 64),
            client.get("/changed-runs", params={"since": 0}),
            client.get(f"/runs/{run.id}/cancel"),
            client.post("/artifacts/lookup", json={"ids": [artifact.id]}),
        ]
    assert [r.status_code for r in (write, batch, put, *reads)] == [401] * 9
    assert write.headers["www-authenticate"] == "Bearer"
    assert not _recorded(keyed_server, run.id)
    assert not keyed_server.stored(artifact.id)


def test_the_client_says_how_to_set_the_key(keyed_server: Home) -> None:
    run, transition, artifact, payload, type_key = _records("client")
    url = keyed_server.server.url
    for key, problem in ((None, "needs an API key"), ("wrong", "rejected the API key")):
        with pytest.raises(ConfigurationError) as caught, HttpMetadataStore(url, key) as store:
            store.write(runs=[run], transitions=[transition], artifacts=[artifact])
        assert problem in str(caught.value)
        assert "sematic settings set api_key" in str(caught.value)
        assert "SEMATIC_API_KEY" in str(caught.value)
    with HttpMetadataStore(url, KEY) as store, HttpArtifactStore(url, KEY) as payloads:
        payloads.put(artifact.id, payload, type_key=type_key)
        store.write(runs=[run], transitions=[transition], artifacts=[artifact])
        # The server records who submitted: the user of the key (the bootstrap admin).
        assert store.get_run(run.id) == dataclasses.replace(run, submitted_by="admin")
        assert store.cancel_request(run.id) is None


# Payloads ------------------------------------------------------------------------------


def test_payloads_round_trip(open_server: Home) -> None:
    _, _, artifact, payload, type_key = _records([1, 2, 3])
    with HttpArtifactStore(open_server.server.url) as store:
        _round_trip(store, artifact.id, payload, type_key)


def _round_trip(store: HttpArtifactStore, artifact_id: str, payload: bytes, type_key: str) -> None:
    assert not store.exists(artifact_id)
    with pytest.raises(ArtifactMissingError, match=artifact_id):
        store.get(artifact_id)
    store.put(artifact_id, payload, type_key=type_key)
    store.put(artifact_id, payload, type_key=type_key)  # idempotent
    assert store.exists(artifact_id)
    assert store.get(artifact_id) == payload
    assert not store.exists("not-an-id")
    with pytest.raises(ArtifactMissingError):
        store.get("../../etc/passwd")
    with pytest.raises(ConfigurationError, match="type key"):
        store.put(artifact_id, payload)


def test_many_payloads_go_in_one_request(open_server: Home, attempts: list[str]) -> None:
    items = [serialize(f"batched {i}", str) for i in range(50)]
    payloads = {item.artifact_id: item.payload for item in items}
    keys = {item.artifact_id: item.type_description["type_key"] for item in items}
    with HttpArtifactStore(open_server.server.url) as store:
        store.put_many(payloads, type_keys=keys)
        assert attempts == ["POST"]
        store.put_many(payloads, type_keys=keys)  # idempotent
        assert all(store.get(artifact_id) == payload for artifact_id, payload in payloads.items())
        store.put_many({})
        with pytest.raises(ConfigurationError, match="type key"):
            store.put_many(payloads)


def test_one_tampered_payload_in_a_batch_stores_none(open_server: Home) -> None:
    items = [serialize(f"batch member {i}", str) for i in range(3)]
    batch = [(s.artifact_id, s.type_description["type_key"], s.payload) for s in items]
    artifact_id, type_key, payload = batch[1]
    batch[1] = (artifact_id, type_key, payload + b" ")
    with HttpArtifactStore(open_server.server.url) as store:
        with pytest.raises(ArtifactCorruptedError, match=r"payloads\[1\].*nothing was stored"):
            store.put_many({i: p for i, _, p in batch}, type_keys={i: k for i, k, _ in batch})
        assert not any(store.exists(i) for i, _, _ in batch)


def _frame(header: dict[str, Any], payload: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(4, "big") + encoded + payload


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00\x00", "payloads[0]: the body ends inside a header length"),
        (b"\x00\x00\x00\x05{}", "payloads[0]: bad header length 5"),
        (b"\x00\x00\x00\x02[]", "payloads[0]: the header must have exactly id"),
        (b"\x00\x00\x00\x03{x}", "payloads[0]: the header is not JSON"),
        (wire.payload_batch([("../../x", "k", b"p")]), "payloads[0].id: '../../x' is not"),
        (wire.payload_batch([("a" * 64, "k", b"p")])[:-1], "payloads[0]: bad size 1"),
        (_frame({"id": "a" * 64, "type_key": "k", "size": True}, b"p"), "payloads[0]: bad size"),
        (_frame({"id": "a" * 64, "type_key": "k", "size": 1, "x": 1}, b"p"), "payloads[0]: the"),
        (_frame({"id": 7, "type_key": "k", "size": 1}, b"p"), "payloads[0]: id and type_key"),
    ],
)
def test_a_malformed_batch_is_a_400(open_server: Home, body: bytes, message: str) -> None:
    response = httpx.post(
        open_server.server.url + "/api/v1/payloads",
        content=body,
        headers={"Content-Type": wire.PAYLOADS_TYPE},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert not open_server.stored("a" * 64)


@pytest.mark.parametrize("tamper", ["bytes", "type key", "truncated", "no header"])
def test_a_tampered_payload_is_refused_and_not_stored(open_server: Home, tamper: str) -> None:
    _, _, artifact, payload, type_key = _records(f"tampered {tamper}")
    if tamper == "bytes":
        payload = payload.replace(b"tampered", b"TAMPERED")
    elif tamper == "type key":
        type_key = type_key.replace("str", "bytes")
    elif tamper == "truncated":
        payload = payload[:-1]
    headers = {} if tamper == "no header" else {wire.TYPE_KEY_HEADER: type_key}
    response = httpx.put(
        f"{open_server.server.url}/api/v1/artifacts/{artifact.id}/payload",
        content=payload,
        headers={**BYTES, **{k: v.replace("\n", "%0A") for k, v in headers.items()}},
    )
    assert response.status_code == 400
    assert (
        "nothing was stored" in response.json()["error"]
        or "header is missing" in (response.json()["error"])
    )
    assert not open_server.stored(artifact.id)
    with HttpArtifactStore(open_server.server.url) as store:
        assert not store.exists(artifact.id)
        if tamper != "no header":
            with pytest.raises(ArtifactCorruptedError, match="does not hash to artifact id"):
                store.put(artifact.id, payload, type_key=type_key)


def _raw(url: str, request: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``request`` (method, path and headers) exactly as written; status and body."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        kind = "Content-Type: application/octet-stream\r\n" if body else ""
        head = f"{request}\r\nHost: {parts.netloc}\r\n{kind}Content-Length: {len(body)}"
        head += "\r\nConnection: close"
        conn.sendall(head.encode() + b"\r\n\r\n" + body)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head_bytes, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), rest


_TRAVERSALS = [
    "..%2F..%2Fplanted",
    "..%2F..%2F" + "a" * 64,
    "%2E%2E%2F%2E%2E%2Fplanted",
    "..",
    "%2Fetc%2Fpasswd",
    "aa%2F..%2F..%2F..%2Fplanted",
    "a" * 64 + "%00",
]


@pytest.mark.parametrize("target", _TRAVERSALS)
def test_ids_cannot_leave_the_artifact_store(open_server: Home, target: str) -> None:
    home = open_server.home
    planted = [home / "planted", home.parent / "planted", home / ("a" * 64)]
    for path in planted:
        path.write_text(SECRET)
    before = sorted(p for p in home.parent.rglob("*") if "db.sqlite3" not in p.name)
    url = open_server.server.url
    _, _, _, payload, type_key = _records("traversal")
    header = f"{wire.TYPE_KEY_HEADER}: {type_key.replace(chr(10), '%0A')}"
    for request, body in (
        (f"PUT /api/v1/artifacts/{target}/payload HTTP/1.1\r\n{header}", payload),
        (f"PUT /api/v1/artifacts/../../{target}/payload HTTP/1.1\r\n{header}", payload),
        (f"GET /api/v1/payloads/{target} HTTP/1.1", b""),
        (f"HEAD /api/v1/payloads/{target} HTTP/1.1", b""),
        (f"GET /api/v1/payloads/../{target} HTTP/1.1", b""),
        (f"GET /api/v1/cached-outputs/{target} HTTP/1.1", b""),
        (f"GET /api/v1/runs/{target}/cancel HTTP/1.1", b""),
    ):
        status, answer = _raw(url, request, body)
        assert status in (400, 404, 405), (request, status)
        assert SECRET.encode() not in answer
    after = sorted(p for p in home.parent.rglob("*") if "db.sqlite3" not in p.name)
    assert after == before
    assert all(path.read_text() == SECRET for path in planted)


class _Booby:
    """Unpickling it opens (creates) a file: the proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_the_server_never_unpickles(open_server: Home, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Booby(marker))
    type_key = "\n".join([FORMAT, "pickle", hint_key(Any)])
    artifact_id = hashlib.sha256(type_key.encode() + b"\0" + payload).hexdigest()
    run, transition, _, _, _ = _records()
    run = dataclasses.replace(run, output=artifact_id, inputs={"x": artifact_id})
    artifact = ArtifactRecord(
        id=artifact_id,
        type_description={"kind": "pickle", "type": "Any", "type_key": type_key},
        summary="<pickled>",
        size=len(payload),
        created_at=time.time(),
    )
    url = open_server.server.url
    with HttpArtifactStore(url) as payloads:
        payloads.put(artifact_id, payload, type_key=type_key)
        with pytest.raises(ArtifactCorruptedError):
            payloads.put(artifact_id, payload + b".", type_key=type_key)
    with HttpMetadataStore(url) as store:
        store.write(
            runs=[run],
            transitions=[transition],
            artifacts=[artifact],
            edges=[EdgeRecord(None, run.id, "x", artifact_id)],
        )
        assert store.get_artifact(artifact_id) == artifact
        assert store.get_artifacts([artifact_id]) == [artifact]
        assert len(store.runs_of_root(run.id)) == 1
    with httpx.Client(base_url=url + "/api/v1", timeout=10) as api:
        for path in (
            f"/artifacts/{artifact_id}/payload",
            f"/payloads/{artifact_id}",
            f"/artifacts/{artifact_id}",
            f"/runs/{run.id}",
            f"/runs/{run.id}/graph",
            "/runs",
        ):
            assert api.get(path).status_code == 200, path
        assert api.get(f"/payloads/{artifact_id}").content == payload
    assert not marker.exists()
    pickle.loads(payload).close()  # the payload is live: unpickling does create the file
    assert marker.exists()


# Reads: the client against the same database read directly ----------------------------


def test_reads_over_http_equal_reads_from_sql(
    recorded: Recorded, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metadata, "PAGE", 2)  # list_runs pages through several requests
    roots = (recorded.mixed_root, recorded.steps_root, recorded.failed_root)
    with (
        stored_payloads(recorded.settings.database_url, recorded.settings.artifact_url) as payloads,
        SqlMetadataStore(recorded.settings.database_url) as sql,
        HttpMetadataStore(server.url) as http,
        HttpArtifactStore(server.url) as http_payloads,
    ):
        for root in roots:
            runs = sql.runs_of_root(root)
            assert http.runs_of_root(root) == runs
            assert http.edges_of_root(root) == sql.edges_of_root(root)
            for run in runs:
                assert http.get_run(run.id) == run
                assert http.transitions_of(run.id) == sql.transitions_of(run.id)
                if run.id != root:
                    assert http.runs_of_root(run.id) == sql.runs_of_root(run.id) == []
                    assert http.edges_of_root(run.id) == sql.edges_of_root(run.id) == []
            ids = sorted({e.artifact_id for e in sql.edges_of_root(root)})
            assert http.get_artifacts([*ids, "f" * 64]) == sql.get_artifacts([*ids, "f" * 64])
            for artifact_id in ids:
                assert http.get_artifact(artifact_id) == sql.get_artifact(artifact_id)
                assert http_payloads.get(artifact_id) == payloads.get(artifact_id)
            assert http.cancel_request(root) == sql.cancel_request(root) is None
            with pytest.raises(PipelineFinishedError):
                http.request_cancel(root, "too late")
        for filters in (
            {},
            {"root_only": True},
            {"status": "FAILED"},
            {"tag": TAG},
            {"name": "square"},
            {"name": "square", "root_only": True},
        ):
            assert http.count_runs(**filters) == sql.count_runs(**filters)
            assert http.list_runs(**filters) == sql.list_runs(**filters)
            assert http.list_runs(limit=3, offset=2, **filters) == sql.list_runs(
                limit=3, offset=2, **filters
            )
        assert http.changed_runs(since=0) == sql.changed_runs(since=0)
        for root in roots:
            assert http.changed_runs(since=0, root_id=root) == sql.changed_runs(
                since=0, root_id=root
            )
        assert http.find_cached_output("0" * 64) is None
        unknown = "f" * 32
        assert http.transitions_of(unknown) == sql.transitions_of(unknown) == []
        assert http.runs_of_root(unknown) == []
        with pytest.raises(RunNotFoundError, match=unknown):
            http.get_run(unknown)
        with pytest.raises(RunNotFoundError):
            http.request_cancel(unknown, "who?")
        with pytest.raises(StoreError, match="No artifact"):
            http.get_artifact("f" * 64)
        with pytest.raises(StoreError, match="No artifact"):
            http.get_artifact("../etc")


# Failures of the connection ------------------------------------------------------------


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the client sends, retries included; no waiting between retries."""
    sent: list[str] = []
    original = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        sent.append(request.method)
        return original(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(_connection, "BACKOFF_S", (0.0,))
    return sent


def test_a_server_that_is_not_running(attempts: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run, transition, _, _, _ = _records()
    with HttpMetadataStore(url) as store:
        with pytest.raises(InfrastructureError) as caught:
            store.get_run(run.id)
        assert url in str(caught.value)
        assert "sematic start" in str(caught.value)
        assert attempts == ["GET"] * 3  # refused connections are retried
        attempts.clear()
        with pytest.raises(InfrastructureError, match="sematic start"):
            store.write(runs=[run], transitions=[transition])
        assert attempts == ["POST"] * 3  # never reached the server: safe to send again


class _Hangup:
    """A TCP server that reads each request and hangs up without answering."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                conn.recv(65536)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


def test_only_idempotent_requests_are_sent_again_after_a_hangup(attempts: list[str]) -> None:
    hangup = _Hangup()
    run, transition, _, _, _ = _records()
    try:
        connection = _connection.HttpConnection(hangup.url)
        with pytest.raises(InfrastructureError, match="did not answer"):
            connection.request("POST", f"/runs/{run.id}/rerun", doing="rerun", idempotent=False)
        assert attempts == ["POST"]  # it may have been applied: never sent twice
        connection.close()
        attempts.clear()
        with HttpMetadataStore(hangup.url) as store:
            # A write adds nothing when applied twice (see test_sql_store): sent again.
            with pytest.raises(InfrastructureError, match="did not answer"):
                store.write(runs=[run], transitions=[transition])
            assert attempts == ["POST"] * 3
            with pytest.raises(InfrastructureError, match="did not answer"):
                store.get_run(run.id)
            assert attempts == ["POST"] * 3 + ["GET"] * 3
    finally:
        hangup.close()
    assert hangup.accepted == 7


def test_a_bad_server_url_is_a_configuration_error() -> None:
    for url in ("localhost:5001", "ftp://host", "http://"):
        with pytest.raises(ConfigurationError, match="SEMATIC_SERVER_URL"):
            HttpMetadataStore(url)


def test_a_runs_log_is_sent_kept_replaced_and_read_back(keyed_server: Home) -> None:
    url = keyed_server.server.url
    run_id = "ab" * 16
    anonymous = HttpLogs(url)
    try:
        with pytest.raises(ConfigurationError, match="needs an API key"):
            anonymous.put(run_id, b"no key")
    finally:
        anonymous.close()
    logs = HttpLogs(url, KEY)
    try:
        logs.put(run_id, "first line\nsecond line é\n".encode())
        read = httpx.get(
            f"{url}/api/v1/runs/{run_id}/logs", headers={"Authorization": f"Bearer {KEY}"}
        )
        assert read.status_code == 200 and read.text == "first line\nsecond line é\n"
        logs.put(run_id, b"replaced\n")
        assert (keyed_server.home / "logs" / f"{run_id}.log").read_bytes() == b"replaced\n"
        logs.put(run_id, b"x" * (MAX_LOG_BYTES + 10) + b"THE END")  # too long: its end is kept
        kept = (keyed_server.home / "logs" / f"{run_id}.log").read_bytes()
        assert kept.startswith(b"[... the beginning was cut]") and kept.endswith(b"THE END")
        assert len(kept) <= MAX_LOG_BYTES
        with pytest.raises(StoreError, match="400"):
            logs.put("not-a-run", b"x")
    finally:
        logs.close()
    too_long = httpx.put(
        f"{url}/api/v1/runs/{run_id}/logs", content=b"y" * (MAX_LOG_BYTES + 1),
        headers={"Authorization": f"Bearer {KEY}", **BYTES},
    )  # fmt: skip
    assert too_long.status_code == 413 and "at most" in too_long.text, too_long.text
