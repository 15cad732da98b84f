"""CloudResolver: ``inline=False`` functions run as Kubernetes Jobs, each on the image of
its ``base_image_tag`` with its resource requirements; inline functions run here.

This first version drives the pipeline from the user's process (``detach=False``); the
driver Job (``detach=True``) is not built yet. Runs and artifacts are recorded through a
Sematic server that the pods reach too (``server_url``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sematic.core.engine import Execute
from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.core.images import ImageMap
from sematic.core.jobs import TERMINATION_LOG, WorkerJob, WorkerResult
from sematic.executors.processes import Exited
from sematic.kubernetes.jobs import JobOutcome, JobWatcher
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from sematic.resolvers.local import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import worker_artifact_store
from sematic.storage.serialization import deserialize

JOB_VARIABLE = "SEMATIC_WORKER_JOB"
WORKER_COMMAND = ["/opt/sematic/bin/sematic-worker", "--job-from-env"]


class KubernetesWorkers:
    """Workers as Jobs: one per ``inline=False`` call, followed with a watch."""

    def __init__(
        self,
        api: Any,
        images: ImageMap,
        cluster: ClusterSettings,
        settings: LocalSettings,
        *,
        unschedulable_after: float = 60.0,
    ) -> None:
        self._images = images
        self._cluster = cluster
        self._settings = settings
        self._watcher = JobWatcher(api, cluster.namespace, unschedulable_after=unschedulable_after)
        self._jobs: dict[str, str] = {}  # run id -> job name
        self._outcomes: dict[str, JobOutcome] = {}  # run id -> how its job ended

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None:
        run = command.run
        props = run.future.props
        pod_job = replace(job, result_path=TERMINATION_LOG, sys_path=[], main_path=None)
        name = _job_name(run.id, run.attempts)
        requirements = props.resource_requirements
        manifest = job_manifest(
            name=name,
            image=self._images.image_for(props),
            command=WORKER_COMMAND,
            settings=self._cluster,
            requirements=None if requirements is None else requirements.kubernetes,
            labels={"sematic.dev/run-id": run.id, "sematic.dev/root-id": command.root_id},
            env={JOB_VARIABLE: pod_job.to_json(), **(env or {})},
            deadline_seconds=None if job.timeout_mins is None else int(job.timeout_mins * 60),
        )
        self._watcher.submit(manifest)
        self._jobs[run.id] = name

    def poll(self) -> Exited | None:
        return self.wait_any(0)

    def wait_any(self, timeout: float) -> Exited | None:
        outcome = self._watcher.next_outcome(timeout)
        if outcome is None:
            return None
        run_id = next(r for r, name in self._jobs.items() if name == outcome.name)
        del self._jobs[run_id]
        self._outcomes[run_id] = outcome
        return Exited(run_id, 0 if outcome.succeeded else 1)

    def kill(self, key: str) -> None:
        name = self._jobs.pop(key, None)
        if name is not None:
            self._watcher.delete(name)

    def close(self) -> None:
        for key in list(self._jobs):
            self.kill(key)
        self._watcher.close()

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | str:
        outcome = self._outcomes.pop(exited.key)
        if outcome.termination_message:
            try:
                return WorkerResult.from_json(outcome.termination_message)
            except (ValueError, TypeError):
                pass
        return f"Job {outcome.name} ended without a result: {outcome.cause}: {outcome.message}"

    def pickle(self, result: WorkerResult) -> bytes | None:
        kept = result.pickle_artifact
        if kept is None:
            return None
        with worker_artifact_store(
            artifact_url=self._settings.artifact_url,
            server_url=self._settings.server_url,
            api_key=self._settings.api_key,
        ) as store:
            data: bytes = deserialize(store.get(kept["id"]), kept["type_description"], bytes)
        return data


def _job_name(run_id: str, attempt: int) -> str:
    return f"sematic-{re.sub(r'[^a-z0-9]', '', run_id.lower())[:40]}-{attempt}"


class CloudResolver(LocalResolver):
    """Resolves on Kubernetes: ``inline=False`` functions as Jobs, the rest here.

    - ``detach``: only ``False`` is supported so far (the pipeline is driven from this
      process; the call returns the pipeline's value).
    - ``images``: the image map (default: ``SEMATIC_IMAGES``, from ``sematic run --build``).
    - ``cluster``: namespace, service account, pull secrets, host network, pod template.
    - ``kubeconfig``: the cluster to use (default: ``$KUBECONFIG`` or ~/.kube/config).
    Runs are recorded through the Sematic server of ``settings.server_url``, which pods
    must reach too.
    """

    def __init__(
        self,
        *,
        detach: bool = True,
        images: ImageMap | None = None,
        cluster: ClusterSettings | None = None,
        kubeconfig: str | None = None,
        max_parallelism: int | None = None,
        settings: LocalSettings | None = None,
        unschedulable_after: float = 60.0,
    ) -> None:
        super().__init__(max_parallelism=max_parallelism or 10, progress=False, settings=settings)
        if detach:
            raise ConfigurationError(
                "CloudResolver(detach=True) (a driver Job) is not available yet: pass "
                "detach=False to drive the pipeline from this process"
            )
        self.images = images
        self.cluster = cluster or ClusterSettings()
        self.kubeconfig = kubeconfig
        self.unschedulable_after = unschedulable_after

    def _placement(
        self, future: Future, settings: LocalSettings
    ) -> tuple[KubernetesWorkers, ImageMap]:
        images = self.images or ImageMap.from_environment()
        if images is None:
            raise ConfigurationError(
                "CloudResolver needs container images: run the script with "
                "`sematic run --build`, or pass images=ImageMap(...)"
            )
        images.check_pipeline(future)
        if not settings.server_url:
            raise ConfigurationError(
                "CloudResolver records through a Sematic server its pods can reach: set "
                "server_url (sematic settings set server_url URL, or SEMATIC_SERVER_URL)"
            )
        from kubernetes import config

        api = config.new_client_from_config(self.kubeconfig)  # type: ignore[no-untyped-call]
        workers = KubernetesWorkers(
            api, images, self.cluster, settings, unschedulable_after=self.unschedulable_after
        )
        return workers, images

    def __repr__(self) -> str:
        return f"CloudResolver(detach=False, max_parallelism={self.max_parallelism})"
