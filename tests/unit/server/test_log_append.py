"""Logs appended to while a run runs (``PUT .../logs?offset=N``) and read from an offset
(``GET .../logs?offset=N``), on a real server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sematic.core.errors import ConfigurationError
from sematic.core.wire import MAX_LOG_BYTES
from sematic.server.app import MAX_LOG_APPEND_BYTES
from sematic.storage.http import HttpLogs, LogChunk
from tests.unit.server.conftest import Server, server_env, start_server

BYTES = {"Content-Type": "application/octet-stream"}
KEY = "log-append-key"


def _run_id() -> str:
    return hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("log-append") / "home"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    running = start_server(home)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as api:
        yield api


def _append(client: httpx.Client, run_id: str, offset: object, data: bytes) -> httpx.Response:
    return client.put(
        f"/runs/{run_id}/logs", params={"offset": offset}, content=data, headers=BYTES
    )


def test_chunks_are_appended_at_their_offset_and_read_from_an_offset(
    client: httpx.Client, home: Path
) -> None:
    run_id = _run_id()
    first = _append(client, run_id, 0, b"first\n")
    assert first.status_code == 200, first.text
    assert first.json()["size"] == 6 and first.headers["X-Log-Size"] == "6"
    assert _append(client, run_id, 6, "second é\n".encode()).json()["size"] == 16
    assert (home / "logs" / f"{run_id}.log").read_bytes() == "first\nsecond é\n".encode()
    assert client.get(f"/runs/{run_id}/logs").text == "first\nsecond é\n"
    tail = client.get(f"/runs/{run_id}/logs", params={"offset": 6})
    assert tail.status_code == 200
    assert tail.text == "second é\n" and tail.headers["X-Log-Size"] == "16"
    past = client.get(f"/runs/{run_id}/logs", params={"offset": 100})
    assert past.status_code == 200 and past.content == b"" and past.headers["X-Log-Size"] == "16"
    missing = client.get(f"/runs/{_run_id()}/logs", params={"offset": 0})
    assert missing.status_code == 404


def test_an_append_at_the_wrong_offset_is_a_409_with_the_size(client: httpx.Client) -> None:
    run_id = _run_id()
    _append(client, run_id, 0, b"abc")
    for offset in (0, 2, 4):
        conflict = _append(client, run_id, offset, b"abc")
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["size"] == 3 and conflict.headers["X-Log-Size"] == "3"
        assert "append at offset 3" in conflict.json()["error"]
    assert client.get(f"/runs/{run_id}/logs").content == b"abc"


@pytest.mark.parametrize("offset", ["-1", "x", "1.5", "٣", str(MAX_LOG_BYTES + 1), "9" * 30])
def test_a_bad_offset_is_a_400_naming_it(client: httpx.Client, offset: str) -> None:
    run_id = _run_id()
    appended = _append(client, run_id, offset, b"x")
    assert appended.status_code == 400, appended.text
    assert "offset" in appended.json()["error"]
    read = client.get(f"/runs/{run_id}/logs", params={"offset": offset})
    if offset != str(MAX_LOG_BYTES + 1):  # reading past the cap is only empty
        assert read.status_code == 400, read.text
        assert "offset" in read.json()["error"]


def test_a_bad_run_id_is_a_400(client: httpx.Client) -> None:
    for response in (
        _append(client, "not-a-run", 0, b"x"),
        client.get("/runs/not-a-run/logs", params={"offset": 0}),
    ):
        assert response.status_code == 400 and "run_id" in response.json()["error"]


def test_an_append_is_capped_per_request_and_in_total(client: httpx.Client) -> None:
    run_id = _run_id()
    too_large = _append(client, run_id, 0, b"x" * (MAX_LOG_APPEND_BYTES + 1))
    assert too_large.status_code == 413
    assert f"{MAX_LOG_APPEND_BYTES:,}" in too_large.json()["error"]
    past_total = _append(client, run_id, MAX_LOG_BYTES - 1, b"xy")
    assert past_total.status_code == 413 and f"{MAX_LOG_BYTES:,}" in past_total.json()["error"]
    assert client.get(f"/runs/{run_id}/logs").status_code == 404  # nothing was written


def test_the_client_appends_once_and_a_put_still_replaces(server: Server) -> None:
    run_id = _run_id()
    logs = HttpLogs(server.url)
    try:
        assert logs.get(run_id) is None and logs.read(run_id, 0) is None
        assert logs.append(run_id, 0, b"one\n") == 4
        assert logs.append(run_id, 0, b"one\n") == 4  # sent again: kept once
        assert logs.append(run_id, 4, b"two\n") == 8
        assert logs.append(run_id, 2, b"late\n") == 8  # not appended: the size says where
        assert logs.get(run_id) == b"one\ntwo\n"
        assert logs.get(run_id, offset=4) == b"two\n"
        assert logs.read(run_id, 4) == LogChunk(b"two\n", 8)
        logs.put(run_id, b"whole\n")  # the final, complete log
        assert logs.read(run_id, 8) == LogChunk(b"", 6)  # smaller: it was replaced
        assert logs.append(run_id, 6, b"more\n") == 11
        assert logs.get(run_id) == b"whole\nmore\n"
    finally:
        logs.close()


def test_appending_needs_a_key_on_a_keyed_server(tmp_path: Path) -> None:
    home = tmp_path / "keyed"
    home.mkdir()
    keyed = start_server(home, "--api-key-env", "K", env=server_env(home, K=KEY))
    run_id = _run_id()
    try:
        anonymous = HttpLogs(keyed.url)
        with pytest.raises(ConfigurationError, match="needs an API key"):
            anonymous.append(run_id, 0, b"x")
        anonymous.close()
        logs = HttpLogs(keyed.url, KEY)
        assert logs.append(run_id, 0, b"x") == 1
        assert logs.get(run_id, offset=0) == b"x"
        logs.close()
    finally:
        keyed.stop()
