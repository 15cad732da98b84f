"""``sematic run`` (a user's script) and ``sematic rerun`` (a recorded pipeline)."""

from __future__ import annotations

import contextlib
import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import click

from sematic.cli.errors import CliError


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "-b",
    "--build",
    "package",
    is_flag=True,
    help="First package the pipeline (as `sematic build`) and run with its image map.",
)
@click.option(
    "-n",
    "--no-cache",
    is_flag=True,
    help="With --build: build every layer anew, ignoring the layers and base blobs kept "
    "from earlier builds.",
)
@click.option(
    "-l",
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    default=None,
    help="Log messages of this level and above (Python's logging) while the script runs.",
)
def run(
    script: Path, args: tuple[str, ...], package: bool, no_cache: bool, log_level: str | None
) -> None:
    """Run the Python SCRIPT (with ARGS) as `python SCRIPT ARGS` would, with this Python.

    Options go before SCRIPT; what follows it is the script's.
    """
    import runpy

    if not script.is_file():
        raise CliError(f"no such script: {script}")
    if no_cache and not package:
        raise CliError("--no-cache only applies with --build")
    if log_level is not None:
        import logging

        logging.basicConfig(level=log_level.upper())
    images: AbstractContextManager[None] = contextlib.nullcontext()
    if package:
        images = _built(script, no_cache)
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.resolve().parent))  # as `python SCRIPT` does
    try:
        with images:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path


def _built(script: Path, no_cache: bool) -> AbstractContextManager[None]:
    """Build the script's images (``no_cache``: in a new, temporary cache) and hand them to
    the resolvers it creates."""
    import tempfile

    from sematic.cli.packaging import build_images, use_images

    if not no_cache:
        return use_images(*build_images(script))
    with tempfile.TemporaryDirectory(prefix="sematic-cache-") as fresh:
        return use_images(*build_images(script, cache=Path(fresh)))


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


@click.command()
@click.argument("run_id")
@click.option(
    "--from",
    "from_run",
    default=None,
    metavar="RUN_ID",
    help="Execute this run and everything downstream again (default: the whole pipeline).",
)
@click.option("--root-id", default=None, hidden=True, help="The id the new root run gets.")
def rerun(run_id: str, from_run: str | None, root_id: str | None) -> None:
    """Run the pipeline of RUN_ID again with its recorded inputs.

    Every recorded output not downstream of --from is reused. The pipeline's module is
    imported from the current directory or the installed packages.
    """
    from sematic.core.records import RUN_ID
    from sematic.resolvers.local import LocalResolver
    from sematic.resolvers.rerun import prepare_rerun, record_failed_rerun
    from sematic.resolvers.settings import LocalSettings

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the user's modules import
    settings = LocalSettings.from_environment()
    if root_id is not None and not RUN_ID.fullmatch(root_id):
        raise CliError(f"--root-id takes 32 lowercase hex digits, not {root_id!r}")
    try:
        future, start = prepare_rerun(settings, run_id, from_run)
    except Exception as error:
        if root_id is not None:  # asked for through the API: the new root shows why
            record_failed_rerun(settings, run_id, root_id, error)
        raise
    if root_id is not None:
        future.id = root_id
    value = LocalResolver(rerun_from=start, settings=settings).resolve(future)
    click.echo(f"new root run: {future.id}")
    click.echo(_show(value))
