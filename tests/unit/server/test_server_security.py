"""Downloads never leave the stores; server mode asks for the API key on every read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.unit.server.conftest import Recorded, Server, server_env, start_server

KEY = "s3cret-key-for-tests"
SECRET = "TOP-SECRET-CONTENT"


def _raw_get(url: str, path: str, headers: str = "") -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client normalizes it); returns status and body."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        host = f"Host: {parts.netloc}\r\n"
        request = f"GET {path} HTTP/1.1\r\n{host}{headers}Connection: close\r\n\r\n"
        conn.sendall(request.encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def planted(recorded: Recorded) -> Path:
    """Files a traversal would reach: next to the logs folder and the artifact folder."""
    for path in (
        recorded.home / "secret.log",
        recorded.home / "artifacts" / "secret",
        recorded.home / ("a" * 64),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SECRET)
    return recorded.home


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/artifacts/..%2F..%2Fetc%2Fpasswd/payload",
        "/api/v1/artifacts/../../../../etc/passwd/payload",
        "/api/v1/artifacts/%2Fetc%2Fpasswd/payload",
        "/api/v1/artifacts//etc/passwd/payload",
        "/api/v1/artifacts/..%2Fsecret/payload",
        "/api/v1/artifacts/..%2F..%2F" + "a" * 64 + "/payload",
        "/api/v1/artifacts/%2E%2E%2Fsecret/payload",
        "/api/v1/runs/..%2Fsecret/logs",
        "/api/v1/runs/..%2F..%2F..%2Fetc%2Fpasswd/logs",
        "/api/v1/runs/../secret/logs",
        "/api/v1/runs/%2Fetc%2Fpasswd/logs",
        "/api/v1/runs/..%2Fdb.sqlite3%00/logs",
    ],
)
def test_traversal_attempts_are_refused(server: Server, planted: Path, path: str) -> None:
    status, body = _raw_get(server.url, path)
    assert status in (400, 404)
    assert SECRET.encode() not in body
    assert b"root:" not in body


@pytest.fixture(scope="module")
def keyed(recorded: Recorded) -> Iterator[Server]:
    env = server_env(recorded.home, SEMATIC_TEST_API_KEY=KEY)
    running = start_server(recorded.home, "--api-key-env", "SEMATIC_TEST_API_KEY", env=env)
    try:
        yield running
    finally:
        running.stop()


def _protected(keyed: Server, recorded: Recorded) -> list[str]:
    """Every read: payloads and logs, and the records and summaries of values too."""
    bearer = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=keyed.url + "/api/v1", headers=bearer) as client:
        root = client.get(f"/runs/{recorded.mixed_root}").json()
        worker = client.get("/runs", params={"name": "remote_square", "limit": 1}).json()
    return [
        f"/artifacts/{root['output']}/payload",
        f"/runs/{worker['runs'][0]['id']}/logs",
        f"/artifacts/{root['output']}",
        f"/runs/{recorded.mixed_root}",
        f"/runs/{recorded.mixed_root}/graph",
        "/runs",
        f"/payloads/{root['output']}",
        f"/runs/{recorded.mixed_root}/cancel",
        f"/events?since=0&root_id={recorded.mixed_root}",
    ]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {KEY}", KEY, f"Bearer {KEY}x", "Bearer", f"bearer  {KEY} x"],
)
def test_api_key_mode_refuses_reads_without_the_key(
    keyed: Server, recorded: Recorded, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=keyed.url + "/api/v1", headers=headers) as client:
        for path in _protected(keyed, recorded):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "API key" in response.json()["error"]
            assert response.headers["www-authenticate"] == "Bearer"


def test_api_key_mode_serves_with_the_key(keyed: Server, recorded: Recorded) -> None:
    with httpx.Client(
        base_url=keyed.url + "/api/v1", headers={"Authorization": f"Bearer {KEY}"}
    ) as client:
        for path in _protected(keyed, recorded):
            if path.startswith("/events"):
                with client.stream("GET", path, timeout=10) as stream:
                    assert stream.status_code == 200, path
                    assert next(stream.iter_lines()) == "retry: 1000"
            else:
                assert client.get(path).status_code == 200, path
    with httpx.Client(base_url=keyed.url + "/api/v1") as anonymous:
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/nothing-here").status_code == 401
        assert httpx.get(keyed.url + "/").status_code == 200  # the UI's page asks for the key
        assert httpx.get(keyed.url + "/ui/api.js").status_code == 200


def test_without_a_key_nothing_asks_for_one(server: Server, recorded: Recorded) -> None:
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        for path in _protected(server, recorded):
            if not path.startswith("/events"):
                assert client.get(path).status_code == 200, path
