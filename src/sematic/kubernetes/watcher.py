"""Submits Jobs and follows their pods with a Kubernetes watch, naming why each ended.

``JobWatcher.submit`` creates a Job from a manifest; ``next_outcome`` returns, as soon as
the watch reports it, how one of them ended: succeeded, or failed with a cause:

========================  ===============================================  ==============
cause                     seen as                                          infrastructure
========================  ===============================================  ==============
``OOMKilled``             the container terminated with reason OOMKilled   no
``ImagePullFailed``       ErrImagePull, ImagePullBackOff, InvalidImageName yes
``Unschedulable``         PodScheduled False for ``unschedulable_after`` s  yes
``Evicted``               the pod's reason is Evicted                      yes
``DeadlineExceeded``      the pod's reason is DeadlineExceeded             no
``Deleted``               the pod vanished before it finished              yes
``ExitCode``              a non-zero exit; the message ends with the log   no
========================  ===============================================  ==============

Infrastructure causes are the ones worth retrying (the function itself did not fail).

When the connection to the API server breaks, the watch is opened again after a pause that
doubles each time (from ``backoff`` up to ``max_backoff`` seconds), each failure logged
(logger ``sematic.kubernetes.watcher``); after ``max_failures`` in a row ``next_outcome``
raises an ``InfrastructureError`` instead of waiting for a watch that cannot come back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from sematic.core.errors import InfrastructureError
from sematic.kubernetes.manifests import MANAGED_BY
from sematic.kubernetes.pipelines import PipelineObjects

_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_INFRASTRUCTURE = {"ImagePullFailed", "Unschedulable", "Evicted", "Deleted"}
LOG_LINES = 20
# The watch's connection broke this many times in a row: give up (about 75 s of retries).
MAX_WATCH_FAILURES = 10
WATCH_BACKOFF_S = 0.5
MAX_WATCH_BACKOFF_S = 15.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How the Job ``name`` ended. ``cause`` is None when it succeeded."""

    name: str
    cause: str | None = None
    message: str = ""
    # What the container wrote to its termination message (a worker's result), if any.
    termination_message: str | None = None
    pod: str | None = None  # the pod that ran it, when there was one

    @property
    def succeeded(self) -> bool:
        return self.cause is None

    @property
    def infrastructure(self) -> bool:
        """The cluster failed the function (worth a retry), not the function itself."""
        return self.cause in _INFRASTRUCTURE


