"""The server's trust boundary (issue 14, findings 1-3), against real server processes.

1. The server parses JSON only: an audit hook in the server process records every
   ``pickle.find_class`` and every import of the user's modules while a pickled input is
   planted and a rerun of its pipeline is asked for. Keyless, the rerun runs in a process
   of its own (the pickle is loaded there); with a key, the rerun is refused (409).
2. Keyless, only requests addressed to this machine's names, from its own pages or from
   programs, with a JSON (or declared binary) body get through: a web page's "simple"
   cross-site requests change nothing.
3. With a key, every read needs it (``test_server_security`` covers each endpoint).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sematic.core import wire
from sematic.core.records import ArtifactRecord, RunRecord, TransitionRecord
from sematic.server import guard
from sematic.storage.serialization import serialize
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import Server, server_env, start_server

KEY = "trust-test-key"
EVIL_TYPE_KEY = "sematic-artifact/1\npickle\nbuiltins.int"  # as in the issue
JSON = {"Content-Type": "application/json"}

# The server, with an audit hook that logs what must never happen in it.
AUDITED = textwrap.dedent(
    """
    import sys
    audit = open(sys.argv[1], "a", buffering=1)
    def hook(event, args):
        if event == "pickle.find_class":
            audit.write(f"pickle.find_class {args[0]}.{args[1]}\\n")
        elif event == "import" and args[0].startswith(("tests", "sematic.server")):
            audit.write(f"import {args[0]}\\n")
    sys.addaudithook(hook)
    from sematic.server.__main__ import main
    sys.exit(main(sys.argv[2:]))
    """
)


class _Pid:
    """Unpickles into the PID of the process that unpickles it (as in the issue)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.getpid, ())


