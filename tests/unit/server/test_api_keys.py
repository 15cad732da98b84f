"""Named, per-user API keys on real server processes sharing one real PostgreSQL database.

Two ``python -m sematic.server`` processes (each on a free port of 127.0.0.1, each with the
bootstrap admin key from ``--api-key-env``) open the same database: a key made through
one is accepted by the other, and a key revoked through one is refused by both within a
second. Read-only keys read but never write; only admin keys manage keys; who submitted a
run is the user of the key that wrote it, never what the client claimed; no answer holds a
hash, and the database holds no plain key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, select

from sematic.core import wire
from sematic.core.records import RunRecord, TransitionRecord
from sematic.storage.http import HttpMetadataStore
from tests.harness.postgres import PostgresServer
from tests.unit.server.conftest import Server, server_env, start_server

ADMIN_KEY = "bootstrap-admin-key"
JSON = {"Content-Type": "application/json"}
LISTED = {"id", "user", "name", "role", "created_at", "revoked_at"}


@dataclass(frozen=True)
class Pair:
    """Two servers over one PostgreSQL database."""

    first: Server
    second: Server
    database_url: str

    @property
    def servers(self) -> tuple[Server, Server]:
        return self.first, self.second


def _client(server: Server, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=10)


def _status(server: Server, key: str, method: str = "GET", path: str = "/runs") -> int:
    with _client(server, key) as client:
        return client.request(method, path).status_code


@pytest.fixture(scope="module")
def pair(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    name = postgres_server.create_database()
    url = postgres_server.database_url(name)
    started: list[Server] = []
    try:
        for _ in range(2):
            home = tmp_path_factory.mktemp("keys") / "home"
            home.mkdir()
            env = server_env(home, SEMATIC_DATABASE_URL=url, ADMIN_KEY=ADMIN_KEY)
            started.append(start_server(home, "--api-key-env", "ADMIN_KEY", env=env))
        yield Pair(started[0], started[1], url)
    finally:
        for server in started:
            server.stop()
        postgres_server.drop_database(name)


def _create(server: Server, user: str, role: str, name: str = "") -> dict[str, Any]:
    with _client(server, ADMIN_KEY) as admin:
        response = admin.post("/keys", json={"user": user, "name": name, "role": role})
    assert response.status_code == 200, response.text
    made: dict[str, Any] = response.json()
    assert set(made) == LISTED | {"key"}
    return made


def _run(user_claim: str | None) -> tuple[RunRecord, TransitionRecord]:
    run_id = hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]
    now = time.time()
    run = RunRecord(
        run_id, run_id, None, "f", "tests.f", "CREATED", now, now, submitted_by=user_claim
    )
    return run, TransitionRecord(run_id, "CREATED", now)


def test_a_key_made_on_one_server_works_on_both_and_rotation_keeps_both_valid(
    pair: Pair,
) -> None:
    made = _create(pair.first, "alice", "write", "laptop")
    assert (made["user"], made["name"], made["role"], made["revoked_at"]) == (
        "alice",
        "laptop",
        "write",
        None,
    )
    for server in pair.servers:
        assert _status(server, made["key"]) == 200
        assert _status(server, "not-" + made["key"]) == 401

    with _client(pair.second, ADMIN_KEY) as admin:
        rotated = admin.post(f"/keys/{made['id']}/rotate").json()
    assert rotated["id"] != made["id"] and rotated["key"] != made["key"]
    assert (rotated["user"], rotated["role"]) == ("alice", "write")
    for server in pair.servers:  # during the rotation, both keys are valid
        assert _status(server, made["key"]) == 200
        assert _status(server, rotated["key"]) == 200


def test_a_revoked_key_is_refused_within_a_second_by_every_server(pair: Pair) -> None:
    made = _create(pair.first, "bob", "write")
    spare = _create(pair.second, "bob", "write", "spare")
    for server in pair.servers:
        assert _status(server, made["key"]) == 200
    with _client(pair.first, ADMIN_KEY) as admin:
        revoked = admin.post(f"/keys/{made['id']}/revoke")
    revoked_at = time.monotonic()
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused: dict[str, float] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < 1.0:
        for server in pair.servers:
            if server.url not in refused and _status(server, made["key"]) == 401:
                refused[server.url] = time.monotonic() - revoked_at
    assert set(refused) == {pair.first.url, pair.second.url}, refused
    assert max(refused.values()) < 1.0
    for server in pair.servers:  # the user's other key is untouched
        assert _status(server, spare["key"]) == 200
    with _client(pair.second, ADMIN_KEY) as admin:
        listed = {key["id"]: key for key in admin.get("/keys").json()["keys"]}
    assert listed[made["id"]]["revoked_at"] is not None
    assert listed[spare["id"]]["revoked_at"] is None


def test_a_read_only_key_reads_but_never_writes(pair: Pair) -> None:
    reader = _create(pair.first, "carol", "read")["key"]
    run, transition = _run(None)
    with _client(pair.second, reader) as client:
        assert client.get("/runs").status_code == 200
        assert client.post("/artifacts/lookup", json={"ids": []}).status_code == 200
        refused = [
            client.post("/write", content=wire.batch([run], [transition], [], []), headers=JSON),
            client.post(f"/runs/{run.id}/cancel", json={}),
            client.put(f"/runs/{run.id}/logs", content=b"x", headers={"Content-Type": "a/b"}),
            client.post("/keys", json={"user": "carol", "role": "admin"}),
        ]
        assert client.get(f"/runs/{run.id}").status_code == 404  # nothing was written
    for response in refused:
        assert response.status_code == 403, response.text
        assert "read-only" in response.json()["error"]
        assert "carol" in response.json()["error"]


def test_only_admin_keys_manage_keys(pair: Pair) -> None:
    writer = _create(pair.first, "dave", "write")
    reader = _create(pair.first, "dave", "read")
    admin = _create(pair.first, "erin", "admin")
    for key in (writer["key"], reader["key"]):
        with _client(pair.second, key) as client:
            answers = [
                client.get("/keys"),
                client.post(f"/keys/{writer['id']}/revoke"),
                client.post(f"/keys/{writer['id']}/rotate"),
            ]
            if key == writer["key"]:  # a read key is refused any POST already
                answers.append(client.post("/keys", json={"user": "dave", "role": "admin"}))
        for response in answers:
            assert response.status_code == 403, response.text
            assert "admin" in response.json()["error"]
    assert _status(pair.first, "", "GET", "/keys") == 401
    # A key made with the admin role manages keys too.
    with _client(pair.second, admin["key"]) as client:
        assert client.post(f"/keys/{writer['id']}/revoke").status_code == 200
    assert _status(pair.first, writer["key"]) == 401


def test_submitted_by_is_the_user_of_the_key_and_cannot_be_spoofed(pair: Pair) -> None:
    frank = _create(pair.first, "frank", "write")["key"]
    grace = _create(pair.first, "grace", "write")["key"]
    run, transition = _run("mallory")  # what the client claims is ignored
    with HttpMetadataStore(pair.first.url, frank) as store:
        store.write(runs=[run], transitions=[transition])
        assert store.get_run(run.id).submitted_by == "frank"
    # Another user writing the same run (a later state) does not take it over.
    later = dataclasses.replace(run, state="SCHEDULED", submitted_by="grace")
    with HttpMetadataStore(pair.second.url, grace) as store:
        store.write(runs=[later])
        stored = store.get_run(run.id)
        assert (stored.state, stored.submitted_by) == ("SCHEDULED", "frank")
        mine = store.list_runs(submitted_by="frank", root_only=True)
        assert [r.id for r in mine] == [run.id]
        assert store.count_runs(submitted_by="frank") == 1
        assert store.count_runs(submitted_by="mallory") == 0
        assert store.list_runs(submitted_by="grace") == []
    with _client(pair.first, frank) as client:
        page = client.get("/runs", params={"submitted_by": "frank"}).json()
    assert [r["submitted_by"] for r in page["runs"]] == ["frank"]


def test_no_answer_holds_a_hash_and_the_database_holds_no_key(pair: Pair) -> None:
    made = _create(pair.first, "heidi", "write")
    rotated = _create(pair.first, "heidi", "read")
    digests = [hashlib.sha256(k["key"].encode()).hexdigest() for k in (made, rotated)]
    with _client(pair.second, ADMIN_KEY) as admin:
        listing = admin.get("/keys")
        revoked = admin.post(f"/keys/{made['id']}/revoke")
    for response in (listing, revoked):
        assert response.status_code == 200
        for secret in (made["key"], rotated["key"], *digests):
            assert secret not in response.text
    assert all(set(key) == LISTED for key in listing.json()["keys"])

    # Every value of every row of every table, as text.
    engine = create_engine(pair.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        tables = MetaData()
        tables.reflect(engine)
        with engine.connect() as connection:
            cells = [
                str(value)
                for table in tables.sorted_tables
                for row in connection.execute(select(table))
                for value in row
            ]
    finally:
        engine.dispose()
    dump = "\n".join(cells)
    assert made["key"] not in dump and rotated["key"] not in dump
    assert all(digest in dump for digest in digests)  # what is kept: the sha256
    for server in pair.servers:  # nor do the servers log a key
        assert made["key"] not in server.output.read_text()


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("POST", "/keys", {"user": "", "role": "read"}, "user"),
        ("POST", "/keys", {"user": "x\ny", "role": "read"}, "user"),
        ("POST", "/keys", {"user": "x", "role": "root"}, "role"),
        ("POST", "/keys", {"user": "x", "name": 3}, "name"),
        ("POST", "/keys", {"user": "x", "owner": "y"}, "owner"),
        ("POST", "/keys", [1], "body"),
        ("POST", "/keys/not-an-id/revoke", None, "key_id"),
        ("POST", f"/keys/{'0' * 32}/revoke", {"x": 1}, "body"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    pair: Pair, method: str, path: str, body: Any, named: str
) -> None:
    with _client(pair.first, ADMIN_KEY) as admin:
        response = admin.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]


def test_unknown_key_ids_are_404(pair: Pair) -> None:
    with _client(pair.first, ADMIN_KEY) as admin:
        for action in ("revoke", "rotate"):
            response = admin.post(f"/keys/{'a' * 32}/{action}")
            assert response.status_code == 404
            assert "a" * 32 in response.json()["error"]


def test_a_keyless_server_has_no_keys_to_manage(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, env=server_env(home))
    try:
        with _client(server, None) as client:
            response = client.get("/keys")
        assert response.status_code == 409
        assert "--api-key-env" in response.json()["error"]
    finally:
        server.stop()
