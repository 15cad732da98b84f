"""`sematic cancel`, and following the logs of a pipeline whose resolver was killed."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import three_steps
from tests.unit.cli.conftest import ROOT, invoke, sematic

PIPELINE = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.pipelines.local import waits_remotely
    future = waits_remotely(sys.argv[1], 120.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)


def _states(root_id: str) -> dict[str, str]:
    with SqlMetadataStore(LocalSettings.from_environment().database_url) as metadata:
        return {run.name: run.state for run in metadata.runs_of_root(root_id)}


@dataclass(frozen=True)
class Running:
    process: subprocess.Popen[str]
    root_id: str
    worker_pid: int


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _first_line(stream: IO[str], timeout: float) -> str:
    """The first line ``stream`` gives, read in a helper thread; fails after ``timeout`` s."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"the pipeline printed no line within {timeout} s")


def _stop_worker(pid: int | None) -> None:
    """The kernel kills the worker with its resolver; if it is still there, kill it here."""
    if pid is None:
        return
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def running(home: Path, tmp_path: Path) -> Iterator[Running]:
    """A pipeline resolving in another process, its worker started.

    Whatever happens (the pipeline never starts, a test fails), the pipeline's process and
    its worker are stopped afterwards, by their PIDs.
    """
    witness = tmp_path / "w"
    process = subprocess.Popen(
        [sys.executable, "-c", PIPELINE, str(witness)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker_pid: int | None = None
    try:
        assert process.stdout is not None
        root_id = _first_line(process.stdout, 60).strip()
        assert root_id, "the pipeline exited before printing its root run's id"
        deadline = time.monotonic() + 60
        while not list(witness.glob("remote_wait.*")) or "remote_wait" not in _states(root_id):
            assert process.poll() is None, f"the pipeline exited ({process.returncode})"
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.05)
        worker_pid = int(next(witness.glob("remote_wait.*")).read_text())
        yield Running(process, root_id, worker_pid)
    finally:
        if process.poll() is None:
            process.kill()
        _stop_worker(worker_pid)
        process.communicate(timeout=30)


def test_cancel_stops_a_running_pipeline(running: Running) -> None:
    process, root_id = running.process, running.root_id
    done = sematic("cancel", root_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"waits_remotely ({root_id}): cancel requested",
        f"waits_remotely ({root_id}): CANCELED",
    ]
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "PipelineCanceledError" in stderr and "canceled with `sematic cancel`" in stderr
    assert set(_states(root_id).values()) == {"CANCELED"}


def test_a_killed_resolver_ends_logs_follow_and_cancel_marks_its_runs(
    running: Running,
) -> None:
    process, root_id, worker_pid = running.process, running.root_id, running.worker_pid
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(worker_pid):  # the kernel kills the worker with its resolver
        assert time.monotonic() < deadline, "the worker outlived its killed resolver"
        time.sleep(0.05)

    follow = sematic("logs", root_id, "--follow")
    assert follow.returncode == 1
    assert "the process resolving this pipeline was killed" in follow.stderr
    assert f"sematic cancel --force {root_id}" in follow.stderr

    done = sematic("cancel", root_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"waits_remotely ({root_id}): 2 unfinished runs marked CANCELED"
    assert set(_states(root_id).values()) == {"CANCELED"}


def test_cancel_of_a_finished_pipeline_is_one_line(home: Path, tmp_path: Path) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    done = sematic("cancel", future.id)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: pipeline three_steps (root run {future.id}) already finished: it is RESOLVED"
    )
    assert invoke("cancel", "--help").exit_code == 0


def test_rerun_with_a_chosen_root_id(home: Path, tmp_path: Path) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    new_root = "ab" * 16
    done = sematic("rerun", future.id, "--root-id", new_root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"new root run: {new_root}"
    assert set(_states(new_root).values()) == {"RESOLVED"}
    bad = sematic("rerun", future.id, "--root-id", "../x")
    assert bad.returncode == 1
    assert "--root-id takes 32 lowercase hex digits" in bad.stderr
