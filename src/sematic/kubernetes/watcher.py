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
Given a ``root_id``, the watch follows only that pipeline's pods (a label selector).

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from sematic.core.errors import InfrastructureError
from sematic.core.usage import NODE_TYPE_LABEL
from sematic.kubernetes.manifests import MANAGED_BY, ROOT_LABEL, label_value
from sematic.kubernetes.pipelines import PipelineObjects

_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_INFRASTRUCTURE = {"ImagePullFailed", "Unschedulable", "Evicted", "Deleted"}
LOG_LINES = 20
MAX_EVENTS = 20  # of a pod's events, the newest recorded with its attempt
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
    # What is known of that pod: node, image digest, resources, its container's times and
    # exit (``sematic.core.usage``; completed by ``JobWatcher.attempt``).
    attempt: dict[str, Any] | None = None

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
        root_id: str | None = None,
        max_failures: int = MAX_WATCH_FAILURES,
        backoff: float = WATCH_BACKOFF_S,
        max_backoff: float = MAX_WATCH_BACKOFF_S,
        on_running: Callable[[str, str], None] | None = None,
    ) -> None:
        # The client's models are loosely typed (and payloads are plain dicts here): Any.
        self._batch: Any = client.BatchV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self._objects = PipelineObjects(api, namespace)
        self._namespace = namespace
        # One pipeline's driver watches only its pipeline's pods: many pipelines in one
        # namespace do not each receive every other's events.
        self._selector = _SELECTOR
        if root_id is not None:
            self._selector += f",{ROOT_LABEL}={label_value(root_id)}"
        self.events_seen = 0  # pod events the watch delivered (benchmarks/watch_events.py)
        self._unschedulable_after = unschedulable_after
        self._pending: dict[str, float] = {}  # job name -> when it was submitted
        self._unschedulable: dict[str, tuple[float, str]] = {}  # job -> (since, message)
        self._pods: dict[str, Any] = {}  # job -> its pod as last seen
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
        # ``on_running(job_name, pod_name)``, once per pod of ours seen running
        self._on_running = on_running
        self._seen_running: set[str] = set()

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

    def pod_of(self, job: str) -> Any | None:
        """The pod of the Job ``job`` (one not yet ended) as the watch last saw it."""
        return self._pods.get(job)

    def wake(self) -> None:
        """Make a ``next_outcome`` waiting now (or the next one) return None at once: news
        from elsewhere (a warm pod's step ended) is waiting."""
        self._events.put(("WAKE", None))

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
            if kind == "WAKE":
                return None
            outcome = self._outcome(kind, pod)
            self._notice_running(pod)
            if outcome is not None and outcome.name in self._pending:
                outcome = replace(outcome, pod=pod.metadata.name, attempt=pod_attempt(pod))
                self._pending.pop(outcome.name)
                self._unschedulable.pop(outcome.name, None)
                self._pods.pop(outcome.name, None)
                return outcome

    def delete(self, name: str) -> None:
        """Deletes the Job and its pods (now, not gracefully: a cancel)."""
        self.forget(name)
        self._remove(name)

    def forget(self, name: str) -> None:
        """Stop following the Job ``name`` (it is left to end)."""
        self._pending.pop(name, None)
        self._unschedulable.pop(name, None)
        self._pods.pop(name, None)

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
            listed = self._core.list_namespaced_pod(self._namespace, label_selector=self._selector)
            self._reconnected()
            self._version = listed.metadata.resource_version
            for pod in listed.items:
                self._events.put(("MODIFIED", pod))
        for event in self._watch.stream(
            self._core.list_namespaced_pod,
            self._namespace,
            label_selector=self._selector,
            resource_version=self._version,
            timeout_seconds=60,
        ):
            self._reconnected()
            self.events_seen += 1
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
        self._pods[job] = pod
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
                pod = self._pods.get(job)
                self.delete(job)
                return JobOutcome(
                    job,
                    "Unschedulable",
                    f"no node can run it after {now - since:.0f} s: {message}",
                    pod=None if pod is None else pod.metadata.name,
                    attempt=None if pod is None else pod_attempt(pod),
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

    def _notice_running(self, pod: Any) -> None:
        """Tell ``on_running`` of the first sight of a pending Job's pod
        running (a failing hook is only logged)."""
        job = (pod.metadata.labels or {}).get("job-name")
        name = pod.metadata.name
        if self._on_running is None or job not in self._pending or name in self._seen_running:
            return
        if pod.status is None or pod.status.phase != "Running":
            return
        self._seen_running.add(name)
        try:
            self._on_running(job, name)
        except Exception as error:  # noqa: BLE001 - following logs never fails a run
            _log.warning("following the log of pod %s failed: %s", name, error)

    def pod_log(self, pod_name: str) -> str | None:
        """What the pod printed (None when the kubelet no longer has it)."""
        try:
            return str(self._core.read_namespaced_pod_log(pod_name, self._namespace))
        except ApiException:
            return None

    def attempt(self, outcome: JobOutcome) -> dict[str, Any]:
        """The attempt ``outcome`` ended: its pod as last seen, how it ended, and what the
        scheduler and the kubelet said of it (each read is best effort)."""
        attempt = dict(outcome.attempt or {"job": outcome.name, "pod": outcome.pod})
        attempt["ended"] = outcome.cause or "Succeeded"
        if outcome.message:
            attempt["message"] = outcome.message[:2000]
        # Best effort: the run's outcome does not depend on these reads.
        with contextlib.suppress(Exception):
            if outcome.pod:
                attempt["events"] = self._pod_events(outcome.pod)
        node = attempt.get("node")
        with contextlib.suppress(Exception):  # RBAC may not let a driver read nodes
            if node:
                labels = self._core.read_node(node).metadata.labels or {}
                if labels.get(NODE_TYPE_LABEL):
                    attempt["node_type"] = labels[NODE_TYPE_LABEL]
        return attempt

    def _pod_events(self, pod_name: str) -> list[dict[str, Any]]:
        """The pod's events, oldest first (at most ``MAX_EVENTS``)."""
        listed = self._core.list_namespaced_event(
            self._namespace,
            field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod_name}",
        )
        events = []
        for event in listed.items:
            when = event.last_timestamp or event.event_time or event.first_timestamp
            events.append(
                {
                    "at": when.timestamp() if when is not None else None,
                    "reason": event.reason,
                    "message": (event.message or "")[:500],
                    "count": event.count or 1,
                }
            )
        events.sort(key=lambda e: e["at"] or 0.0)
        return events[-MAX_EVENTS:]

    def _last_lines(self, pod_name: str) -> str:
        try:
            text = self._core.read_namespaced_pod_log(
                pod_name, self._namespace, tail_lines=LOG_LINES
            )
        except ApiException as error:
            return f"(no logs: {error.reason})"
        return str(text).rstrip("\n")