class JobWatcher:
    """Jobs of one namespace, followed by a watch on their pods (no polling)."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        *,
        unschedulable_after: float = 60.0,
        max_failures: int = MAX_WATCH_FAILURES,
        backoff: float = WATCH_BACKOFF_S,
        max_backoff: float = MAX_WATCH_BACKOFF_S,
    ) -> None:
        # The client's models are loosely typed (and payloads are plain dicts here): Any.
        self._batch: Any = client.BatchV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self._objects = PipelineObjects(api, namespace)
        self._namespace = namespace
        self._unschedulable_after = unschedulable_after
        self._pending: dict[str, float] = {}  # job name -> when it was submitted
        self._unschedulable: dict[str, tuple[float, str]] = {}  # job -> (since, message)
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._late: list[JobOutcome] = []  # outcomes known without an event
        self._stop = threading.Event()
        self._max_failures = max_failures
        self._backoff = backoff
        self._max_backoff = max(max_backoff, backoff)
        self._failures = 0  # the watch's connection broke this many times in a row
        self._version: str | None = None  # the pods' resource version the watch is at
        self._watch: Any = watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._follow, name="sematic-pod-watch", daemon=True)
        self._thread.start()

    def submit(self, manifest: dict[str, Any]) -> str:
        """Create the Job; if one of that name exists already (a restarted driver
        re-entering its pipeline), follow that one instead."""
        name = str(manifest["metadata"]["name"])
        self._pending[name] = time.monotonic()
        try:
            self._objects.create_job(manifest)
        except ApiException as error:
            if error.status != 409:
                self._pending.pop(name, None)
                raise
            self._adopt(name)
        except BaseException:
            self._pending.pop(name, None)
            raise
        return name

    def _adopt(self, name: str) -> None:
        """Replay the pods of an existing Job: the watch reported them before we cared."""
        pods = self._core.list_namespaced_pod(self._namespace, label_selector=f"job-name={name}")
        for pod in pods.items:
            self._events.put(("MODIFIED", pod))
        if not pods.items:  # its pod is gone too: the Job's own verdict, if it has one
            late = self._past_deadline(name)
            if late is not None:
                self._late.append(late)

    def running(self) -> list[str]:
        return list(self._pending)

    def next_outcome(self, timeout: float) -> JobOutcome | None:
        """The next Job to end, or None after ``timeout`` seconds.

        Raises the ``ApiException`` the watch ended with, or an ``InfrastructureError``
        once its connection broke ``max_failures`` times in a row.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self._late:
                known = self._late.pop(0)
                self._pending.pop(known.name, None)
                return known
            late = self._late_unschedulable()
            if late is not None:
                return late
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                kind, pod = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if kind == "ERROR":
                raise pod
            outcome = self._outcome(kind, pod)
            if outcome is not None and outcome.name in self._pending:
                outcome = replace(outcome, pod=pod.metadata.name)
                self._pending.pop(outcome.name)
                self._unschedulable.pop(outcome.name, None)
                return outcome

    def delete(self, name: str) -> None:
        """Deletes the Job and its pods (now, not gracefully: a cancel)."""
        self._pending.pop(name, None)
        self._unschedulable.pop(name, None)
        self._remove(name)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self._batch.delete_namespaced_job(
                name, self._namespace, propagation_policy="Background", grace_period_seconds=0
            )

    def close(self) -> None:
        self._stop.set()
        self._watch.stop()
        self._thread.join(timeout=5)

    # -- the watch thread ----------------------------------------------------------------

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow_once()
            except ApiException as error:
                if error.status == 410:  # the version is too old: list again
                    self._version = None
                    continue
                if not self._stop.is_set():
                    self._events.put(("ERROR", error))
                return
            except Exception as error:  # noqa: BLE001 - the connection broke: watch again
                if self._stop.is_set() or self._gave_up(error):
                    return

    def _follow_once(self) -> None:
        """List the pods if the watch has no version yet, then follow their changes until
        the watch's timeout (or ``close``)."""
        if self._version is None:
            listed = self._core.list_namespaced_pod(self._namespace, label_selector=_SELECTOR)
            self._reconnected()
            self._version = listed.metadata.resource_version
            for pod in listed.items:
                self._events.put(("MODIFIED", pod))
        for event in self._watch.stream(
            self._core.list_namespaced_pod,
            self._namespace,
            label_selector=_SELECTOR,
            resource_version=self._version,
            timeout_seconds=60,
        ):
            self._reconnected()
            pod = event["object"]
            self._version = pod.metadata.resource_version
            self._events.put((event["type"], pod))
            if self._stop.is_set():
                return
        self._reconnected()

    def _reconnected(self) -> None:
        """The API server answered: the failures in a row, if any, are over."""
        if self._failures:
            _log.warning(
                "watching the pods of namespace %s again after %d failures",
                self._namespace,
                self._failures,
            )
            self._failures = 0

    def _gave_up(self, error: Exception) -> bool:
        """Count one broken watch: log it and wait before the next try; or, after
        ``max_failures`` in a row, hand ``next_outcome`` an InfrastructureError (True)."""
        self._failures += 1
        what = f"{type(error).__name__}: {error}"
        if self._failures >= self._max_failures:
            failure = InfrastructureError(
                f"lost the watch on the pods of namespace {self._namespace}: the Kubernetes "
                f"API failed {self._failures} times in a row (last: {what}). Check that the "
                "cluster's API server is reachable from here (the kubeconfig's server)."
            )
            failure.__cause__ = error
            _log.error("%s", failure)
            self._events.put(("ERROR", failure))
            return True
        delay = min(self._backoff * 2.0 ** min(self._failures - 1, 32), self._max_backoff)
        _log.warning(
            "the watch on the pods of namespace %s broke (failure %d of %d in a row, "
            "watching again in %.1f s): %s",
            self._namespace,
            self._failures,
            self._max_failures,
            delay,
            what,
        )
        self._stop.wait(delay)
        return False

    # -- classification ------------------------------------------------------------------

    def _outcome(self, kind: str, pod: Any) -> JobOutcome | None:
        job = (pod.metadata.labels or {}).get("job-name")
        if job is None or job not in self._pending:
            return None  # not one of ours (another driver's, or a driver's own pod)
        status = pod.status
        if kind == "DELETED" and status.phase not in ("Succeeded", "Failed"):
            return self._deleted(job, pod.metadata.name)
        if status.phase == "Succeeded":
            if pod.metadata.deletion_timestamp is not None:
                # Killed for the Job's deadline, a pod may still be reported as succeeded.
                return self._past_deadline(job) or JobOutcome(job)
            return JobOutcome(job, termination_message=_termination_message(pod))
        if status.phase == "Failed":
            return replace(self._failure(job, pod), termination_message=_termination_message(pod))
        for container in status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting is not None and waiting.reason in _PULL_FAILURES:
                self._remove(job)  # else the kubelet keeps trying
                return JobOutcome(
                    job,
                    "ImagePullFailed",
                    f"cannot pull the image {container.image}: {waiting.reason}: "
                    f"{waiting.message or ''}".strip(),
                )
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
                since = self._unschedulable.get(job, (time.monotonic(), ""))[0]
                self._unschedulable[job] = (since, condition.message or "")
                return None
            if condition.type == "PodScheduled" and condition.status == "True":
                self._unschedulable.pop(job, None)
        return None

    def _past_deadline(self, job: str) -> JobOutcome | None:
        """The Job's own verdict when it ran past ``activeDeadlineSeconds`` (its pods are
        then killed or deleted, which alone would look like an ordinary failure)."""
        with contextlib.suppress(ApiException):
            state = self._batch.read_namespaced_job_status(job, self._namespace).status
            for condition in state.conditions or []:
                if condition.type == "Failed" and condition.reason == "DeadlineExceeded":
                    return JobOutcome(job, "DeadlineExceeded", condition.message or "")
        return None

    def _deleted(self, job: str, pod_name: str) -> JobOutcome:
        """A pod gone before it finished: the Job's deadline, or someone deleted it."""
        late = self._past_deadline(job)
        if late is not None:
            return late
        self._remove(job)  # else the Job controller would start another pod
        return JobOutcome(job, "Deleted", f"the pod {pod_name} was deleted before it finished")

    def _late_unschedulable(self) -> JobOutcome | None:
        now = time.monotonic()
        for job, (since, message) in list(self._unschedulable.items()):
            if now - since >= self._unschedulable_after and job in self._pending:
                self.delete(job)
                return JobOutcome(
                    job,
                    "Unschedulable",
                    f"no node can run it after {now - since:.0f} s: {message}",
                )
        return None

    def _failure(self, job: str, pod: Any) -> JobOutcome:
        status = pod.status
        if status.reason == "Evicted":
            return JobOutcome(job, "Evicted", f"the pod was evicted: {status.message or ''}")
        late = self._past_deadline(job)
        if late is not None:
            return late
        if status.reason == "DeadlineExceeded":
            return JobOutcome(job, "DeadlineExceeded", status.message or "deadline exceeded")
        for container in status.container_statuses or []:
            ended = container.state.terminated if container.state else None
            if ended is None:
                continue
            if ended.reason == "OOMKilled":
                limit = _memory_limit(pod, container.name)
                return JobOutcome(
                    job,
                    "OOMKilled",
                    f"the container ran out of memory (limit {limit}) and was killed",
                )
            return JobOutcome(
                job,
                "ExitCode",
                f"the container exited with code {ended.exit_code}; its last lines:\n"
                + self._last_lines(pod.metadata.name),
            )
        return JobOutcome(job, "ExitCode", status.message or "the pod failed")

    def pod_log(self, pod_name: str) -> str | None:
        """What the pod printed (None when the kubelet no longer has it)."""
        try:
            return str(self._core.read_namespaced_pod_log(pod_name, self._namespace))
        except ApiException:
            return None

    def _last_lines(self, pod_name: str) -> str:
        try:
            text = self._core.read_namespaced_pod_log(
                pod_name, self._namespace, tail_lines=LOG_LINES
            )
        except ApiException as error:
            return f"(no logs: {error.reason})"
        return str(text).rstrip("\n")


def _memory_limit(pod: Any, container_name: str) -> str:
    for container in pod.spec.containers:
        if container.name == container_name and container.resources and container.resources.limits:
            return str(container.resources.limits.get("memory", "none"))
    return "none"


def _termination_message(pod: Any) -> str | None:
    for container in pod.status.container_statuses or []:
        ended = container.state.terminated if container.state else None
        if ended is not None and ended.message:
            return str(ended.message)
    return None
