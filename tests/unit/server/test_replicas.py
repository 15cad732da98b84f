"""Two real server processes over one database, as replicas behind a comma-separated
SEMATIC_SERVER_URL: a rolling restart (each replica stopped by SIGTERM and started again
on its port) while a pipeline runs through them loses no write and records nothing twice."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sematic import LocalResolver
from sematic.core.engine import TERMINAL
from sematic.core.records import RunRecord, TransitionRecord
from sematic.server.__main__ import GRACE_S
from sematic.storage.http import HttpMetadataStore
from sematic.storage.sql import SqlMetadataStore
from tests.harness.ports import free_port
from tests.pipelines import local
from tests.unit.server.conftest import Server, start_server


class Replicas:
    """Two keyless servers on fixed ports over one SEMATIC_HOME (one SQLite database)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ports = [free_port(), free_port()]
        self.servers: list[Server] = [self._start(port) for port in self.ports]
        self.restarts: list[float] = []

    @property
    def url(self) -> str:
        return ",".join(f"http://127.0.0.1:{port}" for port in self.ports)

    def _start(self, port: int) -> Server:
        return start_server(self.home, "--port", str(port))

    def restart(self, index: int) -> None:
        """What a rolling update does to one pod: SIGTERM, wait, start a new one."""
        began = time.monotonic()
        assert self.servers[index].stop() == 0
        self.servers[index] = self._start(self.ports[index])
        self.restarts.append(time.monotonic() - began)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replicas]:
    home = tmp_path / "server-home"
    home.mkdir()
    running = Replicas(home)
    monkeypatch.setenv("SEMATIC_SERVER_URL", running.url)
    try:
        yield running
    finally:
        running.stop()


def _database(replicas: Replicas) -> SqlMetadataStore:
    return SqlMetadataStore(f"sqlite:///{replicas.home / 'db.sqlite3'}")


def test_a_rolling_restart_during_a_pipeline_loses_no_write(
    replicas: Replicas, tmp_path: Path
) -> None:
    future = local.intervals(24, 0.25)
    errors: list[BaseException] = []
    rolled_at: list[float] = []

    def roll() -> None:
        try:
            time.sleep(1.0)
            replicas.restart(0)
            replicas.restart(1)
            rolled_at.append(time.time())
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    roller = threading.Thread(target=roll)
    roller.start()
    spans = future.resolve(LocalResolver(progress=False, max_parallelism=2))
    roller.join()
    assert not errors, errors
    assert len(spans) == 24

    with _database(replicas) as store:
        runs = store.runs_of_root(future.id)
        assert sum(run.name == "interval" for run in runs) == 24
        assert {run.state for run in runs} == {"RESOLVED"}
        ended_at = store.get_run(future.id).ended_at
        assert ended_at is not None and rolled_at[0] < ended_at, "restarted after the end"
        for run in runs:
            states = [t.state for t in store.transitions_of(run.id)]
            assert states.count("RESOLVED") == 1, (run.id, states)
            assert len(states) == len(set(states)), (run.id, states)  # none twice
            assert run.output is not None
    # Both replicas answer for the pipeline afterwards.
    for port in replicas.ports:
        graph = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs/{future.id}/graph", timeout=10)
        assert graph.status_code == 200
        assert len(graph.json()["runs"]) == len(runs)


def test_writes_go_to_the_other_replica_while_one_is_down(replicas: Replicas) -> None:
    written: list[str] = []
    with HttpMetadataStore(replicas.url) as store:
        for i in range(60):
            if i == 20:
                replicas.servers[0].stop()
            if i == 40:
                replicas.servers[0] = start_server(replicas.home, "--port", str(replicas.ports[0]))
                replicas.servers[1].stop()
            run_id = f"{i:032x}"
            now = time.time()
            record = RunRecord(
                id=run_id, root_id=run_id, parent_id=None, name="f", function_path="m.f",
                state="SCHEDULED", created_at=now, updated_at=now,  # type: ignore[arg-type]
            )  # fmt: skip
            store.write(runs=[record], transitions=[TransitionRecord(run_id, "SCHEDULED", now)])  # type: ignore[arg-type]
            written.append(run_id)
        replicas.servers[1] = start_server(replicas.home, "--port", str(replicas.ports[1]))
    with _database(replicas) as database:
        for run_id in written:
            assert database.get_run(run_id).state == "SCHEDULED"
            assert len(database.transitions_of(run_id)) == 1
        counts = Counter(run.state in TERMINAL for run in database.list_runs(limit=100))
        assert counts[False] == 60


def test_sigterm_ends_event_streams_at_once(tmp_path: Path) -> None:
    """A browser's open /events stream does not hold a replica's shutdown: the stream ends
    (the browser reconnects, to another replica) and the server exits 0 within seconds,
    not after its grace period for requests in flight."""
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home)
    try:
        with (
            httpx.Client(timeout=60) as client,
            client.stream("GET", f"{server.url}/api/v1/events") as stream,
        ):
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            for _ in lines:  # until the server closes the stream
                pass
            ended = time.monotonic() - began
        assert server.process.wait(timeout=60) == 0
        assert ended < GRACE_S / 2, f"the stream stayed open {ended:.1f} s after SIGTERM"
    finally:
        server.stop()
