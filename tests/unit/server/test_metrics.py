"""``GET /api/v1/metrics`` and ``--log-format json``, against real server processes.

The metrics are read as Prometheus reads them (``text_string_to_metric_families``) after
real writes: a pipeline resolved by a LocalResolver through the server, records and
payloads sent through the HTTP stores.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import sematic
from sematic import LocalResolver
from sematic.core.engine import TERMINAL, State
from sematic.core.records import RunRecord
from sematic.storage.http import HttpArtifactStore, HttpMetadataStore
from sematic.storage.sql import SqlMetadataStore
from tests.harness.ports import free_port
from tests.pipelines import api, local
from tests.unit.server.conftest import READY, ROOT, Server, server_env, start_server

KEY = "metrics-test-key"
SERVER = (sys.executable, "-m", "sematic.server")
SEMATIC = Path(sys.executable).with_name("sematic")  # the CLI, installed beside python
HEX_ID = re.compile(r"[0-9a-f]{32}")  # a run id, or part of an artifact id
LOG_FIELDS = {"timestamp", "level", "logger", "message"}
ACCESS_FIELDS = {"method", "path", "status", "duration_ms", "client"}


def _samples(text: str) -> dict[str, list[Sample]]:
    """Every sample of a scrape, by metric family name."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _scrape(server: Server, **headers: str) -> dict[str, list[Sample]]:
    answer = httpx.get(server.url + "/api/v1/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return _samples(answer.text)


def _artifact_bytes(samples: dict[str, list[Sample]]) -> float:
    (total,) = (
        s.value
        for s in samples["sematic_artifact_bytes_written"]
        if s.name == "sematic_artifact_bytes_written_total"
    )
    return total


def _requests(samples: dict[str, list[Sample]]) -> dict[tuple[str, str, str], float]:
    """Requests counted, by (method, route, status)."""
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in samples["sematic_http_request_duration_seconds"]
        if s.name.endswith("_count")
    }


def _scheduled_root(name: str) -> RunRecord:
    """A pipeline whose resolver is (supposedly) still running."""
    run_id = uuid.uuid4().hex
    now = time.time()
    return RunRecord(
        id=run_id,
        root_id=run_id,
        parent_id=None,
        name=name,
        function_path=f"tests.{name}",
        state=State.SCHEDULED,
        created_at=now,
        updated_at=now,
    )


def test_metrics_count_runs_requests_and_bytes_after_real_writes(
    served: Server, tmp_path: Path
) -> None:
    future = api.inline_and_workers(2, str(tmp_path / "witness"))
    assert future.resolve(LocalResolver(progress=False, max_parallelism=2)) == 11
    failing = local.fails_inside(1)
    with pytest.raises(sematic.PipelineFailedError):
        failing.resolve(LocalResolver(progress=False))
    with HttpMetadataStore(served.url) as store:
        store.write(runs=[_scheduled_root("still_running")])
    httpx.get(f"{served.url}/api/v1/runs/{future.id}").raise_for_status()
    assert httpx.get(f"{served.url}/api/v1/no-such-thing/{future.id}").status_code == 404

    samples = _scrape(served)

    with SqlMetadataStore(f"sqlite:///{tmp_path / 'server-home' / 'db.sqlite3'}") as sql:
        expected = {state.value: sql.count_runs(status=state.value) for state in State}
        active = sum(
            sql.count_runs(status=state.value, root_only=True)
            for state in State
            if state not in TERMINAL
        )
        recorded_bytes = sum(a.size for a in sql.get_artifacts(_artifact_ids(sql)))
    runs = {s.labels["state"]: s.value for s in samples["sematic_runs"]}
    assert runs == expected
    assert runs["RESOLVED"] > 0 and runs["FAILED"] > 0 and runs["SCHEDULED"] == 1
    assert samples["sematic_active_pipelines"][0].value == active == 1
    assert samples["sematic_metadata_store_up"][0].value == 1
    # Every payload recorded went through the server (some twice: workers and the resolver
    # may both upload one; each upload counts). Exact sums: the next test.
    assert _artifact_bytes(samples) >= recorded_bytes > 0

    requests = _requests(samples)
    routes = {route for _, route, _ in requests}
    assert ("POST", "/api/v1/write", "200") in requests
    assert ("GET", "/api/v1/runs/{run_id}", "200") in requests
    assert ("GET", "other", "404") in requests
    assert routes & {"/api/v1/payloads", "/api/v1/artifacts/{artifact_id}/payload"}
    assert not any(HEX_ID.search(label) for key in requests for label in key)
    assert all(route == "other" or route.startswith("/") for route in routes)


def _artifact_ids(store: SqlMetadataStore) -> list[str]:
    ids: set[str] = set()
    for root in store.list_runs(root_only=True, limit=100):
        for run in store.runs_of_root(root.id):
            ids.update(run.inputs.values())
            ids.update([run.output] if run.output else [])
        ids.update(edge.artifact_id for edge in store.edges_of_root(root.id))
    return sorted(ids)


