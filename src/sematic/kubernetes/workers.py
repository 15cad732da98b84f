"""Workers as Kubernetes Jobs: one per ``inline=False`` call, on the image of the function's
``base_image_tag`` with its resource requirements, followed with a watch."""

from __future__ import annotations

import functools
import json
import sys
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
    StoreError,
    WorkerFailedError,
    WorkerLostError,
)
from sematic.core.files import write_private
from sematic.core.images import ImageMap
from sematic.core.jobs import TERMINATION_LOG, WarmPod, WorkerJob, WorkerResult
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
    from sematic.kubernetes.warm import Channels, WarmPods
    from sematic.kubernetes.watcher import JobOutcome

# A finished Job is deleted this long after its outcome was read: the run's result has
# reached the metadata store by then (the recorder flushes every 0.05 s), so a driver that
# restarts finds the run resolved and needs the Job no more.
FINISHED_JOB_GRACE_S = 1.0
WORKER = "/opt/sematic/bin/sematic-worker"
# What a warm pod's step reports of itself, rather than its pod's (``pod_attempt``).
_STEP_OWN = frozenset({"pod", "node", "started_at", "finished_at", "ended", "exit_code"})
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
        warm: WarmPods | None = None,
        mailbox: Channels | None = None,
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
        self._warm = None
        if warm is not None and warm.enabled and mailbox is not None:
            from sematic.kubernetes.warm import WarmPools

            root = label_value(root_id or "pipeline").lower()
            self._warm = WarmPools(mailbox, root, warm, self._watcher.wake)
        self.jobs_created = 0  # Jobs of one step each, and warm pods (benchmarks)

    @property
    def pods_created(self) -> int:
        """The worker Jobs submitted: one per step run cold, one per warm pod."""
        return self.jobs_created + (self._warm.pods_created if self._warm else 0)

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
        if self._warm is not None and not props.own_pod:
            try:
                self._start_warm(command, pod_job, plain, secret_env, manifest)
                return
            except StoreError as error:  # e.g. a server without a mailbox: a Job each
                print(f"warning: warm pods are off for this pipeline: {error}", file=sys.stderr)
                self._warm = None
        self._watcher.submit(manifest)
        self.jobs_created += 1
        self._jobs[run.id] = name

    def _start_warm(
        self,
        command: Execute,
        job: WorkerJob,
        env: dict[str, str],
        secret_env: dict[str, tuple[str, str]],
        cold: dict[str, Any],
    ) -> None:
        """Run the step in a warm pod of its image and requirements (a new one if none is
        idle): a pod like the step's own Job's, serving steps until told to stop."""
        from sematic.kubernetes.warm import pool_key

        assert self._warm is not None
        if not self._warm.pods_created:
            self._delete_stale_warm_pods(command.root_id)
        requirements = command.run.future.props.resource_requirements
        wanted = None if requirements is None else requirements.kubernetes
        container = cold["spec"]["template"]["spec"]["containers"][0]

        def pod_manifest(name: str, channel: str) -> dict[str, Any]:
            pod = WarmPod(
                server_url=job.server_url or "",
                channel=channel,
                results=self._warm.results_channel,  # type: ignore[union-attr]
                sys_path=job.sys_path,
                main_path=job.main_path,
            )
            return job_manifest(
                name=name,
                image=container["image"],
                command=[WORKER, "--warm-from-env"],
                settings=self._cluster,
                requirements=wanted,
                labels={ROOT_LABEL: label_value(command.root_id), ROLE_LABEL: "warm"},
                annotations=self._annotations(command.root_id),
                env={variables.WARM_POOL: pod.to_json()},
                secret_env=secret_env,
            )

        self._warm.start(
            command.run.id,
            json.loads(job.to_json()),
            env,
            pool_key(container["image"], wanted),
            pod_manifest,
            self._watcher.submit,
        )

    def _delete_stale_warm_pods(self, root_id: str) -> None:
        """A driver replaced mid-pipeline: its predecessor's warm pods serve no one (the
        step one was running is run again)."""
        from sematic.kubernetes.pipelines import JobStatus

        label = label_value(root_id)
        for job in self._objects.jobs():
            if job.role == "warm" and job.root == label and job.status is JobStatus.ACTIVE:
                self._objects.delete_job(job.name)

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
        warm = self._warm_ended()
        if warm is not None:
            return warm
        if self._finished:
            self._delete_finished(older_than=FINISHED_JOB_GRACE_S)
        outcome = self._watcher.next_outcome(timeout)
        if outcome is None:
            return self._warm_ended()
        if self._warm is not None and self._warm.owns(outcome.name):
            lost = self._warm.pod_ended(outcome.name, loss_of(outcome))
            self._finished.append((time.monotonic(), outcome.name))
            if not lost:
                return None
            self._attempts[lost[0]] = self._watcher.attempt(outcome)
            return Exited(lost[0], 1)
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

    def _warm_ended(self) -> Exited | None:
        """A step a warm pod ran that ended (its log written, as a Job's is); pods idle
        for too long are told to end meanwhile."""
        if self._warm is None:
            return None
        ended = self._warm.next_ended()
        if ended is None:
            self._warm.idle_to_stop()
            return None
        run_id, log = ended
        if log:
            write_private(self._log_path(run_id), log)
        failed = isinstance(self._warm.outcome_peek(run_id), WorkerLoss)
        return Exited(run_id, 1 if failed else 0)

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
        if self._warm is not None and self._warm.runs(key):
            name = self._warm.kill(key)
            if name is not None:
                self._watcher.delete(name)
        name = self._jobs.pop(key, None)
        if name is not None:
            self._watcher.delete(name)
        self._pod_logs.stop(key)

    def close(self) -> None:
        try:
            for name, busy in self._warm.close() if self._warm is not None else ():
                if self._cluster.keep_finished_jobs and not busy:  # they end on their own
                    self._watcher.forget(name)
                else:
                    self._watcher.delete(name)
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
        if self._warm is not None and key not in self._attempts:
            warm = self._warm.attempt(key)
            pod = None if warm is None else self._watcher.pod_of(warm["job"])
            if warm is None or pod is None:
                return warm
            from sematic.kubernetes.watcher import pod_attempt

            admitted = pod_attempt(pod)  # the pod as admitted: resources, image digest
            return {**warm, **{k: v for k, v in admitted.items() if k not in _STEP_OWN}}
        return self._attempts.pop(key, None)

    def result(self, job: WorkerJob, exited: Exited) -> WorkerResult | WorkerLoss:
        refused = self._refused.pop(exited.key, None)
        if refused is not None:
            return refused
        if self._warm is not None and self._warm.ended(exited.key):
            return self._warm.outcome(exited.key)
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
