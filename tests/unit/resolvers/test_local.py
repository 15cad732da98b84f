"""LocalResolver on real SQLite and real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sematic
from sematic import LocalResolver, PipelineFailedError
from sematic.core.errors import WorkerLostError
from sematic.resolvers.settings import LocalSettings
from tests.pipelines.local import (
    cached_pipeline,
    chatty,
    dies,
    executions,
    fails_inside,
    intervals,
    mixed,
    remote_nested,
    square,
)
from tests.unit.resolvers.conftest import recorded_runs, store


def test_default_resolve_records_the_whole_graph(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    future = mixed(2, witness)
    report = future.resolve()  # LocalResolver is the default
    assert report.total == 2 * (0 + 1)
    assert len(set(report.pids)) == 2 and os.getpid() not in report.pids

    metadata = store()
    try:
        runs = {run.id: run for run in metadata.runs_of_root(future.id)}
        root = runs[future.id]
        assert root.state == "RESOLVED" and root.parent_id is None
        assert root.function_path == "tests.pipelines.local.mixed"
        assert "Inline and worker steps" in (root.docstring or "")
        assert "def mixed" in (root.source_code or "")
        names = sorted(run.name for run in runs.values())
        assert names.count("square") == 2 and names.count("remote_square") == 2
        assert all(run.state == "RESOLVED" for run in runs.values())
        for run in runs.values():
            if run.id != future.id:
                assert run.parent_id == future.id
            assert run.output is not None
            metadata.get_artifact(run.output)
            assert [t.state for t in metadata.transitions_of(run.id)][-1] == "RESOLVED"
        remote = [run for run in runs.values() if run.name == "remote_square"]
        assert all(run.inline is False for run in remote)
        edges = metadata.edges_of_root(future.id)
        assert any(e.destination_run_id is None and e.source_run_id == future.id for e in edges)
        summarize = next(run for run in runs.values() if run.name == "summarize")
        assert set(summarize.inputs) == {"values", "pids"}
    finally:
        metadata.close()
    logs = [LocalSettings.from_environment().log_path(run.id) for run in remote]
    assert any("squaring" in path.read_text() for path in logs)


def test_worker_processes_run_in_parallel_up_to_the_limit(home: Path) -> None:
    spans = intervals(4, 0.6).resolve(LocalResolver(max_parallelism=2))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_cache_reuses_outputs_within_a_namespace(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    assert cached_pipeline(1, witness).resolve(LocalResolver()) == 1001
    second = cached_pipeline(1, witness)
    assert second.resolve(LocalResolver()) == 1001
    assert executions(witness, "expensive1") == 1
    metadata = store()
    try:
        hit = [r for r in metadata.runs_of_root(second.id) if r.name == "expensive"]
        assert hit[0].cache_hit is True and hit[0].cache_key
    finally:
        metadata.close()
    cached_pipeline(1, witness).resolve(LocalResolver(cache_namespace="other"))
    assert executions(witness, "expensive1") == 2
    cached_pipeline(1, witness).resolve(LocalResolver(cache_namespace=lambda root: "other"))
    assert executions(witness, "expensive1") == 2


def test_failures_are_recorded_and_raised(home: Path) -> None:
    future = fails_inside(3)
    with pytest.raises(PipelineFailedError) as caught:
        future.resolve(LocalResolver())
    cause = caught.value.__cause__
    assert isinstance(cause, ValueError) and str(cause) == "remote boom 3"
    assert any("Traceback in the worker process" in note for note in cause.__notes__)
    metadata = store()
    try:
        runs = {run.name: run for run in metadata.runs_of_root(future.id)}
        assert runs["remote_boom"].state == "FAILED"
        assert runs["remote_boom"].exception_type == "builtins.ValueError"
        assert "remote boom 3" in (runs["remote_boom"].traceback or "")
        assert runs["fails_inside"].state == "NESTED_FAILED"
        assert runs["square"].state == "CANCELED"
    finally:
        metadata.close()


def test_a_dead_worker_is_an_infrastructure_fault_retried_then_reported(home: Path) -> None:
    with pytest.raises(PipelineFailedError) as caught:
        dies(1).resolve(LocalResolver())
    assert isinstance(caught.value.__cause__, WorkerLostError)
    assert "exited with code 3" in str(caught.value.__cause__)


def test_a_worker_can_return_a_future(home: Path, tmp_path: Path) -> None:
    assert remote_nested(4, str(tmp_path / "w")).resolve(LocalResolver()) == 25


def _resolved_squares(root_id: str) -> bool:
    """Whether both quick steps are recorded as resolved (the recorder writes in batches)."""
    return [run.state for run in recorded_runs(root_id) if run.name == "square"] == ["RESOLVED"] * 2


SCRIPT = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.pipelines.local import resumable
    future = resumable(sys.argv[1], 60.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)


def test_resume_after_kill_9_does_not_redo_finished_steps(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, witness],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        assert process.stdout is not None
        root_id = process.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while not _resolved_squares(root_id) or executions(witness, "slow16") == 0:
            assert time.monotonic() < deadline, "the pipeline never reached its slow step"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    metadata = store()
    try:
        before = {run.id: run.state for run in metadata.runs_of_root(root_id)}
    finally:
        metadata.close()
    assert before[root_id] == "RAN"
    assert sorted(before.values()).count("RESOLVED") == 2  # square(2), square(4)

    # The slow step was in flight when the process died: it runs again, released at once.
    (Path(witness) / "release").touch()
    result = LocalResolver(progress=False).resume(root_id)
    assert result == 16
    assert executions(witness, "square2") == 1 and executions(witness, "square4") == 1
    metadata = store()
    try:
        after = metadata.runs_of_root(root_id)
    finally:
        metadata.close()
    assert sorted(run.id for run in after) == sorted(before)  # no duplicate rows
    assert all(run.state == "RESOLVED" for run in after)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(sematic.ConfigurationError, match="max_parallelism"):
        LocalResolver(max_parallelism=0)
    with pytest.raises(sematic.ConfigurationError, match="cache_namespace"):
        LocalResolver(cache_namespace=3)  # type: ignore[arg-type]


def test_inline_squares_record_values(home: Path, tmp_path: Path) -> None:
    assert square(3, str(tmp_path / "w")).resolve(LocalResolver()) == 9


def test_inline_output_is_captured_in_the_run_log_and_still_shown(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = chatty(5)
    assert future.resolve(LocalResolver(progress=False)) == 5
    shown = capsys.readouterr()
    assert "inline says 5" in shown.out and "inline warns 5" in shown.err
    log = LocalSettings.from_environment().log_path(future.id).read_text()
    assert "inline says 5" in log and "inline warns 5" in log
