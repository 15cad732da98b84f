"""LocalResolver through a real API server (SEMATIC_SERVER_URL): the same records as SQL.

Each test starts ``python -m sematic.server`` over a SEMATIC_HOME of its own (the server's
database and artifact folder); the resolver's SEMATIC_HOME keeps only logs and job files.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import sematic
from sematic import LocalResolver
from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.core.records import RunRecord
from sematic.executors import processes
from sematic.resolvers.local import rebuild_pipeline
from sematic.resolvers.settings import LocalSettings
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.http import HttpMetadataStore
from sematic.storage.packed import PackedArtifactStore
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines import api, local
from tests.unit.server.conftest import Server, server_env, start_server

KEY = "api-writes-test-key"


def _settings(home: Path) -> LocalSettings:
    return LocalSettings(home, f"sqlite:///{home / 'db.sqlite3'}", str(home / "artifacts"))


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    path = tmp_path / "server-home"
    path.mkdir()
    return path


@pytest.fixture
def served(server_home: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server over ``server_home``; this process's resolvers write through it."""
    server = start_server(server_home)
    monkeypatch.setenv("SEMATIC_SERVER_URL", server.url)
    try:
        yield server
    finally:
        server.stop()


def _resolve(future: Future, settings: LocalSettings | None = None) -> Any:
    return future.resolve(LocalResolver(progress=False, max_parallelism=2, settings=settings))


def _snapshot(database: LocalSettings, root_id: str) -> dict[str, Any]:
    """What was recorded of one pipeline, with run ids replaced by stable labels."""
    with SqlMetadataStore(database.database_url) as store:
        payloads = PackedArtifactStore(
            FsspecArtifactStore(database.artifact_url), store.small_payloads(), 0
        )
        runs = store.runs_of_root(root_id)
        by_id = {run.id: run for run in runs}
        labels: dict[str, str] = {}

        def label(run_id: str | None) -> str | None:
            if run_id is None:
                return None
            if run_id not in labels:
                run = by_id[run_id]
                inputs = ",".join(f"{k}={v[:8]}" for k, v in sorted(run.inputs.items()))
                labels[run_id] = f"{label(run.parent_id) or ''}/{run.name}({inputs})"
            return labels[run_id]

        def described(run: RunRecord) -> tuple[Any, ...]:
            return (
                label(run.id),
                run.state,
                run.function_path,
                run.inline,
                run.cache_hit,
                run.cache_key,
                sorted(run.inputs.items()),
                run.output,
                label(run.nested_run_id),
                run.exception_type,
                run.exception_message,
                run.traceback is not None,
                run.tags,
                run.source_code,
                run.docstring,
                [t.state for t in store.transitions_of(run.id)],
            )

        edges = store.edges_of_root(root_id)
        ids = {e.artifact_id for e in edges} | {r.output for r in runs if r.output}
        return {
            "runs": sorted(described(run) for run in runs),
            "edges": sorted(
                (
                    label(e.source_run_id) or "",
                    label(e.destination_run_id) or "",
                    e.parameter or "",
                    e.artifact_id,
                )
                for e in edges
            ),
            "artifacts": [
                (a.id, a.type_description, a.summary, a.size) for a in store.get_artifacts(ids)
            ],
            # Packed in the database or in a file of their own (sematic.storage.packed).
            "payloads": sorted(i for i in ids if payloads.exists(i)),
        }


def test_a_pipeline_through_the_api_records_what_sql_records(
    served: Server, server_home: Path, home: Path, tmp_path: Path
) -> None:
    witness = str(tmp_path / "witness")
    direct = _settings(tmp_path / "direct-home")
    by_sql = api.inline_and_workers(2, witness)
    by_api = api.inline_and_workers(2, witness)
    assert _resolve(by_sql, direct) == _resolve(by_api) == 11

    expected = _snapshot(direct, by_sql.id)
    recorded = _snapshot(_settings(server_home), by_api.id)
    assert recorded == expected
    assert {run[1] for run in recorded["runs"]} == {"RESOLVED"}
    assert {run[3] for run in recorded["runs"]} == {True, False}  # inline and worker steps
    assert len(recorded["payloads"]) == len(recorded["artifacts"])
    # The resolver's home holds logs and job files only: nothing was written around the API.
    assert not (home / "db.sqlite3").exists()
    assert not (home / "artifacts").exists()
    assert (home / "logs").is_dir()


def test_a_failure_through_the_api_records_what_sql_records(
    served: Server, server_home: Path, tmp_path: Path
) -> None:
    direct = _settings(tmp_path / "direct-home")
    by_sql, by_api = local.fails_inside(1), local.fails_inside(1)
    for future, settings in ((by_sql, direct), (by_api, None)):
        with pytest.raises(sematic.PipelineFailedError, match="remote boom 1"):
            _resolve(future, settings)
    recorded = _snapshot(_settings(server_home), by_api.id)
    assert recorded == _snapshot(direct, by_sql.id)
    assert {run[1] for run in recorded["runs"]} == {"FAILED", "NESTED_FAILED", "CANCELED"}


