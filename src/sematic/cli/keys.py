"""``sematic keys``: the API keys of the team server the CLI is configured for
(``server_url`` and an admin ``api_key``: see ``sematic settings``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from sematic.cli.errors import CliError

if TYPE_CHECKING:
    from sematic.core.keys import ApiKeyRecord, NewApiKey
    from sematic.storage.http.keys import HttpKeyAdmin


@contextmanager
def _admin() -> Iterator[HttpKeyAdmin]:
    from sematic.resolvers.settings import LocalSettings
    from sematic.storage.http.keys import HttpKeyAdmin

    settings = LocalSettings.from_environment()
    if not settings.server_url:
        raise CliError(
            "`sematic keys` manages the API keys of a team server (`sematic server`), and "
            "no server_url is set: run `sematic settings set server_url URL` (or set "
            "SEMATIC_SERVER_URL), with an admin api_key."
        )
    admin = HttpKeyAdmin(settings.server_url, settings.api_key)
    try:
        yield admin
    finally:
        admin.close()


def _time(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _show_new(made: NewApiKey) -> None:
    record = made.record
    label = f" ({record.name})" if record.name else ""
    click.echo(f"API key {record.id} for {record.user}{label}, role {record.role}:")
    click.echo(made.key)
    click.echo("Keep it now: it is shown only this once (the server stores its hash).", err=True)


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke the API keys of the team server (admin key needed)."""


@keys.command("create")
@click.argument("user")
@click.option("--name", default="", help="A label for the key (what or where it is used).")
@click.option(
    "--role",
    type=click.Choice(["admin", "write", "read"]),
    default="write",
    show_default=True,
    help="read: reads only; write: runs pipelines; admin: also manages keys.",
)
def create(user: str, name: str, role: str) -> None:
    """Create a key for USER and print it (once)."""
    from sematic.core.keys import ROLES

    chosen = next(r for r in ROLES if r == role)
    with _admin() as admin:
        _show_new(admin.create(user, name, chosen))


@keys.command("list")
def list_keys() -> None:
    """List every key: id, user, name, role, created, revoked (never the keys)."""
    with _admin() as admin:
        found = admin.list()
    if not found:
        click.echo("No API keys yet (besides the server's own admin key).")
        return
    _table(found)


def _table(found: list[ApiKeyRecord]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("id", "user", "name", "role", "created", "revoked"):
        table.add_column(column, no_wrap=True)
    for record in found:
        table.add_row(
            record.id,
            record.user,
            record.name,
            record.role,
            _time(record.created_at),
            _time(record.revoked_at),
        )
    Console(width=200).print(table)


@keys.command("rotate")
@click.argument("key_id")
def rotate(key_id: str) -> None:
    """Make a new key for the user and role of KEY_ID; KEY_ID stays valid until revoked."""
    with _admin() as admin:
        _show_new(admin.rotate(key_id))
    click.echo(f"Once the new key is in use: sematic keys revoke {key_id}", err=True)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Refuse KEY_ID from now on (on every server sharing the database)."""
    with _admin() as admin:
        record = admin.revoke(key_id)
    click.echo(f"Revoked API key {record.id} of {record.user} at {_time(record.revoked_at)}.")
