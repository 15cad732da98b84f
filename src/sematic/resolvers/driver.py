"""The driver Job of ``CloudResolver(detach=True)``.

Submitting (in the user's process): check everything, record the root run and its input
artifacts through the server, create the driver Job, print the run's URL, return.

Driving (in the driver pod, ``sematic-worker --drive-from-env``): rebuild the root future
from its recorded inputs and resolve it with ``CloudResolver(detach=False)`` against the
cluster it runs in. A driver pod that is killed or evicted is replaced by the Job
controller; the new one does the same, reusing every step already resolved and following
worker Jobs still running instead of starting them again.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sematic.core.engine import Run
from sematic.core.errors import (
    ConfigurationError,
    PipelineCanceledError,
    PipelineFailedError,
    SematicError,
)
from sematic.core.future import Future
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from sematic.resolvers.cloud import IN_CLUSTER, CloudResolver
from sematic.resolvers.cloud_workers import ROOT_LABEL, WORKER, label_value
from sematic.resolvers.recording import RunRecorder
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import API_KEY_VARIABLE, open_stores

DRIVER_VARIABLE = "SEMATIC_DRIVER"
SERVER_VARIABLE = "SEMATIC_SERVER_URL"
DRIVER_HOME = "/tmp/sematic"


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """What a driver pod needs to resolve its pipeline (JSON in ``SEMATIC_DRIVER``)."""

    root_id: str
    images: dict[str, str]
    driver_image: str
    script: str | None
    cluster: dict[str, Any]
    max_parallelism: int
    unschedulable_after: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriverSpec:
        return cls(**json.loads(text))


def driver_job_name(root_id: str) -> str:
    return f"sematic-driver-{label_value(root_id).lower()[:40]}"


def submit_driver(resolver: CloudResolver, future: Future) -> str:
    """Record the root run, submit the driver Job; return the root run's id."""
    settings = resolver.settings or LocalSettings.from_environment()
    images = resolver.checked(future, settings)
    upstream = [name for name, value in future.kwargs.items() if isinstance(value, Future)]
    if upstream:
        raise ConfigurationError(
            f"CloudResolver(detach=True) resolves {future.props.name}() in the cluster from "
            f"recorded values, but its argument(s) {', '.join(upstream)} are futures: call "
            "them inside a pipeline function, or use detach=False"
        )
    _record_root(future, settings)
    cluster = resolver.cluster
    pods_server = cluster.server_url or settings.server_url
    spec = DriverSpec(
        root_id=future.id,
        images=dict(images.images),
        driver_image=images.driver,
        script=resolver.script,
        cluster=cluster.to_dict(),
        max_parallelism=resolver.max_parallelism,
        unschedulable_after=resolver.unschedulable_after,
    )
    env = {DRIVER_VARIABLE: spec.to_json(), SERVER_VARIABLE: pods_server or ""}
    if settings.api_key:
        env[API_KEY_VARIABLE] = settings.api_key
    manifest = job_manifest(
        name=driver_job_name(future.id),
        image=images.driver,
        command=[WORKER, "--drive-from-env"],
        settings=cluster,
        requirements=resolver.driver_requirements,
        labels={ROOT_LABEL: label_value(future.id), "sematic.dev/role": "driver"},
        env=env,
        restarts=resolver.driver_restarts,
    )
    from kubernetes import client

    api = resolver.api_client()
    try:
        batch: Any = client.BatchV1Api(api)
        batch.create_namespaced_job(cluster.namespace, manifest)
    finally:
        api.close()
    url = f"{(settings.server_url or '').rstrip('/')}/#/runs/{future.id}"  # checked: set
    print(f"{future.props.name}: submitted to the cluster; follow it at {url}", file=sys.stderr)
    return future.id


def _record_root(future: Future, settings: LocalSettings) -> None:
    """The root run and its input artifacts, durable before the driver exists."""
    metadata, artifacts = open_stores(settings)
    try:
        recorder = RunRecorder(metadata, artifacts)
        run = Run(future, None)
        recorder.record_created(run, future.id)
        try:
            recorder.record_inputs(run, dict(future.kwargs))
        except SematicError:
            raise  # already says what is wrong (e.g. a value of the wrong type)
        except Exception as error:
            raise ConfigurationError(
                f"cannot record the inputs of {future.props.name}() for the driver: "
                f"{type(error).__name__}: {error}"
            ) from error
        recorder.close()
    finally:
        metadata.close()


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
        resolver.resume(spec.root_id)
    except (PipelineFailedError, PipelineCanceledError) as ended:
        print(f"driver: {ended}", file=sys.stderr)
        return 0
    print(f"driver: {spec.root_id} resolved", file=sys.stderr)
    return 0
