"""``python -m sematic.worker --self-check`` on this venv's Python and on 3.10, 3.12, 3.13.

The other Pythons get Sematic's source (``src``) and its dependencies installed for them by
``uv pip install --target`` (wheels for that version and manylinux x86-64), the way an image
gets them; the folders are made once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.harness.pythons import find_python

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "src"
UV = Path(sys.executable).parent / "uv"
PYTHONS = {"3.10": "3.10.13", "3.12": "3.12.1", "3.13": "3.13.0"}
CHECKS = ["import worker", "import pydantic_core", "type check", "serialize round trip"]


def self_check(python: str, python_path: list[Path] | None = None) -> tuple[int, dict[str, Any]]:
    """Runs the self-check; returns its exit status and its one JSON line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
    done = subprocess.run(
        [python, "-m", "sematic.worker", "--self-check"],
        env=env, capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    return done.returncode, json.loads(lines[0])


@pytest.fixture(scope="session")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sematic's dependencies installed for each of PYTHONS, by version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    folders = {}
    for version in PYTHONS:
        target = tmp_path_factory.mktemp(f"deps-{version}")
        done = subprocess.run(
            [str(UV), "pip", "install", "--quiet", "--target", str(target),
             "--python-version", version, "--python-platform", "x86_64-manylinux_2_28",
             "--only-binary", ":all:", *project["dependencies"]],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        folders[version] = target
    return folders


def test_self_check_passes_here() -> None:
    code, report = self_check(sys.executable)
    assert code == 0, report
    assert report["ok"] is True
    assert report["checks"] == CHECKS
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["implementation"] == "cpython"
    assert report["machine"] == os.uname().machine
    assert "kubernetes" in report  # the dev environment has it: its version, or None


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_self_check_passes_on_other_pythons(version: str, dependencies: dict[str, Path]) -> None:
    python = find_python(PYTHONS[version])
    assert python is not None, f"this test needs CPython {PYTHONS[version]}; install it with pyenv"
    code, report = self_check(str(python), [SOURCE, dependencies[version]])
    assert code == 0, report
    assert report["ok"] is True
    assert report["python"] == PYTHONS[version]
    assert report["checks"] == CHECKS
    assert report["kubernetes"] is None  # not installed there: reported, not required


def test_a_broken_dependency_fails_and_names_it(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "pydantic_core"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('pydantic_core is broken here')\n")
    code, report = self_check(sys.executable, [shadow.parent, SOURCE])
    assert code == 1
    assert report["ok"] is False
    assert "pydantic_core is broken here" in report["error"]
    assert report["error"].startswith("ImportError: ")
    assert report["failed_check"] == "import pydantic_core"
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