def _audited(home: Path, audit: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    return start_server(home, *args, env=env, command=("-c", AUDITED, str(audit)))


def _plant(
    api: httpx.Client, witness: Path, function_path: str = "tests.pipelines.local.square"
) -> str:
    """Finding 1's attack, the first two requests: a pickle payload, then an artifact record
    naming it and a root run of an importable @sematic.func whose input it is. The root
    run's id."""
    payload = pickle.dumps(_Pid())
    evil = hashlib.sha256(EVIL_TYPE_KEY.encode() + b"\0" + payload).hexdigest()
    put = api.put(
        f"/artifacts/{evil}/payload",
        content=payload,
        headers={
            "Content-Type": "application/octet-stream",
            wire.TYPE_KEY_HEADER: EVIL_TYPE_KEY.replace("\n", "%0A"),
        },
    )
    assert put.status_code == 200, put.text
    folder = serialize(str(witness), str)
    stored = api.put(
        f"/artifacts/{folder.artifact_id}/payload",
        content=folder.payload,
        headers={
            "Content-Type": "application/octet-stream",
            wire.TYPE_KEY_HEADER: folder.type_description["type_key"].replace("\n", "%0A"),
        },
    )
    assert stored.status_code == 200, stored.text
    now = time.time()
    root = hashlib.sha256(f"root {now}".encode()).hexdigest()[:32]
    run = RunRecord(
        id=root,
        root_id=root,
        parent_id=None,
        name="square",
        function_path=function_path,
        state="RESOLVED",
        created_at=now,
        updated_at=now,
        inputs={"x": evil, "witness": folder.artifact_id},
    )
    artifacts = [
        ArtifactRecord(
            id=evil,
            type_description={"kind": "pickle", "type": "int", "type_key": EVIL_TYPE_KEY},
            summary=1,
            size=len(payload),
            created_at=now,
        ),
        folder.to_record(now),
    ]
    body = wire.batch([run], [TransitionRecord(root, "RESOLVED", now)], artifacts, [])
    written = api.post("/write", content=body, headers=JSON)
    assert written.status_code == 200, written.text
    return root


def _wait_finished(api: httpx.Client, root_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        response = api.get(f"/runs/{root_id}")
        if response.status_code == 200 and response.json()["state"] in (
            "RESOLVED",
            "FAILED",
            "CANCELED",
        ):
            found: dict[str, Any] = response.json()
            return found
        assert time.monotonic() < deadline, f"the rerun {root_id} never finished"
        time.sleep(0.1)


def _audit_of(server: Server, audit: Path) -> list[str]:
    lines = audit.read_text().splitlines()
    assert "import sematic.server.app" in lines, "the audit hook did not run"
    return [line for line in lines if not line.startswith("import sematic.server")]


# Finding 1: no unpickling, no user code in the server process ----------------------------


def test_keyless_rerun_runs_the_pipeline_in_another_process(tmp_path: Path) -> None:
    home, audit, witness = tmp_path / "home", tmp_path / "audit.log", tmp_path / "witness"
    witness.mkdir()
    server = _audited(home, audit)
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as api:
            root = _plant(api, witness)
            rerun = api.post(f"/runs/{root}/rerun", json={"from_run_id": None})
            assert rerun.status_code == 202, rerun.text
            new_root = rerun.json()["root_id"]
            finished = _wait_finished(api, new_root)
    finally:
        server.stop()
    assert _audit_of(server, audit) == []  # no pickle loaded, no user module imported
    assert finished["state"] == "RESOLVED", (home / "logs" / f"rerun-{new_root}.log").read_text()
    # The pickle became the PID of the process that loaded it, which ran the step too:
    # the rerun's own process, not the server.
    (mark,) = witness.glob("square*")
    loaded_by, ran_in = mark.name.removeprefix("square").split(".")[:2]
    assert loaded_by == ran_in != str(server.process.pid)


def test_a_keyless_rerun_that_cannot_start_shows_why_on_its_new_root(tmp_path: Path) -> None:
    """The server answers 202 at once without importing anything; when the rerun's own
    process cannot import the pipeline, the new root is recorded FAILED saying why."""
    home, audit, witness = tmp_path / "home", tmp_path / "audit.log", tmp_path / "witness"
    witness.mkdir()
    server = _audited(home, audit)
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as api:
            root = _plant(api, witness, "tests.pipelines.no_such_module.square")
            rerun = api.post(f"/runs/{root}/rerun", json={"from_run_id": None})
            assert rerun.status_code == 202, rerun.text
            new_root = rerun.json()["root_id"]
            finished = _wait_finished(api, new_root)
    finally:
        server.stop()
    assert _audit_of(server, audit) == []
    assert finished["state"] == "FAILED"
    assert finished["inputs"] == api_inputs(home, root)
    assert "could not start" in finished["exception_message"]
    assert "tests.pipelines.no_such_module" in finished["exception_message"]


def api_inputs(home: Path, root: str) -> dict[str, str]:
    """The recorded inputs of ``root``, read from the store the server used."""
    with SqlMetadataStore(f"sqlite:///{home / 'db.sqlite3'}") as metadata:
        return dict(metadata.get_run(root).inputs)


def test_server_mode_refuses_reruns_and_loads_nothing(tmp_path: Path) -> None:
    home, audit, witness = tmp_path / "home", tmp_path / "audit.log", tmp_path / "witness"
    env = server_env(home, TRUST_KEY=KEY)
    server = _audited(home, audit, "--api-key-env", "TRUST_KEY", env=env)
    bearer = {"Authorization": f"Bearer {KEY}"}
    try:
        with httpx.Client(base_url=server.url + "/api/v1", headers=bearer, timeout=30) as api:
            root = _plant(api, witness)
            rerun = api.post(f"/runs/{root}/rerun", json={"from_run_id": None})
            assert rerun.status_code == 409
            assert f"`sematic rerun {root}`" in rerun.json()["error"]
            partial = api.post(f"/runs/{root}/rerun", json={"from_run_id": root})
            assert partial.status_code == 409
            assert f"`sematic rerun {root} --from {root}`" in partial.json()["error"]
            assert api.get("/runs", params={"name": "square"}).json()["total"] == 1
    finally:
        server.stop()
    assert _audit_of(server, audit) == []
    assert not list((home / "logs").glob("rerun-*"))


def test_server_mode_with_a_cluster_reruns_only_what_a_driver_job_ran(tmp_path: Path) -> None:
    """With ``--kubeconfig``, a rerun is a driver Job on the pipeline's recorded image. A
    pipeline no driver Job ran (no image recorded) is refused before the cluster is asked,
    naming the CLI command; the server loads nothing either way. (The Job itself is tested
    on the local cluster: tests/kubernetes/test_secrets_and_reaper.py.)"""
    home, audit, witness = tmp_path / "home", tmp_path / "audit.log", tmp_path / "witness"
    env = server_env(home, TRUST_KEY=KEY)
    missing = str(tmp_path / "no-such-kubeconfig")
    server = _audited(home, audit, "--api-key-env", "TRUST_KEY", "--kubeconfig", missing, env=env)
    bearer = {"Authorization": f"Bearer {KEY}"}
    try:
        with httpx.Client(base_url=server.url + "/api/v1", headers=bearer, timeout=30) as api:
            root = _plant(api, witness)
            rerun = api.post(f"/runs/{root}/rerun", json={"from_run_id": None})
            assert rerun.status_code == 409
            error = rerun.json()["error"]
            assert "not resolved by a driver Job" in error
            assert f"`sematic rerun {root}`" in error
    finally:
        server.stop()
    assert _audit_of(server, audit) == []
    assert "sematic reaper:" in server.output.read_text()  # the cluster is out of reach


# Finding 2: keyless, a web page cannot reach the server ---------------------------------


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("keyless") / "home"
    home.mkdir()
    server = start_server(home, "--allowed-host", "Sematic.Internal")
    try:
        yield server
    finally:
        server.stop()


def _port(server: Server) -> str:
    return server.url.rpartition(":")[2]


def test_simple_cross_site_requests_change_nothing(keyless: Server, tmp_path: Path) -> None:
    """Finding 2's attack: the three requests as a web page elsewhere can send them."""
    payload = pickle.dumps(_Pid())
    evil = hashlib.sha256(EVIL_TYPE_KEY.encode() + b"\0" + payload).hexdigest()
    now = time.time()
    root = "f" * 32
    run = RunRecord(
        root, root, None, "square", "tests.pipelines.local.square", "RESOLVED", now, now
    )
    batch = wire.batch([run], [], [], [])
    foreign = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    type_header = {wire.TYPE_KEY_HEADER: EVIL_TYPE_KEY.replace("\n", "%0A")}
    with httpx.Client(base_url=keyless.url + "/api/v1", timeout=10) as api:
        answers = [
            api.put(f"/artifacts/{evil}/payload", content=payload, headers=foreign | type_header),
            api.post("/write", content=batch, headers=foreign),
            api.post(f"/runs/{root}/rerun", content=b"{}", headers=foreign),
            api.post(f"/runs/{root}/cancel", content=b"", headers={"Origin": "null"}),
            # A foreign origin with the right type (needs a CORS preflight): still refused.
            api.post("/write", content=batch, headers={**JSON, "Origin": "http://evil.example"}),
            api.post("/write", content=batch, headers={**JSON, "Origin": "http://127.0.0.1:1"}),
        ]
        assert [answer.status_code for answer in answers] == [403] * 6
        assert "origin" in answers[1].json()["error"]
        # No Origin (a program, not a page): the content type is still required.
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            answer = api.post("/write", content=batch, headers={"Content-Type": kind})
            assert answer.status_code == 415
            assert "application/json" in answer.json()["error"]
        untyped = api.put(f"/artifacts/{evil}/payload", content=payload, headers=type_header)
        assert untyped.status_code == 415
        assert "application/octet-stream" in untyped.json()["error"]
        assert api.get(f"/runs/{root}").status_code == 404
        assert api.get(f"/payloads/{evil}").status_code == 404
        # The UI's own requests: same origin, JSON.
        own = {**JSON, "Origin": keyless.url}
        assert api.post(f"/runs/{root}/cancel", json={}, headers=own).status_code == 404


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST", 200),
        ("[::1]:{port}", 200),
        ("sematic.internal:{port}", 200),  # --allowed-host, any case
        ("evil.example", 421),
        ("evil.example:{port}", 421),
        ("127.0.0.1.evil.example:{port}", 421),
        ("localhost.:{port}", 421),
        ("[::2]:{port}", 421),
        ("", 421),
    ],
)
def test_keyless_answers_only_its_own_host_names(keyless: Server, host: str, status: int) -> None:
    """DNS rebinding: a page whose name now points at 127.0.0.1 still sends its name."""
    headers = {"Host": host.format(port=_port(keyless))}
    response = httpx.get(keyless.url + "/api/v1/runs", headers=headers, timeout=10)
    assert response.status_code == status
    if status == 421:
        assert "--allowed-host" in response.json()["error"]
        page = httpx.get(keyless.url + "/", headers=headers, timeout=10)
        assert page.status_code == 421  # the UI's pages too


