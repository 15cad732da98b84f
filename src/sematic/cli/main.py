"""The ``sematic`` command: a click group; each command lives in a small module of its own.

Importing this module stays light: heavy libraries (SQLAlchemy, rich, httpx, resolvers) are
imported inside the commands that need them.
"""

from __future__ import annotations

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
    """Show the settings in effect (read from the environment)."""


@settings.command("show")
def settings_show() -> None:
    """Print where runs are kept: home folder, database URL (password masked), artifacts."""
    from sematic.resolvers.settings import LocalSettings
    from sematic.storage.sql.connect import mask

    current = LocalSettings.from_environment()
    click.echo(f"home:         {current.home}")
    click.echo(f"database_url: {mask(current.database_url)}")
    click.echo(f"artifact_url: {mask(current.artifact_url)}")
    click.echo(f"logs:         {current.logs}")


def _register() -> None:
    from sematic.cli import pipelines, runs, scaffold, server_control

    for command in (
        server_control.start,
        server_control.stop,
        server_control.server,
        runs.runs,
        runs.logs,
        runs.cancel,
        pipelines.run,
        pipelines.rerun,
        scaffold.new,
    ):
        cli.add_command(command)


_register()
