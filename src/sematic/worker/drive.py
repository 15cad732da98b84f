"""``python -m sematic.worker --drive-from-env``: the driver pod's entry point. It resolves
the pipeline its ``DriverSpec`` names in the cluster it runs in; a replaced pod re-enters
the pipeline, reusing what was resolved."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sematic.core import variables
from sematic.core.errors import PipelineCanceledError, PipelineFailedError
from sematic.resolvers.driver import DRIVER_HOME, DriverSpec, drive
from sematic.resolvers.settings import LocalSettings


def drive_from_environment() -> int:
    """The driver pod's entry point. Exit 0 once the pipeline ended (resolved, failed or
    canceled: all recorded); non-zero when the driver itself broke, so that Kubernetes
    starts another pod, which re-enters the pipeline."""
    text = os.environ.get(variables.DRIVER)
    if not text:
        print(f"--drive-from-env: {variables.DRIVER} is not set", file=sys.stderr)
        return 2
    spec = DriverSpec.from_json(text)
    settings = LocalSettings(
        home=Path(DRIVER_HOME),
        database_url="unused://",
        artifact_url="unused://",
        server_url=os.environ.get(variables.SERVER_URL) or None,
        api_key=os.environ.get(variables.API_KEY) or None,
    )
    try:
        drive(spec, settings)
    except (PipelineFailedError, PipelineCanceledError) as ended:
        print(f"driver: {ended}", file=sys.stderr)
        return 0
    print(f"driver: {spec.root_id} resolved", file=sys.stderr)
    return 0
