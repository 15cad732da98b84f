"""The driver Job of ``CloudResolver(detach=True)``: what it is given (``DriverSpec``), how
it is created (``start_driver``) and how its root run is recorded first (``record_root``).

Submitting (``CloudResolver.resolve`` in the user's process): check everything, record the
root run and its input artifacts through the server, create the driver Job, print the run's
URL, return. Driving (in the driver pod: ``sematic.worker.drive``): rebuild the root future
from its recorded inputs and resolve it with ``CloudResolver(detach=False)`` against the
cluster it runs in. A driver pod that is killed or evicted is replaced by the Job
controller; the new one does the same, reusing every step already resolved and following
worker Jobs still running instead of starting them again.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sematic.core import variables
from sematic.core.engine import Run
from sematic.core.errors import (
    ConfigurationError,
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
from sematic.kubernetes.warm import WarmPods
from sematic.kubernetes.workers import WORKER, KubernetesWorkers
from sematic.resolvers.recording import RunRecorder
from sematic.resolvers.settings import LocalSettings, pod_name_from_environment
from sematic.resolvers.stores import open_stores
from sematic.resolvers.tracked import Place, Placement, TrackedResolution

if TYPE_CHECKING:
    from sematic.storage.http import HttpLogs
    from sematic.storage.http.mailbox import HttpMailbox

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
    preflight: str = "error"  # CloudResolver(preflight=...), for steps found while running
    warm: dict[str, Any] | None = None  # CloudResolver(warm_pods=...) (None: the defaults)
    # A rerun started by the server: the pipeline it reruns, and the run to rerun from
    # (None: all of it).
    rerun_of: str | None = None
    rerun_from: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriverSpec:
        return cls(**json.loads(text))


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
            secret_env[variables.API_KEY] = (secret, API_KEY_SECRET_KEY)
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
            env={variables.DRIVER: spec.to_json(), variables.SERVER_URL: server_url or ""},
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


def record_root(future: Future, settings: LocalSettings, images: ImageMap) -> None:
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


def kubernetes_placement(
    images: ImageMap,
    cluster: ClusterSettings,
    settings: LocalSettings,
    *,
    kubeconfig: str | None,
    script: str | None,
    unschedulable_after: float,
    preflight: str = "error",
    warm: WarmPods | None = None,
) -> Place:
    """``inline=False`` functions as Jobs on ``images`` (every function the pipeline can
    reach must have its image), inline ones in this process."""

    def place(future: Future) -> Placement:
        from sematic.kubernetes.pipelines import api_client

        images.check_pipeline(future)
        workers = KubernetesWorkers(
            api_client(kubeconfig),
            images,
            cluster,
            settings.log_path,
            script=script,
            unschedulable_after=unschedulable_after,
            preflight=preflight,
            root_id=future.id,
            log_sink=_log_sink(settings),
            warm=warm,
            mailbox=_mailbox(settings) if warm is None or warm.enabled else None,
        )
        return Placement(workers, images)

    return place


def _mailbox(settings: LocalSettings) -> HttpMailbox | None:
    """Where warm pods get their steps and report them: the server's mailbox."""
    if not settings.server_url:
        return None
    from sematic.storage.http.mailbox import HttpMailbox

    return HttpMailbox(settings.server_url, settings.api_key)


def _log_sink(settings: LocalSettings) -> HttpLogs | None:
    """Pod logs: where the logs of running pods are appended while they run: the server's
    (with none, the local server reads the log files the follower writes)."""
    if not settings.server_url:
        return None
    from sematic.storage.http import HttpLogs

    return HttpLogs(settings.server_url, settings.api_key)


def drive(spec: DriverSpec, settings: LocalSettings) -> None:
    """Resolve the pipeline ``spec`` names from inside the cluster (a driver pod): resume
    it (a replaced pod reuses what was resolved) or run the rerun the server recorded."""
    from sematic.kubernetes.pipelines import IN_CLUSTER

    images = ImageMap(spec.images, spec.driver_image)
    place = kubernetes_placement(
        images,
        ClusterSettings.from_dict(spec.cluster),
        settings,
        kubeconfig=IN_CLUSTER,
        script=spec.script,
        unschedulable_after=spec.unschedulable_after,
        preflight=spec.preflight,
        warm=WarmPods.from_dict(spec.warm) if spec.warm is not None else None,
    )
    tracked = TrackedResolution(settings, spec.max_parallelism, progress=False, script=spec.script)
    print(f"driver: resolving {spec.root_id}", file=sys.stderr, flush=True)
    try:
        if spec.rerun_of is None:
            tracked.resume(spec.root_id, place)
        else:
            tracked.rerun(spec.root_id, spec.rerun_of, spec.rerun_from, place)
    finally:
        record_driver_pods(spec.root_id, settings, ClusterSettings.from_dict(spec.cluster))


def record_driver_pods(root_id: str, settings: LocalSettings, cluster: ClusterSettings) -> None:
    """Record on the root run the pods its driver ran in (this one, and any the Job
    controller replaced): the pipeline's usage includes the driver's. Best effort: a
    failure here is printed and does not change how the pipeline ended."""
    pod_name = pod_name_from_environment()
    if pod_name is None:
        return
    try:
        from sematic.core.usage import execution_json
        from sematic.kubernetes.pipelines import IN_CLUSTER, api_client
        from sematic.kubernetes.watcher import driver_attempts

        api = api_client(IN_CLUSTER)
        try:
            attempts = driver_attempts(api, cluster.namespace, pod_name)
        finally:
            api.close()
        metadata, _ = open_stores(settings)
        try:
            root = metadata.get_run(root_id)
            metadata.write(runs=[replace(root, execution=execution_json(attempts))])
        finally:
            metadata.close()
    except Exception as error:  # noqa: BLE001 - the pipeline has ended either way
        print(f"driver: its pods were not recorded: {error}", file=sys.stderr, flush=True)
