"""Workers as Kubernetes Jobs: one per ``inline=False`` call, on the image of the function's
``base_image_tag`` with its resource requirements, followed with a watch."""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from sematic.core.engine import Execute
from sematic.core.errors import FunctionTimeoutError, WorkerFailedError, WorkerLostError
from sematic.core.images import ImageMap
from sematic.core.jobs import TERMINATION_LOG, WorkerJob, WorkerResult
from sematic.executors.processes import Exited
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from sematic.resolvers.local_executor import WorkerLoss
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import worker_artifact_store
from sematic.storage.serialization import deserialize

if TYPE_CHECKING:  # the kubernetes client is imported when a Job is about to run
    from sematic.kubernetes.jobs import JobOutcome

JOB_VARIABLE = "SEMATIC_WORKER_JOB"
WORKER = "/opt/sematic/bin/sematic-worker"
RUN_LABEL = "sematic.dev/run-id"
ROOT_LABEL = "sematic.dev/root-id"


def label_value(run_id: str) -> str:
    """A run id as a label value (at most 63 characters)."""
    return re.sub(r"[^A-Za-z0-9]", "", run_id)[:63]


class KubernetesWorkers:
    """The ``Workers`` of CloudResolver: each call a Job, its result read from the pod's
    termination message. ``script`` is where the user's script sits in the images (its
    functions are loaded from there)."""

    def __init__(
        self,
        api: Any,
        images: ImageMap,
        cluster: ClusterSettings,
        settings: LocalSettings,
        *,
        script: str | None,
        unschedulable_after: float = 60.0,
    ) -> None:
        self._images = images
        self._cluster = cluster
        self._settings = settings
        self._script = script
        from sematic.kubernetes.jobs import JobWatcher

        self._watcher = JobWatcher(api, cluster.namespace, unschedulable_after=unschedulable_after)
        self._jobs: dict[str, str] = {}  # run id -> job name
        self._outcomes: dict[str, JobOutcome] = {}  # run id -> how its job ended

    def start(self, command: Execute, job: WorkerJob, env: dict[str, str] | None) -> None:
        run = command.run
        props = run.future.props
        pod_job = replace(
            job,
            result_path=TERMINATION_LOG,
            # As for `python SCRIPT`: the script's folder is importable.
            sys_path=[str(PurePosixPath(self._script).parent)] if self._script else [],
            main_path=self._script,
            server_url=self._cluster.server_url or job.server_url,
        )
        name = job_name(run.id, run.attempts)
        requirements = props.resource_requirements
        manifest = job_manifest(
            name=name,
            image=self._images.image_for(props),
            command=[WORKER, "--job-from-env"],
            settings=self._cluster,
            requirements=None if requirements is None else requirements.kubernetes,
            labels={RUN_LABEL: label_value(run.id), ROOT_LABEL: label_value(command.root_id)},
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
        text = self._watcher.pod_log(outcome.pod) if outcome.pod else None
        if text:  # the run's log, as a worker process's would be (the executor ships it)
            path = self._settings.log_path(run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return Exited(run_id, 0 if outcome.succeeded else 1)

    def kill(self, key: str) -> None:
        name = self._jobs.pop(key, None)
        if name is not None:
            self._watcher.delete(name)

    def close(self) -> None:
        for key in list(self._jobs):
            self.kill(key)
        self._watcher.close()

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        outcome = self._outcomes.pop(exited.key)
        if outcome.termination_message:
            try:
                return WorkerResult.from_json(outcome.termination_message)
            except (ValueError, TypeError):
                pass
        return loss_of(outcome)

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


def loss_of(outcome: JobOutcome) -> WorkerLoss:
    """Why a Job ended without a result, and what the run fails with: the cluster's faults
    (evicted, deleted, unschedulable, image not pulled) are retried by default; running out
    of memory, crashing or overrunning the deadline are the function's."""
    cause = outcome.cause or "NoResult"
    reason = f"ran in Job {outcome.name}, which ended without a result: {cause}: {outcome.message}"
    if cause == "DeadlineExceeded":
        return WorkerLoss(reason, FunctionTimeoutError)
    kind = WorkerLostError if outcome.infrastructure else WorkerFailedError
    return WorkerLoss(reason, functools.partial(kind, cause=cause))


def job_name(run_id: str, attempt: int) -> str:
    return f"sematic-{label_value(run_id).lower()[:40]}-{attempt}"