def test_a_cache_hit_through_the_api(served: Server, server_home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "witness")
    first, second = local.cached_pipeline(3, witness), local.cached_pipeline(3, witness)
    assert _resolve(first) == _resolve(second) == 1003
    assert local.executions(witness, "expensive3") == 1
    with SqlMetadataStore(_settings(server_home).database_url) as store:
        hits = {run.name: run.cache_hit for run in store.runs_of_root(second.id)}
    assert hits == {"cached_pipeline": False, "expensive": True}

    direct = _settings(tmp_path / "direct-home")
    sql_first = local.cached_pipeline(3, witness)
    sql_second = local.cached_pipeline(3, witness)
    assert _resolve(sql_first, direct) == _resolve(sql_second, direct) == 1003
    assert _snapshot(_settings(server_home), second.id) == _snapshot(direct, sql_second.id)


def test_resume_and_rebuild_read_through_the_api(
    served: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    future = api.chain(3)
    assert _resolve(future) == 3
    assert LocalResolver(progress=False).resume(future.id) == 3
    rebuilt = rebuild_pipeline(future.id)
    assert rebuilt.function.dotted_path == future.function.dotted_path
    assert rebuilt.kwargs == {"n": 3}
    assert LocalResolver(progress=False, rerun_from=future.id).resolve(rebuilt) == 3


def _counting(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Counts the HTTP requests this process sends, by kind (method and route)."""
    counts: collections.Counter[str] = collections.Counter()
    original = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        parts = request.url.path.split("/")[3:]  # after /api/v1/
        route = "/".join("ID" if len(part) in (32, 64) else part for part in parts)
        counts[f"{request.method} {route}"] += 1
        return original(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    return counts


@pytest.mark.parametrize(("shape", "size"), [(api.chain, 40), (api.fan_out, 40)])
def test_a_step_costs_few_requests(
    served: Server, monkeypatch: pytest.MonkeyPatch, shape: Callable[[int], Future], size: int
) -> None:
    writes = collections.Counter[str]()
    original_write = HttpMetadataStore.write

    def write(self: HttpMetadataStore, **batch: Any) -> None:
        if any(batch.values()):
            writes["write"] += 1
        original_write(self, **batch)

    monkeypatch.setattr(HttpMetadataStore, "write", write)
    counts = _counting(monkeypatch)
    future = shape(size)
    _resolve(future)
    counts = collections.Counter(counts)  # the resolver's requests, not the ones below
    with HttpMetadataStore(served.url) as store:
        steps = len(store.runs_of_root(future.id))
    polls = counts.pop("GET runs/ID/cancel")  # the cancel watch: per second, not per step
    assert polls >= 1
    assert counts["POST write"] == writes["write"]  # one write(), one request
    assert set(counts) <= {"POST write", "POST payloads", "PUT artifacts/ID/payload"}
    # Each flush sends its new payloads in one request, then its metadata in one write:
    # at worst (one step per flush) two requests a step, usually far fewer.
    uploads = counts["POST payloads"] + counts["PUT artifacts/ID/payload"]
    assert uploads <= counts["POST write"]
    per_step = sum(counts.values()) / steps
    print(f"{shape.__name__}({size}): {steps} steps, {dict(counts)}, {per_step:.2f} per step")
    assert per_step <= 2


def test_an_api_key_server_needs_the_key(
    server_home: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(server_home, "--api-key-env", "K", env=server_env(server_home, K=KEY))
    try:
        monkeypatch.setenv("SEMATIC_SERVER_URL", server.url)
        for key in (None, "wrong-key"):
            if key is not None:
                monkeypatch.setenv("SEMATIC_API_KEY", key)
            with pytest.raises(ConfigurationError, match="SEMATIC_API_KEY") as caught:
                _resolve(api.chain(2))
            wanted = "needs an API key" if key is None else "rejected the API key"
            assert wanted in str(caught.value)
        with SqlMetadataStore(_settings(server_home).database_url) as store:
            assert store.count_runs() == 0
        assert not list((server_home / "artifacts").glob("*/*"))

        monkeypatch.setenv("SEMATIC_API_KEY", KEY)  # workers get it in their environment
        future = api.inline_and_workers(1, str(tmp_path / "w"))
        assert _resolve(future) == 4
        with SqlMetadataStore(_settings(server_home).database_url) as store:
            runs = store.runs_of_root(future.id)
        assert {run.state for run in runs} == {"RESOLVED"}
        assert {run.inline for run in runs} == {True, False}
    finally:
        server.stop()


def test_workers_never_see_the_key_in_their_job_file(
    server_home: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job file names the server; the key travels in the worker's environment only."""
    server = start_server(server_home, "--api-key-env", "K", env=server_env(server_home, K=KEY))
    seen: list[str] = []
    original = processes.write_private

    def write_private(path: Path, data: str | bytes) -> None:
        if path.suffix == ".job":
            seen.append(str(data))
        original(path, data)

    monkeypatch.setattr(processes, "write_private", write_private)
    try:
        settings = LocalSettings(home, "sqlite:///unused", "unused", server.url, KEY)
        assert "SEMATIC_API_KEY" not in os.environ
        future = local.remote_square(4, str(tmp_path / "w"))
        assert _resolve(future, settings) == 16
    finally:
        server.stop()
    assert seen
    assert all(server.url in job and KEY not in job for job in seen)
