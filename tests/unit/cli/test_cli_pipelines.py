"""`sematic run SCRIPT` and `sematic rerun RUN_ID [--from RUN_ID]`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import executions, three_steps
from tests.unit.cli.conftest import invoke, sematic


def _ids_by_name(root_id: str) -> dict[str, str]:
    with SqlMetadataStore(LocalSettings.from_environment().database_url) as metadata:
        return {run.name: run.id for run in metadata.runs_of_root(root_id)}


@pytest.fixture
def resolved(home: Path, tmp_path: Path) -> tuple[str, str]:
    """A resolved three_steps pipeline: its root id and its witness folder."""
    witness = str(tmp_path / "w")
    future = three_steps(witness)
    assert future.resolve(LocalResolver(progress=False)) == 111
    return future.id, witness


def test_rerun_executes_the_whole_pipeline_again(resolved: tuple[str, str]) -> None:
    root_id, witness = resolved
    result = invoke("rerun", root_id)
    assert result.exit_code == 0, result.stderr
    new_line, value = result.stdout.strip().splitlines()
    new_root = new_line.removeprefix("new root run: ")
    assert new_root != root_id
    assert value == "111"
    assert [executions(witness, s) for s in ("step_a", "step_b", "step_c")] == [2, 2, 2]
    assert set(_ids_by_name(new_root)) == {"three_steps", "step_a", "step_b", "step_c"}


def test_rerun_from_a_step_reuses_what_is_upstream(resolved: tuple[str, str]) -> None:
    root_id, witness = resolved
    step_b = _ids_by_name(root_id)["step_b"]
    result = invoke("rerun", root_id, "--from", step_b)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("111")
    assert [executions(witness, s) for s in ("step_a", "step_b", "step_c")] == [1, 2, 2]


def test_rerun_of_a_step_id_reruns_its_pipeline(resolved: tuple[str, str]) -> None:
    root_id, witness = resolved
    result = invoke("rerun", _ids_by_name(root_id)["step_c"])
    assert result.exit_code == 0, result.stderr
    assert executions(witness, "step_a") == 2


def test_rerun_errors_are_one_line(resolved: tuple[str, str], tmp_path: Path) -> None:
    root_id, _ = resolved
    unknown = invoke("rerun", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: No run with id 'nope'")

    other = three_steps(str(tmp_path / "other"))
    other.resolve(LocalResolver(progress=False))
    foreign = invoke("rerun", root_id, "--from", other.id)
    assert foreign.exit_code == 1
    assert foreign.stderr == f"error: run {other.id} is not part of the pipeline {root_id}\n"


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import helper  # next to the script: its folder is on sys.path
    Path(sys.argv[1]).write_text(repr(sys.argv[1:]) + " " + __name__ + " " + helper.NAME)
    """
)


def test_run_executes_a_script_as_main(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "scripts" / "job.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    (script.parent / "helper.py").write_text("NAME = 'helper'\n")
    out = tmp_path / "out.txt"
    argv, path = sys.argv[:], sys.path[:]
    result = invoke("run", str(script), str(out), "--flag", "x")
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == f"[{str(out)!r}, '--flag', 'x'] __main__ helper"
    assert (sys.argv, sys.path) == (argv, path)  # restored


def test_run_a_missing_script_is_one_line(home: Path, tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path / "nope.py"))
    assert result.exit_code == 1
    assert result.stderr == f"error: no such script: {tmp_path / 'nope.py'}\n"


def test_run_a_script_exit_code_is_kept(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(4)\n")
    assert invoke("run", str(script)).exit_code == 4


@pytest.mark.slow
def test_run_the_quickstart_with_the_installed_script(home: Path) -> None:
    done = sematic("run", "examples/quickstart.py")
    assert done.returncode == 0, done.stderr
    assert "mean=" in done.stdout
    listed = sematic("runs")
    assert listed.returncode == 0, listed.stderr
    assert "RESOLVED" in listed.stdout


def test_script_errors_exit_non_zero_without_traceback(home: Path, tmp_path: Path) -> None:
    for args in (["run", str(tmp_path / "nope.py")], ["rerun", "nope"]):
        done = sematic(*args)
        assert done.returncode == 1, args
        assert done.stderr.startswith("error: "), args
        assert len(done.stderr.splitlines()) == 1, done.stderr
    usage = sematic("runs", "--limit", "x")
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr
