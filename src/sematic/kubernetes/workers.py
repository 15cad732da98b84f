"""Workers as Kubernetes Jobs: one per ``inline=False`` call, on the image of the function's
``base_image_tag`` with its resource requirements, followed with a watch."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sematic.core import variables
from sematic.core.engine import Execute
from sematic.core.errors import (
    ConfigurationError,
    FunctionTimeoutError,
    WorkerFailedError,
    WorkerLostError,
)
from sematic.core.files import write_private
from sematic.core.images import ImageMap
from sematic.core.jobs import TERMINATION_LOG, WorkerJob, WorkerResult
from sematic.core.ports import Exited, LogSink, WorkerLoss
from sematic.kubernetes.manifests import (
    API_KEY_SECRET_KEY,
    KEEP_ANNOTATION,
    ROLE_LABEL,
    ROOT_LABEL,
    RUN_LABEL,
    ClusterSettings,
    job_manifest,
    label_value,
)

if TYPE_CHECKING:  # the kubernetes client is imported when a Job is about to run
    from sematic.kubernetes.watcher import JobOutcome

# A finished Job is deleted this long after its outcome was read: the run's result has
# reached the metadata store by then (the recorder flushes every 0.05 s), so a driver that
# restarts finds the run resolved and needs the Job no more.
FINISHED_JOB_GRACE_S = 1.0
WORKER = "/opt/sematic/bin/sematic-worker"
__all__ = ["ROOT_LABEL", "RUN_LABEL", "KubernetesWorkers", "job_name", "label_value"]


class KubernetesWorkers:
    """The ``Workers`` of CloudResolver: each call a Job, its result read from the pod's
    termination message. ``script`` is where the user's script sits in the images (its
    functions are loaded from there).

    The API key reaches pods from a Secret (``ClusterSettings.api_key_secret``, else one
    created for the pipeline and deleted at the end), never as a value in a Job. Finished
    Jobs are deleted once their outcome is recorded, unless ``keep_finished_jobs``. A pod's
    log is written to ``log_path(run_id)`` when its Job ends, as a worker process's is."""

    def __init__(
        self,
        api: Any,
        images: ImageMap,
        cluster: ClusterSettings,
        log_path: Callable[[str], Path],
        *,
        script: str | None,
        unschedulable_after: float = 60.0,
        root_id: str | None = None,
        log_sink: LogSink | None = None,
        preflight: str = "error",
    ) -> None:
        self._images = images
        self._cluster = cluster
        self._log_path = log_path
        self._script = script
        from sematic.kubernetes.pipelines import PipelineObjects
        from sematic.kubernetes.preflight import NodeCheck
        from sematic.kubernetes.watcher import JobWatcher

        self._watcher = JobWatcher(
            api,
            cluster.namespace,
            unschedulable_after=unschedulable_after,
            root_id=root_id,
            on_running=self._pod_running,
        )
        self._objects = PipelineObjects(api, cluster.namespace)
        self._jobs: dict[str, str] = {}  # run id -> job name
        self._outcomes: dict[str, JobOutcome] = {}  # run id -> how its job ended
        self._attempts: dict[str, dict[str, Any]] = {}  # run id -> its pod, as it ended
        self._finished: list[tuple[float, str]] = []  # (when it ended, job name)
        self._key_secret = cluster.api_key_secret
        self._created_secret: str | None = None  # ours to delete at the end
        # Steps found while running are checked as CloudResolver checks the others first:
        # one no node can take fails at once (nodes read again at most every 30 s).
        self._nodes = NodeCheck(api, preflight)
        self._refused: dict[str, WorkerLoss] = {}  # run id -> why it was not submitted
        from sematic.kubernetes.pod_logs import PodLogFollower

        # Each run's pod log followed while it runs (to the file, and to ``log_sink``).
        self._pod_logs = PodLogFollower(api, cluster.namespace, log_path, log_sink)

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
        plain = dict(env or {})
        key = plain.pop(variables.API_KEY, None)
        secret_env: dict[str, tuple[str, str]] = {}
        if key:  # the pod reads it from a Secret: the Job holds only the Secret's name
            secret_env[variables.API_KEY] = (self._secret_for(command.root_id, key),
                                            API_KEY_SECRET_KEY)  # fmt: skip
        manifest = job_manifest(
            name=name,
            image=self._images.image_for(props),
            command=[WORKER, "--job-from-env"],
            settings=self._cluster,
            requirements=None if requirements is None else requirements.kubernetes,
            labels={
                RUN_LABEL: label_value(run.id),
                ROOT_LABEL: label_value(command.root_id),
                ROLE_LABEL: "worker",
            },
            annotations=self._annotations(command.root_id),
            env={variables.WORKER_JOB: pod_job.to_json(), **plain},
            secret_env=secret_env,
            deadline_seconds=None if job.timeout_mins is None else int(job.timeout_mins * 60),
        )
        why = self._nodes.refusal(run.future.function.dotted_path,
                                  manifest["spec"]["template"]["spec"])  # fmt: skip
        if why is not None:
            self._refused[run.id] = WorkerLoss(f"was not submitted: {why}", ConfigurationError)
            return
        self._watcher.submit(manifest)
        self._jobs[run.id] = name

    def _annotations(self, root_id: str) -> dict[str, str]:
        kept = {KEEP_ANNOTATION: "true"} if self._cluster.keep_finished_jobs else {}
        return {ROOT_LABEL: root_id, **kept}

    def _secret_for(self, root_id: str, api_key: str) -> str:
        """The Secret pods read the key from: the configured one, else the pipeline's."""
        if self._key_secret is None:
            self._key_secret = self._objects.create_key_secret(root_id, api_key)
            self._created_secret = self._key_secret
        return self._key_secret

    def wait_any(self, timeout: float) -> Exited | None:
        if self._refused:
            return Exited(next(iter(self._refused)), 1)
        if self._finished:
            self._delete_finished(older_than=FINISHED_JOB_GRACE_S)
        outcome = self._watcher.next_outcome(timeout)
        if outcome is None:
            return None
        run_id = next(r for r, name in self._jobs.items() if name == outcome.name)
        del self._jobs[run_id]
        self._pod_logs.stop(run_id)  # the whole log is written next
        self._outcomes[run_id] = outcome
        self._attempts[run_id] = self._watcher.attempt(outcome)
        text = self._watcher.pod_log(outcome.pod) if outcome.pod else None
        if text:  # the run's log, as a worker process's would be (the executor ships it)
            write_private(self._log_path(run_id), text)
        self._finished.append((time.monotonic(), outcome.name))
        self._delete_finished(older_than=FINISHED_JOB_GRACE_S)
        return Exited(run_id, 0 if outcome.succeeded else 1)

    def _delete_finished(self, older_than: float) -> None:
        """Delete the Jobs whose outcome was read ``older_than`` seconds ago or earlier
        (their result and log are recorded), unless the settings keep them."""
        if self._cluster.keep_finished_jobs:
            self._finished.clear()
            return
        now = time.monotonic()
        while self._finished and now - self._finished[0][0] >= older_than:
            self._watcher.delete(self._finished.pop(0)[1])

    def kill(self, key: str) -> None:
        self._refused.pop(key, None)
        name = self._jobs.pop(key, None)
        if name is not None:
            self._watcher.delete(name)
        self._pod_logs.stop(key)

    def close(self) -> None:
        try:
            for key in list(self._jobs):
                self.kill(key)
            self._delete_finished(older_than=0.0)
            if self._created_secret is not None:
                self._objects.delete_secret(self._created_secret)
        finally:
            self._watcher.close()
            self._pod_logs.close()

    def _pod_running(self, job: str, pod: str) -> None:
        """The watcher saw the pod of the Job ``job`` running: follow its log (called on
        the watch's thread: the runs are copied at once)."""
        run_id = next((r for r, name in list(self._jobs.items()) if name == job), None)
        if run_id is not None:
            self._pod_logs.start(run_id, pod)

    def attempt(self, key: str) -> dict[str, Any] | None:
        """The pod the run ``key`` just ended in (``sematic.core.usage``), once."""
        return self._attempts.pop(key, None)

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        refused = self._refused.pop(exited.key, None)
        if refused is not None:
            return refused
        outcome = self._outcomes.pop(exited.key)
        if outcome.termination_message:
            try:
                return WorkerResult.from_json(outcome.termination_message)
            except (ValueError, TypeError):
                pass
        return loss_of(outcome)


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
