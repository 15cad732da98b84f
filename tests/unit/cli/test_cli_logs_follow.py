"""`sematic logs RUN --follow` through a Sematic server: the log grows on the server (as a
pod's does, appended by its resolver) while the run runs, and a little after it ended."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sematic.core.engine import State
from sematic.core.records import RunRecord, TransitionRecord
from sematic.storage.http import HttpLogs, HttpMetadataStore
from tests.unit.cli.conftest import ROOT, SCRIPT
from tests.unit.cli.test_cli_runs import _lines, _next_line, _stop
from tests.unit.server.conftest import Server, start_server


@pytest.fixture
def server(tmp_path: Path, home: Path) -> Iterator[Server]:
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    running = start_server(server_home)
    try:
        yield running
    finally:
        running.stop()


def _running_run(server: Server) -> RunRecord:
    now = time.time()
    run_id = hashlib.sha256(f"{time.monotonic_ns()}".encode()).hexdigest()[:32]
    run = RunRecord(
        id=run_id,
        root_id=run_id,
        parent_id=None,
        name="in_a_pod",
        function_path="tests.in_a_pod",
        state=State.SCHEDULED,
        created_at=now,
        updated_at=now,
        started_at=now,
    )
    with HttpMetadataStore(server.url) as store:
        store.write(runs=[run], transitions=[TransitionRecord(run_id, State.SCHEDULED, now)])
    return run


def _end(server: Server, run: RunRecord) -> None:
    now = time.time()
    ended = dataclasses.replace(
        run,
        state=State.FAILED,
        updated_at=now,
        ended_at=now,
        exception_type="ValueError",
        exception_message="done",
    )
    with HttpMetadataStore(server.url) as store:
        store.write(runs=[ended], transitions=[TransitionRecord(run.id, State.FAILED, now)])


def _follow(server: Server, home: Path, run_id: str, errors: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEMATIC_SERVER_URL": server.url}
    with errors.open("w") as err:
        return subprocess.Popen(
            [str(SCRIPT), "logs", run_id, "--follow"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def test_follow_prints_what_is_appended_until_the_run_ended(
    server: Server, home: Path, tmp_path: Path
) -> None:
    run = _running_run(server)
    logs = HttpLogs(server.url)
    errors = tmp_path / "follower.err"
    follower = _follow(server, home, run.id, errors)
    try:
        assert follower.stdout is not None
        out = _lines(follower.stdout)
        assert logs.append(run.id, 0, b"first line\n") == 11
        assert _next_line(out, 60, "sematic logs --follow") == "first line", errors.read_text()
        assert follower.poll() is None  # the run is not over: still following
        assert logs.append(run.id, 11, "second é".encode()) == 20  # half a line
        assert logs.append(run.id, 20, b"\n") == 21
        assert _next_line(out, 30, "the follower") == "second é"
        _end(server, run)
        assert logs.append(run.id, 21, b"last line\n") == 31  # right after the end
        assert _next_line(out, 30, "the follower, after the end,") == "last line"
        assert out.get(timeout=30) is None, errors.read_text()  # and then it ends
        assert follower.wait(timeout=30) == 0, errors.read_text()
    finally:
        logs.close()
        _stop(follower)


def test_ctrl_c_stops_following_without_a_traceback(
    server: Server, home: Path, tmp_path: Path
) -> None:
    run = _running_run(server)
    errors = tmp_path / "follower.err"
    follower = _follow(server, home, run.id, errors)
    try:
        assert follower.stdout is not None
        out = _lines(follower.stdout)
        logs = HttpLogs(server.url)
        logs.append(run.id, 0, b"started\n")
        logs.close()
        assert _next_line(out, 60, "sematic logs --follow") == "started"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 130
        assert "Traceback" not in errors.read_text(), errors.read_text()
    finally:
        _stop(follower)
