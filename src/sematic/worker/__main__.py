"""``python -m sematic.worker JOB_FILE``: run one function call described by a job file."""

from __future__ import annotations

import sys
from pathlib import Path

from sematic.core.jobs import WorkerJob
from sematic.worker.run import run_job


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sematic.worker JOB_FILE", file=sys.stderr)
        return 2
    job = WorkerJob.from_json(Path(argv[0]).read_text())
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
