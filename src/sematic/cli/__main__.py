"""``python -m sematic.cli``: the ``sematic`` command (used when the script is not on PATH)."""

from sematic.cli.main import cli

cli(prog_name="sematic")
