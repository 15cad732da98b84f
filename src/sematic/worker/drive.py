"""``python -m sematic.worker --drive-from-env``: the driver pod's entry point. It resolves
the pipeline its ``DriverSpec`` names with ``CloudResolver(detach=False)`` in the cluster it
runs in; a replaced pod re-enters the pipeline, reusing what was resolved."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sematic.core.errors import PipelineCanceledError, PipelineFailedError
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ClusterSettings
from sematic.resolvers.cloud import IN_CLUSTER, CloudResolver
from sematic.resolvers.driver import DRIVER_HOME, DRIVER_VARIABLE, SERVER_VARIABLE, DriverSpec
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import API_KEY_VARIABLE


def drive_from_environment() -> int:
    """The driver pod's entry point. Exit 0 once the pipeline ended (resolved, failed or
    canceled: all recorded); non-zero when the driver itself broke, so that Kubernetes
    starts another pod, which re-enters the pipeline."""
    text = os.environ.get(DRIVER_VARIABLE)
    if not text:
        print(f"--drive-from-env: {DRIVER_VARIABLE} is not set", file=sys.stderr)
        return 2
    spec = DriverSpec.from_json(text)
    settings = LocalSettings(
        home=Path(DRIVER_HOME),
        database_url="unused://",
        artifact_url="unused://",
        server_url=os.environ.get(SERVER_VARIABLE) or None,
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
    )
    resolver = CloudResolver(
        detach=False,
        images=ImageMap(spec.images, spec.driver_image),
        cluster=ClusterSettings.from_dict(spec.cluster),
        kubeconfig=IN_CLUSTER,
        max_parallelism=spec.max_parallelism,
        settings=settings,
        unschedulable_after=spec.unschedulable_after,
        check_registry=False,  # checked before the driver was submitted
    )
    resolver.script = spec.script
    print(f"driver: resolving {spec.root_id}", file=sys.stderr, flush=True)
    try:
        if spec.rerun_of is None:
            resolver.resume(spec.root_id)
        else:
            resolver.resolve_rerun(spec.root_id, spec.rerun_of, spec.rerun_from)
    except (PipelineFailedError, PipelineCanceledError) as ended:
        print(f"driver: {ended}", file=sys.stderr)
        return 0
    print(f"driver: {spec.root_id} resolved", file=sys.stderr)
    return 0
