"""A database URL with a password never has to be on a command line (``ps`` shows it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sematic.cli import server_control
from tests.unit.cli.conftest import invoke
from tests.unit.server.conftest import ROOT, server_env

# Nothing listens on port 1: opening the database fails at once, after the URL was read.
SECRET_URL = "postgresql+psycopg://sematic:hunter2@127.0.0.1:1/runs"
MASKED = "postgresql+psycopg://sematic:***@127.0.0.1:1/runs"


def _server(home: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sematic.server", "--port", "0", *arguments],
        capture_output=True,
        text=True,
        env=server_env(home, **env),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_the_server_takes_the_database_url_from_the_environment(tmp_path: Path) -> None:
    done = _server(tmp_path / "home", SEMATIC_DATABASE_URL=SECRET_URL)
    assert done.returncode == 1
    assert MASKED in done.stderr  # it tried that database
    assert "hunter2" not in done.stderr and "warning" not in done.stderr


def test_a_password_on_the_command_line_gets_a_warning(tmp_path: Path) -> None:
    done = _server(tmp_path / "home", "--database-url", SECRET_URL)
    assert done.returncode == 1
    assert "warning: the URL given with --database-url holds a password" in done.stderr
    assert "SEMATIC_DATABASE_URL" in done.stderr and "sematic settings set" in done.stderr
    assert "hunter2" not in done.stderr


def test_sematic_server_hands_urls_to_the_server_in_its_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: dict[str, Any] = {}

    def execve(path: str, args: list[str], env: dict[str, str]) -> None:
        """Stands in for the exec, which would replace the test process (the real
        server process is tested in tests/unit/cli/test_cli_server_control.py)."""
        started.update(args=args, env=env)

    monkeypatch.setattr(server_control.os, "execve", execve)
    monkeypatch.setenv("SEMATIC_API_KEY", "k" * 32)
    result = invoke("server", "--database-url", SECRET_URL, "--artifact-url", "/srv/artifacts")
    assert result.exit_code == 0, result.stderr
    assert not any("hunter2" in arg or "/srv/artifacts" in arg for arg in started["args"])
    assert started["env"]["SEMATIC_DATABASE_URL"] == SECRET_URL
    assert started["env"]["SEMATIC_ARTIFACT_URL"] == "/srv/artifacts"
    assert "holds a password" in result.stderr and "hunter2" not in result.stderr


def test_sematic_server_without_urls_warns_about_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_control.os, "execve", lambda *_: None)  # no exec in a test
    monkeypatch.setenv("SEMATIC_API_KEY", "k" * 32)
    monkeypatch.setenv("SEMATIC_DATABASE_URL", SECRET_URL)
    result = invoke("server")
    assert result.exit_code == 0 and result.stderr == ""
