"""`sematic settings set|delete|show`: the settings file, its precedence, the masked key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from sematic.cli.main import cli
from sematic.core.errors import ConfigurationError
from sematic.resolvers.settings import ENVIRONMENT, LocalSettings
from tests.unit.cli.conftest import invoke

KEY = "k3y-that-must-never-be-printed"


def _saved(home: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((home / "settings.json").read_text())
    return data


def test_set_saves_the_value_in_a_private_file(home: Path) -> None:
    result = invoke("settings", "set", "server_url", "http://sematic.example:5001/")
    assert result.exit_code == 0, result.output
    assert str(home / "settings.json") in result.stdout
    assert _saved(home) == {"server_url": "http://sematic.example:5001"}
    assert stat.S_IMODE((home / "settings.json").stat().st_mode) == 0o600
    assert invoke("settings", "set", "artifact_url", "s3://bucket/a").exit_code == 0
    assert _saved(home) == {
        "server_url": "http://sematic.example:5001",
        "artifact_url": "s3://bucket/a",
    }
    assert [p.name for p in home.iterdir()] == ["settings.json"]  # no temporary file left
    settings = LocalSettings.from_environment()
    assert settings.server_url == "http://sematic.example:5001"
    assert settings.artifact_url == "s3://bucket/a"


@pytest.mark.parametrize("key", list(ENVIRONMENT))
def test_environment_then_file_then_default(
    home: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    default = {
        "database_url": f"sqlite:///{home / 'db.sqlite3'}",
        "artifact_url": str(home / "artifacts"),
        "server_url": None,
        "api_key": None,
        "webhook_url": None,
        "webhook_states": None,
        "webhook_runs": None,
    }
    # Values each key accepts (the webhook settings are checked wherever they come from).
    saved, from_env = {
        "server_url": ("http://from-file:1", "from-env"),
        "webhook_url": ("http://from-file:1/hook", "http://from-env:1/hook"),
        "webhook_states": ("FAILED", "CANCELED"),
        "webhook_runs": ("all", "pipelines"),
    }.get(key, ("from-file", "from-env"))
    assert getattr(LocalSettings.from_environment(), key) == default[key]
    assert invoke("settings", "set", key, saved).exit_code == 0
    assert getattr(LocalSettings.from_environment(), key) == saved
    monkeypatch.setenv(ENVIRONMENT[key], from_env)
    assert getattr(LocalSettings.from_environment(), key) == from_env
    shown = invoke("settings", "show").stdout
    assert f"(environment variable {ENVIRONMENT[key]})" in shown
    monkeypatch.delenv(ENVIRONMENT[key])
    assert f"(settings file {home / 'settings.json'})" in invoke("settings", "show").stdout
    deleted = invoke("settings", "delete", key)
    assert deleted.exit_code == 0
    assert f"{key} removed from" in deleted.stdout
    assert getattr(LocalSettings.from_environment(), key) == default[key]


def test_set_says_when_the_environment_wins(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMATIC_DATABASE_URL", "sqlite:////elsewhere.sqlite3")
    result = invoke("settings", "set", "database_url", "sqlite:////saved.sqlite3")
    assert result.exit_code == 0
    assert "SEMATIC_DATABASE_URL is set in the environment and takes precedence" in result.stdout


def test_show_masks_the_api_key_and_says_where_values_come_from(home: Path) -> None:
    result = CliRunner().invoke(cli, ["settings", "set", "api_key", "-"], input=f"{KEY}\n")
    assert result.exit_code == 0
    assert _saved(home) == {"api_key": KEY}
    assert invoke("settings", "set", "server_url", "http://me:pw@host:5001").exit_code == 0
    shown = invoke("settings", "show")
    assert shown.exit_code == 0
    assert KEY not in shown.output
    assert "pw" not in shown.output
    lines = {line.split(":", 1)[0]: line for line in shown.stdout.splitlines()}
    assert "********" in lines["api_key"]
    assert f"(settings file {home / 'settings.json'})" in lines["api_key"]
    assert "http://me:***@host:5001" in lines["server_url"]
    assert "(default)" in lines["database_url"]
    assert LocalSettings.from_environment().api_key == KEY
    assert KEY not in repr(LocalSettings.from_environment())


def test_show_without_a_server(home: Path) -> None:
    lines = invoke("settings", "show").stdout.splitlines()
    assert any(line.startswith("server_url:") and "not set" in line for line in lines)
    assert any(line.startswith("api_key:") and "(not set)" in line for line in lines)


@pytest.mark.parametrize("command", [["set", "passwd", "x"], ["delete", "passwd"]])
def test_an_unknown_key_is_one_line_naming_the_known_ones(home: Path, command: list[str]) -> None:
    result = invoke("settings", *command)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: unknown setting 'passwd'; the settings are database_url, artifact_url, "
        "server_url, api_key, webhook_url, webhook_states, webhook_runs\n"
    )
    assert not (home / "settings.json").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("server_url", "localhost:5001", "server_url must start with http:// or https://"),
        ("api_key", "two words", "api_key cannot contain whitespace"),
        ("database_url", "  ", "database_url cannot be empty"),
    ],
)
def test_bad_values_are_refused(home: Path, key: str, value: str, message: str) -> None:
    result = invoke("settings", "set", key, value)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not (home / "settings.json").exists()


def test_delete_of_a_key_not_set(home: Path) -> None:
    result = invoke("settings", "delete", "server_url")
    assert result.exit_code == 0
    assert result.stdout == "server_url is not set in the settings file\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"server_url": 5}', "must be a string"),
        ('{"colour": "red"}', "unknown setting 'colour'"),
    ],
)
def test_a_broken_settings_file_is_reported(home: Path, content: str, message: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        LocalSettings.from_environment()
    result = invoke("settings", "show")
    assert result.exit_code == 1
    assert str(home / "settings.json") in result.stderr or "unknown setting" in result.stderr


def test_settings_made_by_hand_keep_working() -> None:
    settings = LocalSettings(Path("/h"), "sqlite:////h/db.sqlite3", "/h/artifacts")
    assert settings.server_url is None
    assert settings.api_key is None
