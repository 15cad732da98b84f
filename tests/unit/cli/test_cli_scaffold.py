"""`sematic new PROJECT`: the generated project runs as it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli.conftest import invoke, sematic


def test_new_creates_the_project(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "demo"))
    assert result.exit_code == 0, result.stderr
    created = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert created == ["README.md", "__init__.py", "main.py", "pipeline.py"]
    assert "python -m demo.main" in (tmp_path / "demo" / "README.md").read_text()
    assert "from demo.pipeline import pipeline" in (tmp_path / "demo" / "main.py").read_text()


def test_new_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    result = invoke("new", str(tmp_path / "demo"))
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'demo'} already exists; choose another name\n"
    assert list((tmp_path / "demo").iterdir()) == []


@pytest.mark.parametrize("name", ["my-project", "class", "3d"])
def test_new_refuses_a_name_that_is_no_package(tmp_path: Path, name: str) -> None:
    result = invoke("new", str(tmp_path / name))
    assert result.exit_code == 1
    assert "is not a valid Python package name" in result.stderr
    assert not (tmp_path / name).exists()


def test_the_generated_project_runs(home: Path, tmp_path: Path) -> None:
    assert sematic("new", "demo", cwd=tmp_path).returncode == 0
    env = {**os.environ, "SEMATIC_HOME": str(home)}
    env.pop("PYTHONPATH", None)
    for argv in (["-m", "demo.main"], ["demo/main.py"]):
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("resolved: 11.0")
    ran = sematic("run", "demo/main.py", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().endswith("resolved: 11.0")
    listed = sematic("runs", cwd=tmp_path)
    assert listed.stdout.count("pipeline") == 3
    root_id = listed.stdout.splitlines()[1].split()[0]
    rerun = sematic("rerun", root_id, cwd=tmp_path)  # the project's module is imported
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().endswith("11.0")
