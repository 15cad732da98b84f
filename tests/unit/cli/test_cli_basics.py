"""`sematic version`, `settings show`, help texts, the one-line errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

import sematic
from sematic.cli.main import cli
from tests.unit.cli.conftest import invoke


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found += _commands(command, prefix + name + " ")
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(cli)
    names = {name for name, _ in commands}
    assert {"version", "start", "stop", "server", "runs", "logs", "run", "rerun"} <= names
    assert {"settings show", "new"} <= names
    for name, command in commands:
        assert command.help, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.name}"


def test_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.stdout.strip() == sematic.__version__


def test_settings_show_defaults(home: Path) -> None:
    result = invoke("settings", "show")
    assert result.exit_code == 0
    assert f"home:         {home}" in result.stdout
    assert f"sqlite:///{home / 'db.sqlite3'}" in result.stdout
    assert str(home / "artifacts") in result.stdout


def test_settings_show_masks_the_password(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMATIC_DATABASE_URL", "postgresql+psycopg://me:s3cret@db:5432/sematic")
    monkeypatch.setenv("SEMATIC_ARTIFACT_URL", "s3://bucket/prefix")
    result = invoke("settings", "show")
    assert "s3cret" not in result.stdout
    assert "postgresql+psycopg://me:***@db:5432/sematic" in result.stdout
    assert "s3://bucket/prefix" in result.stdout


def test_a_sematic_error_is_one_line_on_stderr(home: Path) -> None:
    result = invoke("logs", "no-such-run")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: No run with id 'no-such-run'")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
