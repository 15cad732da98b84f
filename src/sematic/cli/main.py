"""The ``sematic`` command: a click group; each command lives in a small module of its own.

Importing this module stays light: heavy libraries (SQLAlchemy, rich, httpx, resolvers) are
imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sematic.cli.errors import CliError
from sematic.core.errors import SematicError


class _Group(click.Group):
    """Turns the tool's own errors into one ``error: ...`` line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SematicError as exc:
            raise CliError(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Sematic: ML pipelines as plain Python functions.

    Runs are kept in $SEMATIC_HOME (default ~/.sematic); see `sematic settings show`.
    """


@cli.command()
def version() -> None:
    """Print the version of Sematic."""
    import sematic

    click.echo(sematic.__version__)


@cli.group()
def settings() -> None:
    """Show and change the settings (saved in $SEMATIC_HOME/settings.json).

    Each setting comes from its environment variable if set (SEMATIC_DATABASE_URL,
    SEMATIC_ARTIFACT_URL, SEMATIC_SERVER_URL, SEMATIC_API_KEY), else from the settings
    file, else its default.
    """


_LABEL = 14


def _line(label: str, value: object, source: str | None = None) -> str:
    text = f"{label + ':':<{_LABEL}}{value}"
    return f"{text}  ({source})" if source else text


@settings.command("show")
def settings_show() -> None:
    """Print the settings in effect and where each comes from (secrets masked)."""
    from sematic.resolvers.settings import LocalSettings, home_source, settings_path, sources
    from sematic.storage.sql.connect import mask
    from sematic.storage.webhooks import DEFAULT_STATES, redact_url

    current = LocalSettings.from_environment()
    found = sources(current.home)
    click.echo(_line("home", current.home, home_source()))
    click.echo(_line("database_url", mask(current.database_url), found["database_url"][1]))
    click.echo(_line("artifact_url", mask(current.artifact_url), found["artifact_url"][1]))
    server_url, server_source = found["server_url"]
    if server_url is None:
        click.echo(_line("server_url", "(not set: runs are written to the database directly)"))
    else:
        click.echo(_line("server_url", mask(server_url), server_source))
    key, key_source = found["api_key"]
    click.echo(_line("api_key", "********", key_source) if key else _line("api_key", "(not set)"))
    hook, hook_source = found["webhook_url"]  # its path may hold a token: hidden
    shown = redact_url(hook) if hook else "(not set: no run state changes are posted)"
    click.echo(_line("webhook_url", shown, hook_source if hook else None))
    states, states_source = found["webhook_states"]
    click.echo(_line("webhook_states", states or ",".join(sorted(DEFAULT_STATES)), states_source))
    runs, runs_source = found["webhook_runs"]
    click.echo(_line("webhook_runs", runs or "pipelines", runs_source))
    click.echo(_line("logs", current.logs))
    click.echo(_line("settings", settings_path(current.home)))


@settings.command("set")
@click.argument("key")
@click.argument("value")
def settings_set(key: str, value: str) -> None:
    """Save KEY = VALUE in the settings file; VALUE "-" reads it from stdin (for api_key).

    KEY is one of database_url, artifact_url, server_url, api_key, webhook_url,
    webhook_states, webhook_runs.
    """
    from sematic.resolvers.settings import (
        ENVIRONMENT,
        check_key,
        home_from_environment,
        save_setting,
    )

    check_key(key)
    if value == "-":
        value = sys.stdin.readline().strip()
    path = save_setting(home_from_environment(), key, value)
    click.echo(f"{key} saved in {path}")
    if os.environ.get(ENVIRONMENT[key]):
        click.echo(f"note: {ENVIRONMENT[key]} is set in the environment and takes precedence")


@settings.command("delete")
@click.argument("key")
def settings_delete(key: str) -> None:
    """Remove KEY from the settings file (its default applies again)."""
    from sematic.resolvers.settings import (
        check_key,
        home_from_environment,
        read_settings_file,
        save_setting,
    )

    check_key(key)
    home = home_from_environment()
    if key not in read_settings_file(home):
        click.echo(f"{key} is not set in the settings file")
        return
    path = save_setting(home, key, None)
    click.echo(f"{key} removed from {path}")


def _register() -> None:
    from sematic.cli import (
        deploy,
        keys,
        legacy,
        packaging,
        pipelines,
        runs,
        scaffold,
        server_control,
    )

    for command in (
        server_control.start,
        server_control.stop,
        server_control.server,
        runs.runs,
        runs.logs,
        runs.cancel,
        keys.keys,
        pipelines.run,
        pipelines.rerun,
        packaging.build,
        scaffold.new,
        legacy.migrate,
        legacy.clean,
        legacy.server_settings,
        legacy.github,
        legacy.advanced,
        deploy.deploy,
    ):
        cli.add_command(command)


_register()
