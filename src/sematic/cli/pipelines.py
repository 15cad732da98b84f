"""``sematic run`` (a user's script) and ``sematic rerun`` (a recorded pipeline)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sematic.cli.errors import CliError

if TYPE_CHECKING:
    from sematic.core.future import Future
    from sematic.resolvers.settings import LocalSettings


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(script: Path, args: tuple[str, ...]) -> None:
    """Run the Python SCRIPT (with ARGS) as `python SCRIPT ARGS` would, with this Python."""
    import runpy

    if not script.is_file():
        raise CliError(f"no such script: {script}")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.resolve().parent))  # as `python SCRIPT` does
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path


def _rebuild(settings: LocalSettings, run_id: str, start: str | None) -> tuple[Future, str]:
    """The future of RUN_ID's pipeline called again with its recorded inputs, and the run
    to rerun from (``start``, or the root).

    The inputs are read back as ``LocalResolver.resume`` reads them (each payload verified
    against its artifact id).
    """
    from sematic.resolvers.local import rebuild_pipeline
    from sematic.storage.sql import SqlMetadataStore

    with SqlMetadataStore(settings.database_url) as metadata:
        root = metadata.get_run(metadata.get_run(run_id).root_id)
        if start is not None and metadata.get_run(start).root_id != root.id:
            raise CliError(f"run {start} is not part of the pipeline {root.id}")
    if root.function_path.rpartition(".")[0] in ("__main__", "__mp_main__"):
        raise CliError(
            f"{root.name} was defined in a script run as __main__ and cannot be imported "
            "again; move it into a module to rerun it from the command line"
        )
    return rebuild_pipeline(root.id, settings), start or root.id


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
def rerun(run_id: str, from_run: str | None) -> None:
    """Run the pipeline of RUN_ID again with its recorded inputs.

    Every recorded output not downstream of --from is reused. The pipeline's module is
    imported from the current directory or the installed packages.
    """
    from sematic.resolvers.local import LocalResolver
    from sematic.resolvers.settings import LocalSettings

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the user's modules import
    settings = LocalSettings.from_environment()
    future, start = _rebuild(settings, run_id, from_run)
    value = LocalResolver(rerun_from=start, settings=settings).resolve(future)
    click.echo(f"new root run: {future.id}")
    click.echo(_show(value))
