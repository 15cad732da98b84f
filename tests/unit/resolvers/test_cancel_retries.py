"""CancelWatch and a failing metadata store: each error counted and logged, the watch backs
off, recovers when the store does, and gives up with an InfrastructureError after a bound.

The stores are real: a SQLite database whose table is renamed away under the store (and
back), and a Sematic server that is stopped (connection refused).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.core.errors import InfrastructureError
from sematic.resolvers import scheduler
from sematic.resolvers.cancel import CancelWatch
from sematic.storage.http import HttpMetadataStore, _connection
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import waits_remotely
from tests.unit.server.conftest import start_server

ROOT_ID = "c" * 32
LOGGER = "sematic.resolvers.cancel"


def _when(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


@pytest.fixture
def store(database: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{database}") as metadata:
        yield metadata


def _rename(database: Path, old: str, new: str) -> None:
    """Rename a table of the database behind the store's back (another connection)."""
    with sqlite3.connect(database) as connection:
        connection.execute(f"ALTER TABLE {old} RENAME TO {new}")
    connection.close()


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_a_healthy_store_is_watched_silently_as_before(
    store: SqlMetadataStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    reasons: list[str] = []
    watch = CancelWatch(store, ROOT_ID, reasons.append, interval=0.01)
    time.sleep(0.1)
    assert watch.reason is None
    store.request_cancel(ROOT_ID, "stop it")
    _when(lambda: reasons == ["stop it"], "the cancel")
    watch.stop()
    assert watch.reason == "stop it"
    assert (watch.failures, watch.failure) == (0, None)
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_store_errors_are_counted_and_logged_and_the_watch_recovers(
    store: SqlMetadataStore, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    reasons: list[str] = []
    watch = CancelWatch(
        store, ROOT_ID, reasons.append, interval=0.01, max_failures=1000, max_backoff=0.05
    )
    _rename(database, "cancel_requests", "cancel_requests_away")
    _when(lambda: watch.failures >= 3, "three failures in a row")
    _rename(database, "cancel_requests_away", "cancel_requests")
    store.request_cancel(ROOT_ID, "stop it")
    _when(lambda: reasons == ["stop it"], "the cancel after the store came back")
    watch.stop()

    assert watch.reason == "stop it"
    assert (watch.failures, watch.failure) == (0, None)
    warnings = _records(caplog, logging.WARNING)
    failures = [m for m in warnings if m.startswith("cannot read the cancel requests")]
    assert len(failures) >= 3
    assert "(failure 1 of 1000 in a row" in failures[0]
    assert "no such table" in failures[0]
    assert ROOT_ID in failures[0]
    assert warnings[-1].startswith(f"read the cancel requests of pipeline {ROOT_ID} again after")
    assert _records(caplog, logging.ERROR) == []


def test_the_watch_backs_off_while_the_store_fails(
    store: SqlMetadataStore, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    watch = CancelWatch(
        store, ROOT_ID, lambda _: None, interval=0.05, max_failures=1000, max_backoff=0.4
    )
    _rename(database, "cancel_requests", "cancel_requests_away")
    _when(lambda: watch.failures >= 4, "four failures in a row")
    watch.stop()
    failures = _records(caplog, logging.WARNING)
    waits = [float(m.split("asking again in ")[1].split(" s)")[0]) for m in failures[:4]]
    assert waits == [0.1, 0.2, 0.4, 0.4]


def test_a_watch_gives_up_after_a_bound_with_an_infrastructure_error(
    store: SqlMetadataStore, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    called: list[str] = []
    watch = CancelWatch(store, ROOT_ID, called.append, interval=0.01, max_failures=3)
    _rename(database, "cancel_requests", "cancel_requests_away")
    _when(lambda: watch.failure is not None, "the watch to give up")
    watch.stop()  # its thread has ended: this returns at once

    with pytest.raises(InfrastructureError, match="failed 3 times in a row") as raised:
        _ = watch.reason
    assert ROOT_ID in str(raised.value)
    assert "no such table" in str(raised.value)
    assert "reachable" in str(raised.value)  # says what to check
    assert raised.value.__cause__ is not None
    assert called == []  # giving up is not a cancel
    assert len(_records(caplog, logging.WARNING)) == 2
    assert _records(caplog, logging.ERROR) == [str(raised.value)]


def test_a_watch_on_a_stopped_server_gives_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    # Each request would wait up to 20 s for a restarting server; the watch's own count of
    # failures is what is tested here.
    monkeypatch.setattr(_connection, "RETRY_FOR_S", 0.5)
    home = tmp_path / "server-home"
    home.mkdir()
    server = start_server(home)
    try:
        with HttpMetadataStore(server.url) as metadata:
            watch = CancelWatch(metadata, ROOT_ID, lambda _: None, interval=0.01, max_failures=2)
            server.stop()
            _when(lambda: watch.failure is not None, "the watch to give up")
            watch.stop()
    finally:
        server.stop()
    with pytest.raises(InfrastructureError, match="failed 2 times in a row") as raised:
        _ = watch.reason
    assert "cannot be reached" in str(raised.value)
    assert isinstance(raised.value.__cause__, InfrastructureError)
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert server.url in warnings[0]


def test_a_resolver_whose_watch_gives_up_fails_with_the_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor polls ``reason``: the InfrastructureError ends the resolution (and its
    worker) instead of a pipeline that can no longer be canceled running on."""
    quick = functools.partial(CancelWatch, interval=0.01, max_failures=2)
    monkeypatch.setattr(scheduler, "CancelWatch", quick)
    witness = tmp_path / "w"
    future = waits_remotely(str(witness), 120.0)
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            future.resolve(LocalResolver(progress=False))
        except BaseException as error:  # noqa: BLE001 - the test reads it
            errors.append(error)

    thread = threading.Thread(target=resolve)
    thread.start()
    _when(lambda: bool(list(witness.glob("remote_wait.*"))), "the worker to start", 60)
    worker_pid = int(next(witness.glob("remote_wait.*")).read_text())
    _rename(home / "db.sqlite3", "cancel_requests", "cancel_requests_away")
    thread.join(60)
    assert not thread.is_alive(), "the resolver did not stop"

    assert len(errors) == 1
    assert isinstance(errors[0], InfrastructureError)
    assert "gave up watching for a request to cancel pipeline" in str(errors[0])
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