def test_artifact_bytes_are_the_bytes_uploaded_singly_and_in_batches(served: Server) -> None:
    payloads = {f"type-{n}": bytes([n]) * (1000 * n + 7) for n in range(1, 6)}
    ids = {key: _artifact_id(key, payload) for key, payload in payloads.items()}
    with HttpArtifactStore(served.url) as store:
        first = "type-1"
        store.put(ids[first], payloads[first], type_key=first)
        rest = {ids[key]: payloads[key] for key in payloads if key != first}
        store.put_many(rest, type_keys={ids[key]: key for key in payloads if key != first})
    refused = httpx.put(
        f"{served.url}/api/v1/artifacts/{'0' * 64}/payload",
        content=b"not that",
        headers={"Content-Type": "application/octet-stream", "X-Sematic-Type-Key": "t"},
    )
    assert refused.status_code == 400  # not stored: not counted

    samples = _scrape(served)
    assert _artifact_bytes(samples) == sum(len(p) for p in payloads.values())
    requests = _requests(samples)
    assert requests[("PUT", "/api/v1/artifacts/{artifact_id}/payload", "200")] == 1
    assert requests[("PUT", "/api/v1/artifacts/{artifact_id}/payload", "400")] == 1
    assert requests[("POST", "/api/v1/payloads", "200")] == 1


def _artifact_id(type_key: str, payload: bytes) -> str:
    return hashlib.sha256(type_key.encode() + b"\0" + payload).hexdigest()


def test_with_a_key_the_metrics_need_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, "--api-key-env", "K", env=server_env(home, K=KEY))
    try:
        anonymous = httpx.get(server.url + "/api/v1/metrics")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(server.url + "/api/v1/metrics", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        samples = _scrape(server, Authorization=f"Bearer {KEY}")
        # The refusals were counted, under the route's template.
        assert _requests(samples)[("GET", "/api/v1/metrics", "401")] == 2
        assert {s.value for s in samples["sematic_runs"]} == {0}
    finally:
        server.stop()


def _start_logging(home: Path, command: Sequence[str], **env: str) -> tuple[Server, Path]:
    """A server started by ``COMMAND``, its stderr apart from its stdout."""
    out, err = home.parent / "server.out", home.parent / "server.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            list(command),
            stdout=stdout,
            stderr=stderr,
            env=server_env(home, **env),
            cwd=ROOT,
        )
    server = Server(url="", process=process, output=out)
    deadline = time.monotonic() + 20
    while not server.url and time.monotonic() < deadline:
        assert process.poll() is None, out.read_text() + err.read_text()
        for line in out.read_text().splitlines():
            if line.startswith(READY):
                server.url = line.removeprefix(READY).strip()
        time.sleep(0.02)
    if not server.url:
        server.stop()
        raise AssertionError(f"the server did not start: {err.read_text()}")
    return server, err


def _json_lines(stderr: Path) -> list[dict[str, Any]]:
    """Every line of ``stderr``, each parsed as JSON (failing on any that is not)."""
    records = [json.loads(line) for line in stderr.read_text().splitlines()]
    for record in records:
        assert set(record) >= LOG_FIELDS, record
    return records


def _exercise(server: Server, **headers: str) -> str:
    """A few requests; returns the path of one that was a 404."""
    missing = f"/api/v1/runs/{uuid.uuid4().hex}"
    with httpx.Client(base_url=server.url, headers=headers) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert client.get(missing).status_code == 404
        assert client.get("/api/v1/metrics").status_code == 200
    return missing


def test_json_logs_are_one_object_per_line_with_access_records(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    command = [*SERVER, "--port", "0", "--log-format", "json"]
    server, stderr = _start_logging(home, command)
    try:
        missing = _exercise(server)
    finally:
        assert server.stop() == 0
    records = _json_lines(stderr)
    access = [r for r in records if r["logger"] == "sematic.server.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("GET", "/api/v1/health", 200),
        ("GET", missing, 404),
        ("GET", "/api/v1/metrics", 200),
    ]
    for record in access:
        assert set(record) >= ACCESS_FIELDS
        assert record["level"] == "INFO"
        assert record["client"].startswith("127.0.0.1:")
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    own = [r["message"] for r in records if r["logger"].startswith("uvicorn")]
    assert any("Application startup complete" in message for message in own)
    assert any("Shutting down" in message for message in own)
    assert all(r["timestamp"].endswith("+00:00") for r in records)


def test_text_logs_stay_quiet_and_json_warnings_are_records(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server, stderr = _start_logging(home, [*SERVER, "--port", "0"])
    try:
        _exercise(server)
    finally:
        assert server.stop() == 0
    assert stderr.read_text() == ""  # text (the default): warnings and errors only

    url = "postgresql+psycopg://sematic:hunter2@127.0.0.1:1/runs"  # nothing listens on 1
    done = subprocess.run(
        [*SERVER, "--log-format", "json", "--database-url", url],
        capture_output=True,
        text=True,
        env=server_env(home),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    records = _json_lines_of(done.stderr)
    assert [r["level"] for r in records] == ["WARNING", "ERROR"]
    assert "holds a password" in records[0]["message"]
    assert "hunter2" not in done.stderr


def _json_lines_of(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    assert all(set(record) >= LOG_FIELDS for record in records)
    return records


def test_sematic_server_passes_the_log_format_on(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = str(free_port())
    command = [str(SEMATIC), "server", "--port", port, "--log-format", "json"]
    server, stderr = _start_logging(home, command, SEMATIC_API_KEY=KEY)
    try:
        _exercise(server, Authorization=f"Bearer {KEY}")
    finally:
        assert server.stop() == 0
    access = [r for r in _json_lines(stderr) if r["logger"] == "sematic.server.access"]
    assert [r["status"] for r in access] == [200, 404, 200]
