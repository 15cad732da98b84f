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
from dataclasses import asdict, dataclass, replace
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
from sematic.core.resources import KubernetesRequirements
from sematic.kubernetes.manifests import (
    API_KEY_SECRET_KEY,
    KEEP_ANNOTATION,
    ROLE_LABEL,
    ROOT_LABEL,
    ClusterSettings,
    driver_job_name,
    job_manifest,
    label_value,
)
from sematic.kubernetes.workers import WORKER
from sematic.resolvers.cloud import IN_CLUSTER, CloudResolver
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
    # A rerun started by the server: the pipeline it reruns, and the run to rerun from
    # (None: all of it).
    rerun_of: str | None = None
    rerun_from: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriverSpec:
        return cls(**json.loads(text))


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
    # The root run names the driver's image: the pipeline is driven in a Job (the reaper
    # looks for that Job; a rerun from the server starts another on the same image).
    _record_root(future, settings, ImageMap(images.images, images.driver))
    start_driver(
        resolver.api_client(),
        DriverSpec(
            root_id=future.id,
            images=dict(images.images),
            driver_image=images.driver,
            script=resolver.script,
            cluster=resolver.cluster.to_dict(),
            max_parallelism=resolver.max_parallelism,
            unschedulable_after=resolver.unschedulable_after,
        ),
        server_url=resolver.cluster.server_url or settings.server_url,
        api_key=settings.api_key,
        requirements=resolver.driver_requirements,
        restarts=resolver.driver_restarts,
    )
    url = f"{(settings.server_url or '').rstrip('/')}/#/runs/{future.id}"  # checked: set
    print(f"{future.props.name}: submitted to the cluster; follow it at {url}", file=sys.stderr)
    return future.id


def start_driver(
    api: Any,
    spec: DriverSpec,
    *,
    server_url: str | None,
    api_key: str | None,
    requirements: KubernetesRequirements | None = None,
    restarts: int = 3,
) -> str:
    """Create the driver Job of the pipeline ``spec.root_id`` (recorded already); return
    its name. ``api`` (a kubernetes ApiClient) is closed.

    The API key reaches the driver and its workers from a Secret: the one the cluster
    settings name, else one created here, owned by the driver Job (the cluster deletes it
    with the Job) and named in the spec so that the driver's workers read it too.
    """
    from sematic.kubernetes.pipelines import PipelineObjects

    cluster = ClusterSettings.from_dict(spec.cluster)
    objects = PipelineObjects(api, cluster.namespace)
    created: str | None = None
    try:
        secret_env: dict[str, tuple[str, str]] = {}
        if api_key:
            secret = cluster.api_key_secret
            if secret is None:
                secret = created = objects.create_key_secret(spec.root_id, api_key)
                spec = replace(spec, cluster=replace(cluster, api_key_secret=secret).to_dict())
            secret_env[API_KEY_VARIABLE] = (secret, API_KEY_SECRET_KEY)
        name = driver_job_name(spec.root_id)
        manifest = job_manifest(
            name=name,
            image=spec.driver_image,
            command=[WORKER, "--drive-from-env"],
            settings=cluster,
            requirements=requirements,
            labels={ROOT_LABEL: label_value(spec.root_id), ROLE_LABEL: "driver"},
            annotations={
                ROOT_LABEL: spec.root_id,
                **({KEEP_ANNOTATION: "true"} if cluster.keep_finished_jobs else {}),
            },
            env={DRIVER_VARIABLE: spec.to_json(), SERVER_VARIABLE: server_url or ""},
            secret_env=secret_env,
            restarts=restarts,
        )
        try:
            job = objects.create_job(manifest)
        except BaseException:
            if created is not None:
                objects.delete_secret(created)
            raise
        if created is not None:
            objects.give_secret_to(created, job)
        return name
    finally:
        api.close()


def _record_root(future: Future, settings: LocalSettings, images: ImageMap) -> None:
    """The root run and its input artifacts, durable before the driver exists."""
    metadata, artifacts = open_stores(settings)
    try:
        recorder = RunRecorder(metadata, artifacts, images=images)
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
        if spec.rerun_of is None:
            resolver.resume(spec.root_id)
        else:
            resolver.resolve_rerun(spec.root_id, spec.rerun_of, spec.rerun_from)
    except (PipelineFailedError, PipelineCanceledError) as ended:
        print(f"driver: {ended}", file=sys.stderr)
        return 0
    print(f"driver: {spec.root_id} resolved", file=sys.stderr)
    return 0
