"""Strict input: bad values are a 400 naming them, bodies are capped while they stream, and
nothing the server is sent (or finds in an old database) makes it answer 5xx."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sematic.core import wire
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import Server, server_env, start_server

JSON = {"Content-Type": "application/json"}
BYTES = {"Content-Type": "application/octet-stream"}
PAYLOAD_LIMIT = 1_000_000
TYPE_KEY = "sematic-artifact/1\njson\nbytes"


class Home:
    def __init__(self, server: Server, home: Path) -> None:
        self.server = server
        self.home = home
        self.client = httpx.Client(base_url=server.url + "/api/v1", timeout=30)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'db.sqlite3'}"

    def artifact_files(self) -> list[Path]:
        return sorted(p for p in (self.home / "artifacts").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    folder = tmp_path_factory.mktemp("inputs") / "home"
    folder.mkdir()
    server = start_server(folder, "--max-payload-bytes", str(PAYLOAD_LIMIT), env=server_env(folder))
    started = Home(server, folder)
    try:
        yield started
    finally:
        started.client.close()
        server.stop()


def _run_id() -> str:
    return hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]


def _run(**changes: Any) -> dict[str, Any]:
    run_id = _run_id()
    now = time.time()
    record = RunRecord(run_id, run_id, None, "f", "tests.f", "RESOLVED", now, now)
    return {**wire.run_json(record), **changes}


def _artifact(**changes: Any) -> dict[str, Any]:
    record = ArtifactRecord("ab" * 32, {"type_key": "k"}, 1, 1, time.time())
    return {**wire.artifact_json(record), **changes}


def _recorded(home: Home, run_id: str) -> bool:
    with SqlMetadataStore(home.database_url) as store:
        return bool(store.list_runs(limit=10_000)) and any(
            run.id == run_id for run in store.list_runs(limit=10_000)
        )


# Finding 4: non-finite floats never reach the store.


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"])
@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("runs.0.started_at", "runs[0].started_at"),
        ("runs.0.created_at", "runs[0].created_at"),
        ("transitions.0.at", "transitions[0].at"),
        ("artifacts.0.created_at", "artifacts[0].created_at"),
        ("artifacts.0.summary", "artifacts[0].summary"),
        ("artifacts.0.type_description.x", "artifacts[0].type_description.x"),
        ("runs.0.resource_requirements.cpu", "runs[0].resource_requirements.cpu"),
    ],
)
def test_a_non_finite_number_is_a_400_naming_the_field(
    home: Home, literal: str, path: str, where: str
) -> None:
    run = _run(resource_requirements={})
    batch = {
        "runs": [run],
        "transitions": [{"run_id": run["id"], "state": "RESOLVED", "at": 1.0}],
        "artifacts": [_artifact()],
    }
    *parents, last = path.split(".")
    target: Any = batch
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = "@@@"
    body = json.dumps(batch).replace('"@@@"', literal)
    response = home.client.post("/write", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert where in response.json()["error"]
    assert not _recorded(home, run["id"])


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("artifacts.0.size", 2**70, "artifacts[0].size"),
        ("artifacts.0.size", 2**63, "artifacts[0].size"),
        ("artifacts.0.summary", [1, 2**64], "artifacts[0].summary[1]"),
        ("artifacts.0.type_description.n", -(2**63) - 1, "artifacts[0].type_description.n"),
    ],
)
def test_an_integer_beyond_64_bits_is_a_400_naming_the_field(
    home: Home, path: str, value: int, where: str
) -> None:
    artifact = _artifact()
    *parents, last = path.split(".")[2:]
    target = artifact
    for part in parents:
        target = target[part]
    target[last] = value
    response = home.client.post("/write", json={"artifacts": [artifact]}, headers=JSON)
    assert response.status_code == 400, response.text
    assert where in response.json()["error"]


@pytest.mark.parametrize("description", [{}, {"type_key": 1}, {"type_key": None}])
def test_an_artifact_without_its_type_key_is_a_400(home: Home, description: dict[str, Any]) -> None:
    artifact = _artifact(type_description=description)
    response = home.client.post("/write", json={"artifacts": [artifact]}, headers=JSON)
    assert response.status_code == 400, response.text
    assert "artifacts[0].type_description.type_key" in response.json()["error"]


def test_the_largest_64_bit_size_is_accepted(home: Home) -> None:
    artifact = _artifact(id=hashlib.sha256(b"largest").hexdigest(), size=2**63 - 1)
    response = home.client.post("/write", json={"artifacts": [artifact]}, headers=JSON)
    assert response.status_code == 200, response.text


def test_rows_with_non_finite_numbers_from_an_older_version_are_served(home: Home) -> None:
    """Such rows are listed, shown and drawn with the numbers as null, never a 500."""
    run_id = _run_id()
    inf, nan = float("inf"), float("nan")
    artifact = ArtifactRecord(
        hashlib.sha256(b"old row").hexdigest(), {"type_key": "k", "x": inf}, [nan], 1, inf
    )
    run = RunRecord(
        run_id, run_id, None, "old", "tests.old", "RESOLVED", 1.0, inf,
        started_at=inf, ended_at=nan, output=artifact.id, resource_requirements={"cpu": -inf},
    )  # fmt: skip
    with SqlMetadataStore(home.database_url) as store:
        store.write(
            runs=[run],
            transitions=[TransitionRecord(run_id, "RESOLVED", -inf)],  # SQLite: NaN is NULL
            artifacts=[artifact],
            edges=[EdgeRecord(run_id, None, None, artifact.id)],
        )
    listed = home.client.get("/runs", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    (shown,) = [r for r in listed.json()["runs"] if r["id"] == run_id]
    assert shown["started_at"] is None and shown["ended_at"] is None
    detail = home.client.get(f"/runs/{run_id}")
    assert detail.status_code == 200, detail.text
    assert detail.json()["transitions"] == [{"state": "RESOLVED", "at": None}]
    graph = home.client.get(f"/runs/{run_id}/graph")
    assert graph.status_code == 200, graph.text
    (drawn,) = graph.json()["artifacts"]
    assert drawn["created_at"] is None and drawn["summary"] == [None]
    assert home.client.get(f"/artifacts/{artifact.id}").status_code == 200
    changed = home.client.get("/changed-runs", params={"since": 0})
    assert changed.status_code == 200, changed.text
    with home.client.stream("GET", "/events", params={"since": 0}) as events:
        assert events.status_code == 200
        for line in events.iter_lines():
            if line.startswith("data: "):
                json.loads(line.removeprefix("data: "))  # strict JSON: no Infinity
                break


# Finding 5: no 500 on bad input.


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/runs", {"offset": str(2**63)}, "offset"),
        ("/runs", {"offset": "-1"}, "offset"),
        ("/runs", {"offset": "1" * 5000}, "offset"),
        ("/runs", {"limit": "²"}, "limit"),
        ("/runs", {"limit": "1_0"}, "limit"),
        ("/runs", {"name": "a\0b"}, "name"),
        ("/runs", {"tag": "\0"}, "tag"),
        ("/runs", {"status": "nope"}, "status"),
        ("/runs", {"root_only": "maybe"}, "root_only"),
        ("/changed-runs", {"since": "0", "limit": "²"}, "limit"),
        ("/changed-runs", {"since": "0", "limit": str(2**64)}, "limit"),
        ("/changed-runs", {"since": "nan"}, "since"),
        ("/changed-runs", {"since": "inf"}, "since"),
        ("/changed-runs", {"since": "1e999"}, "since"),
        ("/changed-runs", {"since": "0", "root_id": "zz"}, "root_id"),
        ("/events", {"since": "Infinity"}, "since"),
        ("/events", {"root_id": "../x"}, "root_id"),
    ],
)
def test_a_bad_query_value_is_a_400_naming_it(
    home: Home, path: str, query: dict[str, str], name: str
) -> None:
    response = home.client.get(path, params=query)
    assert response.status_code == 400, response.text
    assert name in response.json()["error"]


def test_offsets_stop_at_ten_thousand_where_cursors_take_over(home: Home) -> None:
    response = home.client.get("/runs", params={"offset": "10000"})
    assert response.status_code == 200, response.text
    assert response.json()["runs"] == []
    for offset in ("10001", str(2**63 - 1)):
        response = home.client.get("/runs", params={"offset": offset})
        assert response.status_code == 400, response.text
        assert "offset" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["/runs/not-a-run", "/runs/not-a-run/graph", f"/runs/{'A' * 32}", "/artifacts/xyz"],
)
def test_a_bad_id_is_a_400_naming_it(home: Home, path: str) -> None:
    response = home.client.get(path)
    assert response.status_code == 400, response.text
    assert "id" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/runs/{run}/cancel"),
        ("POST", "/runs/{run}/rerun"),
        ("POST", "/write"),
        ("POST", "/artifacts/lookup"),
    ],
)
@pytest.mark.parametrize("body", [b"[" * 60_000, b'{"a":' * 12_000, b"[" * 100_000])
def test_deeply_nested_json_is_a_400(home: Home, method: str, path: str, body: bytes) -> None:
    response = home.client.request(method, path.format(run=_run_id()), content=body, headers=JSON)
    if len(body) > 64 * 1024 and "/runs/" in path:  # past the limit of cancel and rerun
        assert response.status_code == 413, response.text
    else:
        assert response.status_code == 400, response.text
        assert "nested deeper than 200 levels" in response.json()["error"]
    assert home.client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "body", [b'{"reason": NaN}', b'{"reason": 1e999}', b"[1]", b"\xff", b'{"reason": 5}']
)
def test_a_bad_cancel_body_is_a_400(home: Home, body: bytes) -> None:
    response = home.client.post(f"/runs/{_run_id()}/cancel", content=body, headers=JSON)
    assert response.status_code == 400, response.text


# Finding 6: size caps while streaming (chunked bodies too), payloads streamed.


def _endless(limit: int, chunk: bytes) -> Iterator[bytes]:
    """A chunked body well past ``limit`` (the server may read and drop what follows its
    answer: what matters is that it answers 413 and holds none of it)."""
    sent = 0
    while sent < limit + 32 * 1024 * 1024:
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize(
    ("method", "path", "headers", "limit"),
    [
        ("POST", "/runs/{run}/cancel", JSON, 64 * 1024),
        ("PUT", "/runs/{run}/logs", BYTES, 16 * 1024 * 1024),
        ("PUT", "/artifacts/{artifact}/payload", BYTES, PAYLOAD_LIMIT),
        ("POST", "/payloads", {"Content-Type": wire.PAYLOADS_TYPE}, 64 * 1024 * 1024),
    ],
)
def test_a_chunked_body_is_refused_once_past_the_limit(
    home: Home, method: str, path: str, headers: dict[str, str], limit: int
) -> None:
    url = path.format(run=_run_id(), artifact="cd" * 32)
    headers = {**headers, wire.TYPE_KEY_HEADER: quote(TYPE_KEY, safe="")}
    try:
        response = home.client.request(
            method, url, content=_endless(limit, b"[" * 65536), headers=headers
        )
    except httpx.WriteError:  # the server answered and closed while we were sending
        return
    assert response.status_code == 413, response.text
    assert f"{limit:,}" in response.json()["error"]
    assert not [p for p in home.artifact_files() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_chunked_write_is_refused_past_256_mib(home: Home) -> None:
    try:
        response = home.client.post(
            "/write", content=_endless(256 * 1024 * 1024, b" " * 1024 * 1024), headers=JSON
        )
    except httpx.WriteError:
        return
    assert response.status_code == 413, response.text
    assert "268,435,456" in response.json()["error"]


def _payload(size: int) -> tuple[str, bytes]:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    digest = hashlib.sha256(TYPE_KEY.encode() + b"\0" + payload).hexdigest()
    return digest, payload


def _chunks(payload: bytes, size: int = 70_000) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


def _upload(home: Home, artifact_id: str, body: Any) -> httpx.Response:
    headers = {**BYTES, wire.TYPE_KEY_HEADER: quote(TYPE_KEY, safe="")}
    return home.client.put(f"/artifacts/{artifact_id}/payload", content=body, headers=headers)


def test_a_chunked_payload_is_stored_once_checked(home: Home) -> None:
    artifact_id, payload = _payload(PAYLOAD_LIMIT)
    response = _upload(home, artifact_id, _chunks(payload))
    assert response.status_code == 200, response.text
    assert response.json() == {"artifact_id": artifact_id, "size": len(payload)}
    stored = home.home / "artifacts" / artifact_id[:2] / artifact_id
    assert stored.read_bytes() == payload
    assert home.client.get(f"/payloads/{artifact_id}").content == payload


def test_a_payload_that_does_not_match_its_id_leaves_nothing(home: Home) -> None:
    artifact_id, payload = _payload(300_000)
    before = home.artifact_files()
    response = _upload(home, artifact_id, _chunks(payload[:-1] + b"?"))
    assert response.status_code == 400 and "does not hash" in response.text
    assert home.artifact_files() == before
    assert home.client.head(f"/payloads/{artifact_id}").status_code == 404


def test_a_payload_over_the_limit_is_a_413_and_leaves_nothing(home: Home) -> None:
    artifact_id, payload = _payload(PAYLOAD_LIMIT + 1)
    before = home.artifact_files()
    for body in (payload, _chunks(payload)):  # with a Content-Length, and chunked
        try:
            response = _upload(home, artifact_id, body)
        except httpx.WriteError:
            continue
        assert response.status_code == 413, response.text
    assert home.artifact_files() == before


def test_an_upload_replaces_damaged_bytes(home: Home) -> None:
    artifact_id, payload = _payload(5000)
    assert _upload(home, artifact_id, payload).status_code == 200
    stored = home.home / "artifacts" / artifact_id[:2] / artifact_id
    stored.write_bytes(payload[:100])  # truncated on disk
    assert _upload(home, artifact_id, _chunks(payload, 999)).status_code == 200
    assert stored.read_bytes() == payload


def test_the_payload_limit_can_be_set_from_the_environment(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    folder.mkdir()
    server = start_server(folder, env=server_env(folder, SEMATIC_MAX_PAYLOAD_BYTES="100"))
    try:
        artifact_id, payload = _payload(101)
        headers = {**BYTES, wire.TYPE_KEY_HEADER: quote(TYPE_KEY, safe="")}
        response = httpx.put(
            f"{server.url}/api/v1/artifacts/{artifact_id}/payload", content=payload,
            headers=headers,
        )  # fmt: skip
        assert response.status_code == 413 and "100 bytes" in response.text
    finally:
        server.stop()


# A run's pods (``execution``): a shape the UI and `sematic runs` read, or a 400.
_ATTEMPT = {"job": "sematic-a-1", "pod": "p", "requests": {"cpu": "1"}, "started_at": 1.0,
            "finished_at": 2.0, "ended": "Succeeded", "exit_code": 0,
            "events": [{"at": 0.5, "reason": "Scheduled", "message": "assigned"}]}  # fmt: skip


def test_a_runs_pods_are_recorded_and_read_back(home: Home) -> None:
    execution = {"attempts": [_ATTEMPT], "usage": {"seconds": 1.0, "cpu_seconds": 1.0}}
    run = _run(execution=execution)
    response = home.client.post("/write", json={"runs": [run]}, headers=JSON)
    assert response.status_code == 200, response.text
    assert home.client.get(f"/runs/{run['id']}").json()["execution"] == execution


@pytest.mark.parametrize(
    ("execution", "where"),
    [
        ({"attempts": [{"pod": "p"}]}, "runs[0].execution.attempts[0].job"),
        ({"attempts": [dict(_ATTEMPT, exit_code="0")]}, "runs[0].execution.attempts[0].exit_code"),
        ({"attempts": [dict(_ATTEMPT, requests={"cpu": 1})]}, "runs[0].execution.attempts[0]"),
        ({"usage": {"cpu_seconds": -1.0}}, "runs[0].execution.usage.cpu_seconds"),
        ({"attempts": "many"}, "runs[0].execution.attempts"),
        ([], "runs[0].execution"),
    ],
)
def test_a_malformed_execution_is_a_400_naming_the_field(
    home: Home, execution: Any, where: str
) -> None:
    run = _run(execution=execution)
    response = home.client.post("/write", json={"runs": [run]}, headers=JSON)
    assert response.status_code == 400, response.text
    assert where in response.json()["error"]
    assert not _recorded(home, run["id"])
