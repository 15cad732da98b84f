"""Running a recorded pipeline again: with its recorded inputs, optionally from one run on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.resolvers.local import rebuild_pipeline
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore

RUN_ID = re.compile(r"[0-9a-f]{32}")


def prepare_rerun(
    settings: LocalSettings, run_id: str, start: str | None = None
) -> tuple[Future, str]:
    """The future of RUN_ID's pipeline called again with its recorded inputs, and the run
    to rerun from (``start``, or the root).

    The inputs are read back as ``LocalResolver.resume`` reads them (each payload verified
    against its artifact id).
    """
    with SqlMetadataStore(settings.database_url) as metadata:
        root = metadata.get_run(metadata.get_run(run_id).root_id)
        if start is not None and metadata.get_run(start).root_id != root.id:
            raise ConfigurationError(f"run {start} is not part of the pipeline {root.id}")
    if root.function_path.rpartition(".")[0] in ("__main__", "__mp_main__"):
        raise ConfigurationError(
            f"{root.name} was defined in a script run as __main__ and cannot be imported "
            "again; move it into a module to rerun it"
        )
    return rebuild_pipeline(root.id, settings), start or root.id


def start_rerun(settings: LocalSettings, run_id: str, start: str | None = None) -> str:
    """Rerun RUN_ID's pipeline in a background process (``sematic rerun``); return the id
    the new root run will have. Its output goes to ``$SEMATIC_HOME/logs/rerun-ID.log``.

    What can be checked at once is (unknown runs, a ``start`` from another pipeline, a
    pipeline defined in ``__main__``) raises here instead.
    """
    prepare_rerun(settings, run_id, start)
    new_root = uuid.uuid4().hex
    argv = [sys.executable, "-m", "sematic.cli", "rerun", run_id, "--root-id", new_root]
    if start is not None:
        argv += ["--from", start]
    log = settings.logs / f"rerun-{new_root}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path.cwd(),
            env={
                **os.environ,
                "SEMATIC_HOME": str(settings.home),
                "SEMATIC_DATABASE_URL": settings.database_url,
                "SEMATIC_ARTIFACT_URL": settings.artifact_url,
            },
        )
    return new_root
