"""``python -m sematic.worker JOB_FILE``: run one function call described by a job file.

``python -m sematic.worker --job-from-env`` reads the job (JSON) from the environment
variable ``SEMATIC_WORKER_JOB`` instead: how a Kubernetes pod gets it.

``python -m sematic.worker --warm-from-env`` is a warm worker pod: it runs, one after
another, the steps its driver sends it (``sematic.worker.warm``).

``python -m sematic.worker --drive-from-env`` is the driver of a detached cloud pipeline
(``SEMATIC_DRIVER``): it resolves the pipeline in the cluster it runs in.

``python -m sematic.worker --self-check`` checks that this interpreter can run the worker
and prints one JSON line (see ``sematic.worker.self_check``); ``sematic build --check`` runs
it inside each built image. Nothing else is imported before it runs, so that a broken
dependency is reported as JSON rather than as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sematic.core import variables


def main(argv: list[str]) -> int:
    if argv == ["--self-check"]:
        from sematic.worker.self_check import main as self_check

        return self_check()
    from sematic.core.jobs import WorkerJob
    from sematic.worker.run import run_job

    if argv == ["--warm-from-env"]:
        from sematic.worker.warm import serve_from_environment

        return serve_from_environment()
    if argv == ["--drive-from-env"]:
        from sematic.worker.drive import drive_from_environment

        return drive_from_environment()
    if argv == ["--job-from-env"]:
        text = os.environ.get(variables.WORKER_JOB)
        if not text:
            print(f"--job-from-env: {variables.WORKER_JOB} is not set", file=sys.stderr)
            return 2
        return run_job(WorkerJob.from_json(text))
    if len(argv) != 1:
        print(
            "usage: python -m sematic.worker JOB_FILE | --job-from-env | --warm-from-env"
            " | --drive-from-env"
            " | --self-check",
            file=sys.stderr,
        )
        return 2
    job = WorkerJob.from_json(Path(argv[0]).read_text())
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