def pod_attempt(pod: Any) -> dict[str, Any]:
    """What a pod says of the attempt it ran: names, node, image, resources as admitted,
    and its container's start and end (what it leaves out, it does not know)."""
    attempt: dict[str, Any] = {
        "job": (pod.metadata.labels or {}).get("job-name"),
        "pod": pod.metadata.name,
    }
    spec, status = pod.spec, pod.status
    containers = (spec.containers if spec is not None else None) or []
    if not containers:
        return attempt
    container = containers[0]
    resources = container.resources
    pinned = (spec.node_selector or {}).get(NODE_TYPE_LABEL)
    if pinned:  # the node type, even where reading the node is not allowed
        attempt["node_type"] = pinned
    attempt.update(
        node=spec.node_name,
        image=container.image,
        requests={k: str(v) for k, v in ((resources and resources.requests) or {}).items()},
        limits={k: str(v) for k, v in ((resources and resources.limits) or {}).items()},
    )
    for state in (status.container_statuses if status is not None else None) or []:
        if state.name == container.name:
            attempt.update(_container_times(state))
    return attempt


def driver_attempts(api: client.ApiClient, namespace: str, pod_name: str) -> list[dict[str, Any]]:
    """The attempts of the driver Job whose pod is ``pod_name`` (this process's pod): each
    of its pods, oldest first, the ones still running (this one) as ending now."""
    core: Any = client.CoreV1Api(api)
    own = core.read_namespaced_pod(pod_name, namespace)
    job = (own.metadata.labels or {}).get("job-name")
    pods = [own]
    if job:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp.timestamp())
    attempts = []
    now = time.time()
    for pod in pods:
        attempt = pod_attempt(pod)
        if "started_at" in attempt and "finished_at" not in attempt:
            attempt["finished_at"] = now  # still running: until now
        phase = pod.status.phase if pod.status is not None else None
        reason = pod.status.reason if pod.status is not None else None
        attempt["ended"] = reason or ("Succeeded" if phase in ("Running", "Succeeded") else phase)
        attempts.append(attempt)
    return attempts


def _container_times(state: Any) -> dict[str, Any]:
    known: dict[str, Any] = {}
    if state.image_id:
        known["image_digest"] = state.image_id.rpartition("@")[2] or state.image_id
    ended = state.state.terminated if state.state else None
    running = state.state.running if state.state else None
    if ended is not None:
        known["exit_code"] = ended.exit_code
        if ended.started_at is not None:
            known["started_at"] = ended.started_at.timestamp()
        if ended.finished_at is not None:
            known["finished_at"] = ended.finished_at.timestamp()
    elif running is not None and running.started_at is not None:
        known["started_at"] = running.started_at.timestamp()
    return known


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
