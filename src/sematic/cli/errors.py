"""How the command line reports a mistake: one line on stderr, a non-zero exit code."""

from __future__ import annotations

from typing import IO, Any

import click


class CliError(click.ClickException):
    """Printed as ``error: <message>`` (on one line) to stderr; exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)
