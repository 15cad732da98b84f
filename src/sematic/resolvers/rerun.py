"""Running a recorded pipeline again: with its recorded inputs, optionally from one run on.

Two halves, so that a server can offer reruns without ever running user code:

- ``check_rerun`` reads metadata only (the runs exist, ``start`` belongs to the pipeline,
  the pipeline's function can be imported again). A server calls it before it hands the
  rerun to a starter.
- ``prepare_rerun`` imports the pipeline's function and reads its inputs back
  (deserializing them): only the process that will run the pipeline does this, as the
  user (``sematic rerun``, or the background process ``BackgroundRerun`` starts).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sematic.core import variables
from sematic.core.engine import State
from sematic.core.errors import ConfigurationError
from sematic.core.files import private_folder, private_opener
from sematic.core.future import Future
from sematic.core.ports import MetadataStore
from sematic.core.records import EdgeRecord, RunRecord, TransitionRecord
from sematic.resolvers.cancel import end_unfinished
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import open_stores

_MAIN_MODULES = ("__main__", "__mp_main__")


def check_rerun(metadata: MetadataStore, run_id: str, start: str | None = None) -> RunRecord:
    """The root run of RUN_ID's pipeline, if it can be rerun (from ``start``).

    RunNotFoundError for unknown runs; ConfigurationError when ``start`` is in another
    pipeline or the pipeline was defined in a script run as ``__main__``. Reads metadata
    only: nothing is imported and no payload is read.
    """
    root = metadata.get_run(metadata.get_run(run_id).root_id)
    if start is not None and metadata.get_run(start).root_id != root.id:
        raise ConfigurationError(f"run {start} is not part of the pipeline {root.id}")
    if root.function_path.rpartition(".")[0] in _MAIN_MODULES:
        raise ConfigurationError(
            f"{root.name} was defined in a script run as __main__ and cannot be imported "
            "again; move it into a module to rerun it"
        )
    return root


def prepare_rerun(
    settings: LocalSettings, run_id: str, start: str | None = None
) -> tuple[Future, str]:
    """The future of RUN_ID's pipeline called again with its recorded inputs, and the run
    to rerun from (``start``, or the root).

    This imports the pipeline's module and reads its inputs back as
    ``LocalResolver.resume`` does (each payload verified against its artifact id): call it
    only in the process that runs the pipeline, never in a server.
    """
    from sematic.resolvers.local import rebuild_pipeline

    with _metadata(settings) as metadata:
        root = check_rerun(metadata, run_id, start)
    return rebuild_pipeline(root.id, settings), start or root.id


@contextmanager
def _metadata(settings: LocalSettings) -> Iterator[MetadataStore]:
    """The metadata store ``settings`` point at (a server's API when ``server_url`` is set),
    as resolvers open it; closed on exit."""
    metadata, _ = open_stores(settings)
    with closing(metadata):
        yield metadata


def record_rerun_root(metadata: MetadataStore, root: RunRecord, new_id: str) -> RunRecord:
    """A new root run: ``root``'s function and input artifacts, CREATED now."""
    now = time.time()
    record = dataclasses.replace(
        root, id=new_id, root_id=new_id, parent_id=None, state=State.CREATED,
        created_at=now, updated_at=now, started_at=None, ended_at=None, output=None,
        nested_run_id=None, cache_key=None, cache_hit=False, exception_type=None,
        exception_message=None, traceback=None,
    )  # fmt: skip
    metadata.write(
        runs=[record],
        transitions=[TransitionRecord(new_id, State.CREATED, now)],
        edges=[EdgeRecord(None, new_id, name, artifact) for name, artifact in root.inputs.items()],
    )
    return record


def record_failed_rerun(
    settings: LocalSettings, run_id: str, new_root: str, error: BaseException
) -> None:
    """Record the rerun ``new_root`` of RUN_ID's pipeline as FAILED with ``error``: the
    rerun was asked for through the API (which answered with ``new_root`` at once) but its
    process could not start the pipeline (its module no longer imports, an input no longer
    type-checks or reads back), so whoever watches ``new_root`` sees why."""
    with _metadata(settings) as metadata:
        root = metadata.get_run(metadata.get_run(run_id).root_id)
        record_rerun_root(metadata, root, new_root)
        error_type = f"{type(error).__module__}.{type(error).__qualname__}"
        why = f"the rerun could not start: {type(error).__name__}: {error}"
        end_unfinished(metadata, new_root, State.FAILED, why, exception_type=error_type)


class BackgroundRerun:
    """Starts each rerun as a ``sematic rerun`` process of its own, as the user who runs
    this one, in its working directory: the new process imports the pipeline and reads its
    inputs, this one never does.

    Called with (root run id, run to rerun from or None), it returns the id the new root
    run will have, at once. The process's output goes to
    ``$SEMATIC_HOME/logs/rerun-NEW_ROOT.log``; it is reaped by a thread of its own.
    """

    def __init__(self, settings: LocalSettings, cwd: Path | None = None) -> None:
        self.settings = settings
        self.cwd = cwd or Path.cwd()

    def __call__(self, run_id: str, start: str | None) -> str:
        new_root = uuid.uuid4().hex
        argv = [sys.executable, "-m", "sematic.cli", "rerun", run_id, "--root-id", new_root]
        if start is not None:
            argv += ["--from", start]
        log = self.settings.logs / f"rerun-{new_root}.log"
        private_folder(log.parent)
        with open(log, "ab", opener=private_opener) as output:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
                env={
                    **os.environ,
                    variables.HOME: str(self.settings.home),
                    variables.DATABASE_URL: self.settings.database_url,
                    variables.ARTIFACT_URL: self.settings.artifact_url,
                },
            )
        threading.Thread(target=process.wait, name=f"rerun-{new_root}", daemon=True).start()
        return new_root
