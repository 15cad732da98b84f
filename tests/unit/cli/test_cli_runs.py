"""`sematic runs` and `sematic logs`, read from the database a LocalResolver wrote."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from sematic import LocalResolver, PipelineFailedError
from sematic.cli.runs import format_duration
from sematic.core.records import RunRecord
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import chatty, fails_inside, three_steps
from tests.unit.cli.conftest import ROOT, SCRIPT, invoke, sematic


def test_runs_when_there_are_none(home: Path) -> None:
    result = invoke("runs")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No runs yet."


def test_runs_lists_root_runs_newest_first(home: Path, tmp_path: Path) -> None:
    first = three_steps(str(tmp_path / "w"))
    first.resolve(LocalResolver(progress=False))
    second = three_steps(str(tmp_path / "w"))
    second.resolve(LocalResolver(progress=False))

    lines = invoke("runs").stdout.strip().splitlines()
    assert lines[0].split() == ["id", "name", "state", "started", "duration", "reserved", "reason"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [second.id, "three_steps", "RESOLVED"],
        [first.id, "three_steps", "RESOLVED"],
    ]
    assert invoke("runs", "--limit", "1").stdout.count("three_steps") == 1


def test_runs_all_includes_the_steps(home: Path, tmp_path: Path) -> None:
    three_steps(str(tmp_path / "w")).resolve(LocalResolver(progress=False))
    names = [line.split()[1] for line in invoke("runs", "--all").stdout.splitlines()[1:]]
    assert sorted(names) == ["step_a", "step_b", "step_c", "three_steps"]


def test_runs_says_why_a_run_failed(home: Path) -> None:
    future = fails_inside(4)
    with pytest.raises(PipelineFailedError):
        future.resolve(LocalResolver(progress=False))
    rows = {line.split()[1]: line for line in invoke("runs", "--all").stdout.splitlines()[1:]}
    assert "ValueError: remote boom 4" in rows["remote_boom"]
    assert rows["remote_boom"].split()[2] == "FAILED"
    assert rows["fails_inside"].split()[2] == "NESTED_FAILED"
    assert "remote boom" not in rows["fails_inside"]  # the reason is on the step that failed


def test_runs_refuses_a_bad_limit(home: Path) -> None:
    assert invoke("runs", "--limit", "0").exit_code == 2


def test_format_duration() -> None:
    assert format_duration(1.234) == "1.2s"
    assert format_duration(125) == "2m 05s"
    assert format_duration(3 * 3600 + 60) == "3h 01m"


def test_logs_prints_what_the_run_printed(home: Path) -> None:
    future = chatty(3)
    future.resolve(LocalResolver(progress=False))
    result = invoke("logs", future.id)
    assert result.exit_code == 0
    assert "inline says 3" in result.stdout
    assert "inline warns 3" in result.stdout


def test_logs_of_a_silent_run_says_so(home: Path, tmp_path: Path) -> None:
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    result = invoke("logs", future.id)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "has printed nothing; state RESOLVED" in result.stderr


def test_logs_follow_of_a_finished_run_returns_at_once(home: Path) -> None:
    future = chatty(4)
    future.resolve(LocalResolver(progress=False))
    started = time.monotonic()
    result = invoke("logs", future.id, "--follow")
    assert result.exit_code == 0
    assert "inline says 4" in result.stdout
    assert time.monotonic() - started < 2


FOLLOWED = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.unit.cli.pipelines import talks
    future = talks(sys.argv[1], 60.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The lines of ``stream`` as a helper thread reads them; None at its end, where the
    thread closes it."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        with stream:
            for line in stream:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue[str | None], timeout: float, what: str) -> str:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"{what} printed no line within {timeout} s")
    assert line is not None, f"{what} ended without printing a line"
    return line.rstrip("\n")


def _stop(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` (by its PID) if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_logs_follow_prints_until_the_run_ends(home: Path, tmp_path: Path) -> None:
    """The follower prints the run's first line, and then its second one, which the run
    printed only after that: so it was still following (no fixed sleep decides this)."""
    witness = tmp_path / "w"
    pipeline = subprocess.Popen(
        [sys.executable, "-c", FOLLOWED, str(witness)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    follower: subprocess.Popen[str] | None = None
    try:
        assert pipeline.stdout is not None
        run_id = _next_line(_lines(pipeline.stdout), 60, "the pipeline").strip()
        deadline = time.monotonic() + 30
        with SqlMetadataStore(LocalSettings.from_environment().database_url) as metadata:
            while not any(r.id == run_id for r in metadata.list_runs()):
                assert time.monotonic() < deadline, "the run was never recorded"
                time.sleep(0.05)
        errors = tmp_path / "follower.err"
        with errors.open("w") as err:
            follower = subprocess.Popen(
                [str(SCRIPT), "logs", run_id, "--follow"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert follower.stdout is not None
        out = _lines(follower.stdout)
        # However long the CLI takes to start, its first line comes while the run waits.
        first = _next_line(out, 60, "sematic logs --follow")
        assert first == "before the wait", errors.read_text()
        assert not (witness / "release").exists()
        assert follower.poll() is None  # still following: the run is not over
        (witness / "release").touch()
        second = _next_line(out, 60, "sematic logs --follow, after the release,")
        assert second == "after the wait", errors.read_text()
        assert out.get(timeout=60) is None  # and then it ends, with the run
        assert follower.wait(timeout=30) == 0, errors.read_text()
    finally:
        (witness / "release").parent.mkdir(parents=True, exist_ok=True)
        (witness / "release").touch()
        if follower is not None:
            _stop(follower)
        try:
            pipeline.wait(timeout=30)
        finally:
            _stop(pipeline)


def test_logs_of_an_unknown_run_via_the_script(home: Path) -> None:
    done = sematic("logs", "nope")
    assert done.returncode == 1
    assert done.stderr.startswith("error: No run with id 'nope'")
    assert len(done.stderr.splitlines()) == 1


def test_runs_sums_a_big_pipelines_pods_without_mixing_pipelines(home: Path) -> None:
    """A pipeline of 5,000 runs, 1,250 of them in pods (more than one page of them), and a
    smaller one: each row sums its own pipeline's pods."""
    pod = {"usage": {"seconds": 1.0, "cpu_seconds": 2.0, "memory_gib_seconds": 4.0}}

    def pipeline(root: int, size: int, every: int, at: float) -> list[RunRecord]:
        root_id = f"{root:032x}"
        return [
            RunRecord(
                id=f"{root + i:032x}",
                root_id=root_id,
                parent_id=None if i == 0 else root_id,
                name="big" if i == 0 and size > 100 else ("small" if i == 0 else "step"),
                function_path="module.step",
                state="RESOLVED",
                created_at=at + i // 10,  # ten runs a second: equal times across pages
                updated_at=at + i // 10,
                execution=pod if i % every == 1 else None,
            )
            for i in range(size)
        ]

    with SqlMetadataStore(LocalSettings.from_environment().database_url) as metadata:
        metadata.write(runs=pipeline(1 << 40, 5_000, 4, 1000.0))
        metadata.write(runs=pipeline(2 << 40, 50, 5, 9000.0))
        in_pods = metadata.count_runs(root_id=f"{1 << 40:032x}", in_pods=True)
    assert in_pods > 1_000
    result = invoke("runs")
    assert result.exit_code == 0
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"big", "small"}
    assert f"{2.0 * in_pods:.1f} cpu·s, {4.0 * in_pods:.1f} GiB·s, 0 GPU·s" in rows["big"]
    assert "20.0 cpu·s, 40.0 GiB·s, 0 GPU·s" in rows["small"]
