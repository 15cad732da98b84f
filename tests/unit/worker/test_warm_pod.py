"""A warm pod's steps (``sematic.worker.warm.run_step``), each in a process forked from the
pod's: real functions, a real artifact store on disk, real processes killed for real."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sematic.core.jobs import InputRef, WorkerJob
from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.serialization import deserialize, serialize
from sematic.worker.warm import run_step

STEPS = """
import os, time
import sematic

SEEN = []

@sematic.func(inline=False)
def remember(x: int) -> int:
    SEEN.append(x)
    print(f"seen {SEEN}")
    return len(SEEN)

@sematic.func(inline=False)
def fail(x: int) -> int:
    raise ValueError(f"bad {x}")

@sematic.func(inline=False)
def nap(x: int) -> int:
    time.sleep(x)
    return x

@sematic.func(inline=False)
def talk(x: int) -> int:
    print("first", flush=True)
    time.sleep(x)
    print("second", flush=True)
    return x

@sematic.func(inline=False)
def die(x: int) -> int:
    os.kill(os.getpid(), 9)
    return x
"""


@pytest.fixture
def steps(tmp_path: Path) -> tuple[Path, FsspecArtifactStore]:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "warmsteps.py").write_text(textwrap.dedent(STEPS))
    sys.path.insert(0, str(folder))
    yield folder, FsspecArtifactStore(str(tmp_path / "artifacts"))  # type: ignore[misc]
    sys.path.remove(str(folder))
    sys.modules.pop("warmsteps", None)


def _message(
    store: FsspecArtifactStore, name: str, x: int, run_id: str = "a" * 32, **job: Any
) -> dict[str, Any]:
    value = serialize(x, int)
    store.put(value.artifact_id, value.payload, type_key=value.type_description["type_key"])
    made = WorkerJob(
        run_id=run_id, root_id="b" * 32, function_path=f"warmsteps.{name}",
        inputs={"x": InputRef(value.artifact_id, value.type_description)},
        artifact_url=store.url, result_path="unused", **job,
    )  # fmt: skip
    return {"kind": "job", "ticket": f"t{time.monotonic_ns()}", "job": json.loads(made.to_json())}


def test_each_step_runs_in_a_fresh_process_and_sees_no_other_steps_state(
    steps: tuple[Path, FsspecArtifactStore], tmp_path: Path
) -> None:
    _, store = steps
    reports = [run_step(_message(store, "remember", x), None, tmp_path) for x in (1, 2)]
    for x, report in zip((1, 2), reports, strict=True):
        assert report["cause"] is None and report["exit_code"] == 0, report
        artifact = report["result"]["artifact"]
        assert deserialize(store.get(artifact["id"]), artifact["type_description"], int) == 1
        assert report["log"] == f"seen [{x}]\n"  # the step's own output, nothing else
        assert report["finished_at"] >= report["started_at"]
    assert "warmsteps" in sys.modules  # the pod imported the module once, for every step
    assert sys.modules["warmsteps"].SEEN == []  # and ran nothing of it here


def test_a_failing_step_reports_its_exception_with_the_pickle_in_the_store(
    steps: tuple[Path, FsspecArtifactStore], tmp_path: Path
) -> None:
    _, store = steps
    report = run_step(_message(store, "fail", 3), None, tmp_path)
    result = report["result"]
    assert result["kind"] == "failed" and result["exception_type"] == "builtins.ValueError"
    assert result["message"] == "bad 3" and "ValueError: bad 3" in report["log"]
    pickled = result["pickle_artifact"]  # the pod's files vanish: the pickle is stored
    assert store.get(pickled["id"])


def test_a_step_past_its_timeout_is_killed_and_reported_as_such(
    steps: tuple[Path, FsspecArtifactStore], tmp_path: Path
) -> None:
    _, store = steps
    began = time.monotonic()
    report = run_step(_message(store, "nap", 30, timeout_mins=0.01), None, tmp_path)
    assert time.monotonic() - began < 10
    assert report["cause"] == "DeadlineExceeded" and report["result"] is None
    assert report["exit_code"] == 137


def test_a_killed_step_is_reported_killed_and_the_pod_goes_on(
    steps: tuple[Path, FsspecArtifactStore], tmp_path: Path
) -> None:
    _, store = steps
    report = run_step(_message(store, "die", 1), None, tmp_path)
    assert (report["cause"], report["exit_code"]) == ("Killed", 137)  # no cgroup OOM here
    assert report["result"] is None
    after = run_step(_message(store, "remember", 5), None, tmp_path)
    assert after["cause"] is None and after["log"] == "seen [5]\n"
    assert not list(tmp_path.glob("t*"))  # each step's result and log files removed


def test_a_warm_pod_serves_its_channel_through_a_real_server_until_told_to_stop(
    steps: tuple[Path, FsspecArtifactStore], tmp_path: Path
) -> None:
    """The pod's loop (``serve``) against a real server's mailbox: steps in, reports out
    (with the live log shipped while a step runs), then ``stop``; an orphaned pod ends."""
    import threading

    from sematic.core.jobs import WarmPod
    from sematic.storage.http import HttpLogs
    from sematic.storage.http.mailbox import HttpMailbox
    from sematic.worker.warm import serve
    from tests.unit.server.conftest import start_server

    _, store = steps
    (tmp_path / "server").mkdir()
    server = start_server(tmp_path / "server" / "home")
    try:
        mailbox, logs = HttpMailbox(server.url), HttpLogs(server.url)
        pod = WarmPod(server_url=server.url, channel="warm/r/p/pod-0", results="warm/r/p/results")
        ended: list[int] = []
        serving = threading.Thread(target=lambda: ended.append(serve(pod, mailbox, logs.append)))
        serving.start()
        first = _message(store, "remember", 4)
        mailbox.post(pod.channel, first)
        mailbox.post(pod.channel, _message(store, "talk", 2, run_id="c" * 32))
        mailbox.post(pod.channel, _message(store, "fail", 5))
        reports: list[dict[str, Any]] = []
        cursor = 0
        deadline = time.monotonic() + 30
        while len(reports) < 3 and time.monotonic() < deadline:
            read = mailbox.read(pod.results, cursor, wait=5)
            cursor = read[-1][0] if read else cursor
            reports.extend(report for _, report in read)
        assert reports[0]["ticket"] == first["ticket"] and len(reports) == 3
        assert reports[0]["result"]["kind"] == "resolved" and reports[0]["log"] == "seen [4]\n"
        assert reports[1]["log"] == "first\nsecond\n"
        # While it slept, its first line reached its run's log on the server.
        assert (logs.get("c" * 32) or b"").startswith(b"first\n")
        assert reports[2]["result"]["kind"] == "failed"
        mailbox.post(pod.channel, {"kind": "stop"})
        serving.join(timeout=30)
        assert ended == [0]
        orphan = WarmPod(server_url=server.url, channel="warm/r/p/pod-1", results="x",
                         orphan_seconds=0.5)  # fmt: skip
        began = time.monotonic()
        assert serve(orphan, mailbox) == 0  # nothing heard: it ends on its own
        assert time.monotonic() - began < 10
        mailbox.close()
        logs.close()
    finally:
        server.stop()