def test_a_repeated_host_header_is_refused(keyless: Server) -> None:
    port = int(_port(keyless))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"GET /api/v1/runs HTTP/1.1\r\nHost: evil.example\r\n"
            + f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.split()[1] in (b"400", b"421")


def test_the_project_clients_send_the_types_the_guard_wants(keyless: Server) -> None:
    from sematic.storage.http import HttpLogs, open_http_stores

    payload = b"log line\n"
    logs = HttpLogs(keyless.url)
    try:
        logs.put("a" * 32, payload)
        assert logs.get("a" * 32) == payload
    finally:
        logs.close()
    metadata, artifacts = open_http_stores(keyless.url)
    try:
        values = {v.artifact_id: v for v in (serialize(n, int) for n in (1, 2))}
        keys = {i: v.type_description["type_key"] for i, v in values.items()}
        artifacts.put_many({i: v.payload for i, v in values.items()}, type_keys=keys)  # batch
        assert all(artifacts.exists(i) for i in values)
        now = time.time()
        metadata.write(artifacts=[v.to_record(now) for v in values.values()])  # JSON
        assert len(metadata.get_artifacts(list(values))) == 2
    finally:
        metadata.close()


# The decision itself -------------------------------------------------------------------


_POLICY = guard.Policy(
    api_key=KEY,
    allowed_hosts=guard.local_hosts("10.0.0.5", ["[fd00::1]", "Build.Example"]),
    public=frozenset({"/api/v1/health"}),
    body_types=(guard.BodyType("PUT", re.compile(r"/api/v1/bytes"), frozenset({"b/b"})),),
)
_OK = {"host": "127.0.0.1:5001", "authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/v1/runs", {}, None),
        ("GET", "/api/v1/runs", {"host": "10.0.0.5"}, None),
        ("GET", "/api/v1/runs", {"host": "[fd00::1]:80"}, None),
        ("GET", "/api/v1/runs", {"host": "build.example:1"}, None),
        ("GET", "/api/v1/runs", {"host": "10.0.0.6"}, 421),
        ("GET", "/api/v1/runs", {"host": "[::1"}, 421),
        ("GET", "/api/v1/runs", {"host": "localhost:x"}, 421),
        ("GET", "/api/v1/runs", {"authorization": ""}, 401),
        ("GET", "/api/v1/runs", {"authorization": f"Basic {KEY}"}, 401),
        ("GET", "/api/v1/health", {"authorization": ""}, None),
        ("GET", "/", {"authorization": ""}, None),  # the UI's files
        ("POST", "/api/v1/x", {"origin": "http://127.0.0.1:5001"}, None),
        ("POST", "/api/v1/x", {"origin": "http://127.0.0.1:5002"}, 403),
        ("POST", "/api/v1/x", {"origin": "http://127.0.0.1"}, 403),
        ("DELETE", "/api/v1/x", {"origin": "file://"}, 403),
        ("GET", "/api/v1/x", {"origin": "http://evil.example"}, None),  # reads: CORS does it
        ("POST", "/api/v1/x", {"content-length": "2"}, 415),
        ("POST", "/api/v1/x", {"transfer-encoding": "chunked"}, 415),
        ("POST", "/api/v1/x", {"content-length": "2", "content-type": "text/plain"}, 415),
        ("POST", "/api/v1/x", {"content-length": "2", "content-type": "application/json"}, None),
        ("PUT", "/api/v1/x", {"content-length": "2", "content-type": "Application/JSON; x"}, None),
        ("PUT", "/api/v1/bytes", {"content-length": "2", "content-type": "application/json"}, 415),
        ("PUT", "/api/v1/bytes", {"content-length": "2", "content-type": "b/b"}, None),
        ("POST", "/api/v1/x", {"content-length": "0"}, None),
        ("POST", "/api/v1/x", {}, None),
    ],
)
def test_the_guard_decides(
    method: str, path: str, headers: dict[str, str], status: int | None
) -> None:
    refused = guard.refusal(_POLICY, method, path, {**_OK, **headers})
    assert (refused and refused.status) == status


def test_a_keyed_server_without_allowed_hosts_checks_the_key_only() -> None:
    policy = guard.Policy(api_key=KEY)
    anywhere = {"host": "sematic.example.com", "origin": "https://sematic.example.com"}
    assert guard.refusal(policy, "POST", "/api/v1/x", anywhere) is not None  # no key
    keyed = {**anywhere, "authorization": f"Bearer {KEY}", "origin": "https://proxy.example"}
    assert guard.refusal(policy, "POST", "/api/v1/x", keyed) is None
