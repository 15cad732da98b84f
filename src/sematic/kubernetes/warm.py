"""Warm worker pods: steps that share an image and Kubernetes requirements run one after
another in a pod that stays up, instead of a Job each.

A pool per (image, requirements) grows by one pod when a step finds none of its pods idle
(so up to the pipeline's ``max_parallelism``), loses a pod once it has been idle
``idle_seconds`` (``gpu_idle_seconds`` for pods holding GPUs), and is gone when the
pipeline ends; should the driver die, each pod ends once it has heard nothing for
``orphan_seconds`` and the reaper deletes the Jobs of pipelines that ended.

Steps and results travel through the server's mailbox (``sematic.server.mailbox``): the
driver posts a step to its pod's channel, the pod (``sematic.worker.warm``) runs it in a
forked process and posts what it ended with to the driver's results channel.
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sematic.core.errors import (
    ConfigurationError,
    FunctionTimeoutError,
    WorkerFailedError,
    WorkerLostError,
)
from sematic.core.jobs import WorkerResult
from sematic.core.ports import WorkerLoss
from sematic.core.usage import GPU_RESOURCES

RESULTS_WAIT_S = 20.0


@dataclass(frozen=True, slots=True)
class WarmPods:
    """``CloudResolver(warm_pods=...)``: whether steps share warm pods, and for how long an
    idle pod is kept (seconds; a pod holding GPUs ``gpu_idle_seconds``)."""

    enabled: bool = True
    idle_seconds: float = 30.0
    gpu_idle_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigurationError(f"WarmPods(enabled=...) takes a bool, got {self.enabled!r}")
        for name in ("idle_seconds", "gpu_idle_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"WarmPods({name}=...) takes seconds >= 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WarmPods:
        return cls(**data)


@dataclass(slots=True)
class _Pod:
    job: str  # its Job's name
    channel: str
    gpu: bool
    requests: dict[str, str]
    limits: dict[str, str]
    image: str
    ticket: str | None = None  # the step it runs, if any
    idle_since: float = field(default_factory=time.monotonic)
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class _Step:
    run_id: str
    pod: _Pod


class Channels(Protocol):
    """The server's mailbox as the driver reads it (``HttpMailbox``)."""

    def post(self, channel: str, message: dict[str, Any]) -> int: ...

    def read(
        self, channel: str, after: int, limit: int = 100, wait: float = 0.0
    ) -> list[tuple[int, dict[str, Any]]]: ...

    def drop(self, channel: str) -> int: ...

    def close(self) -> None: ...


class WarmPools:
    """The warm pods of one pipeline's driver. Not thread-safe: the scheduler's thread
    calls everything but the results reader."""

    def __init__(
        self, mailbox: Channels, root_label: str, settings: WarmPods, wake: Callable[[], None]
    ) -> None:
        self._mailbox = mailbox
        self._settings = settings
        self._token = uuid.uuid4().hex[:12]
        self._root = root_label
        self._prefix = f"warm/{root_label}/{self._token}"
        self._results_channel = f"{self._prefix}/results"
        self._pools: dict[str, list[_Pod]] = {}
        self._pods: dict[str, _Pod] = {}  # job name -> pod
        self._steps: dict[str, _Step] = {}  # ticket -> step
        self._tickets: dict[str, str] = {}  # run id -> ticket
        self._reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self._outcomes: dict[str, WorkerResult | WorkerLoss] = {}  # run id -> how it ended
        self._attempts: dict[str, dict[str, Any]] = {}  # run id -> the attempt it ended
        self._wake = wake
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None
        self.pods_created = 0

    @property
    def results_channel(self) -> str:
        return self._results_channel

    def runs(self, run_id: str) -> bool:
        return run_id in self._tickets

    def start(
        self,
        run_id: str,
        job: dict[str, Any],
        env: dict[str, str],
        pool_key: str,
        pod_manifest: Callable[[str, str], dict[str, Any]],
        submit: Callable[[dict[str, Any]], object],
    ) -> None:
        """Run ``job`` (a ``WorkerJob`` as JSON data) in an idle pod of ``pool_key``, or in
        a new one: ``pod_manifest(job name, channel)`` is its Job."""
        if self._reader is None:
            # A server without a mailbox (an older one) fails here, before any pod is made.
            self._mailbox.read(self._results_channel, 0, limit=1)
            self._reader = threading.Thread(target=self._read_results, daemon=True,
                                            name="sematic-warm-results")  # fmt: skip
            self._reader.start()
        pool = self._pools.setdefault(pool_key, [])
        pod = next((p for p in pool if p.ticket is None and not p.stopping), None)
        if pod is None:
            channel = f"{self._prefix}/pod-{self.pods_created}"
            name = f"sematic-warm-{self._root[:24]}-{self._token}-{self.pods_created}"
            manifest = pod_manifest(name, channel)
            container = manifest["spec"]["template"]["spec"]["containers"][0]
            resources = container.get("resources") or {}
            requests = dict(resources.get("requests") or {})
            limits = dict(resources.get("limits") or {})
            pod = _Pod(
                job=name, channel=channel, image=container["image"], requests=requests,
                limits=limits, gpu=any(g in {**requests, **limits} for g in GPU_RESOURCES),
            )  # fmt: skip
            submit(manifest)
            self.pods_created += 1
            pool.append(pod)
            self._pods[name] = pod
        ticket = uuid.uuid4().hex
        pod.ticket = ticket
        self._steps[ticket] = _Step(run_id, pod)
        self._tickets[run_id] = ticket
        self._mailbox.post(pod.channel, {"kind": "job", "ticket": ticket, "job": job, "env": env})

    def owns(self, job_name: str) -> bool:
        return job_name in self._pods

    def pod_ended(self, job_name: str, loss: WorkerLoss) -> list[str]:
        """The pod's Job ended: its step, if any, is lost with ``loss``; the runs lost."""
        pod = self._pods.pop(job_name, None)
        if pod is None:
            return []
        for pool in self._pools.values():
            if pod in pool:
                pool.remove(pod)
        step = self._steps.pop(pod.ticket, None) if pod.ticket else None
        if step is None:
            return []
        del self._tickets[step.run_id]
        self._outcomes[step.run_id] = loss
        return [step.run_id]

    def next_ended(self) -> tuple[str, str] | None:
        """A run whose step ended, and its log; ``outcome`` and ``attempt`` then say how."""
        while True:
            try:
                report = self._reports.get_nowait()
            except queue.Empty:
                return None
            step = self._steps.pop(str(report.get("ticket")), None)
            if step is None:  # a step killed since, or another driver's
                continue
            del self._tickets[step.run_id]
            pod = step.pod
            pod.ticket = None
            pod.idle_since = time.monotonic()
            attempt = _attempt(report, pod)
            self._attempts[step.run_id] = attempt
            self._outcomes[step.run_id] = _outcome(report, attempt)
            return step.run_id, str(report.get("log") or "")

    def outcome(self, run_id: str) -> WorkerResult | WorkerLoss:
        """What the step of ``run_id`` ended with (asked once, after it ended)."""
        return self._outcomes.pop(run_id)

    def outcome_peek(self, run_id: str) -> WorkerResult | WorkerLoss | None:
        return self._outcomes.get(run_id)

    def ended(self, run_id: str) -> bool:
        return run_id in self._outcomes

    def attempt(self, run_id: str) -> dict[str, Any] | None:
        return self._attempts.pop(run_id, None)

    def kill(self, run_id: str) -> str | None:
        """Stop the step of ``run_id``: its pod goes with it (the name of the Job to delete)."""
        ticket = self._tickets.get(run_id)
        self._outcomes.pop(run_id, None)
        self._attempts.pop(run_id, None)
        if ticket is None:
            return None
        step = self._steps[ticket]
        self.pod_ended(step.pod.job, WorkerLoss("killed", WorkerLostError))
        self._outcomes.pop(run_id, None)
        return step.pod.job

    def idle_to_stop(self) -> list[str]:
        """Tell the pods idle for too long to end; their Jobs' names (they end on their own,
        their Jobs are deleted once they did)."""
        now = time.monotonic()
        stopped = []
        for pod in self._pods.values():
            if pod.ticket is not None or pod.stopping:
                continue
            limit = self._settings.gpu_idle_seconds if pod.gpu else self._settings.idle_seconds
            if now - pod.idle_since >= limit:
                pod.stopping = True
                self._mailbox.post(pod.channel, {"kind": "stop"})
                stopped.append(pod.job)
        return stopped

    def close(self) -> list[tuple[str, bool]]:
        """End every pod and forget the channels: the pods' Job names, each with whether it
        was running a step still (to delete it at once)."""
        self._closing.set()
        pods = [(pod.job, pod.ticket is not None) for pod in self._pods.values()]
        for pod in self._pods.values():
            if not pod.stopping:  # their Jobs are deleted anyway
                with contextlib.suppress(Exception):
                    self._mailbox.post(pod.channel, {"kind": "stop"})
        self._pods.clear()
        self._pools.clear()
        # The pods' channels are left for them to read "stop" (the server deletes messages
        # a day old); no one reads the results any more.
        with contextlib.suppress(Exception):
            self._mailbox.drop(self._results_channel)
        self._mailbox.close()
        return pods

    def _read_results(self) -> None:
        cursor = 0
        failures = 0
        while not self._closing.is_set():
            try:
                messages = self._mailbox.read(self._results_channel, cursor, wait=RESULTS_WAIT_S)
                failures = 0
            except Exception:  # noqa: BLE001 - the server restarting: try again
                failures += 1
                time.sleep(min(0.1 * failures, 2.0))
                continue
            for message_id, message in messages:
                cursor = message_id
                self._reports.put(message)
            if messages:
                self._wake()


def _attempt(report: dict[str, Any], pod: _Pod) -> dict[str, Any]:
    """The attempt (``sematic.core.usage``) a warm pod's report describes (its pod as
    the API server admitted it may complete it: ``KubernetesWorkers.attempt``)."""
    return {
        "job": pod.job,
        "pod": report.get("pod"),
        "node": report.get("node") or None,
        "image": pod.image,
        "requests": pod.requests,
        "limits": pod.limits,
        "started_at": report.get("started_at"),
        "finished_at": report.get("finished_at"),
        "ended": report.get("cause") or "Succeeded",
        "exit_code": report.get("exit_code"),
        "message": str(report.get("message") or "")[:2000],
        "warm": True,
    }


def _outcome(report: dict[str, Any], attempt: dict[str, Any]) -> WorkerResult | WorkerLoss:
    data = report.get("result")
    if report.get("cause") is None and isinstance(data, dict):
        try:
            return WorkerResult(**data)
        except TypeError:
            pass
    cause = str(report.get("cause") or "NoResult")
    message = attempt["message"]
    if cause == "OOMKilled":
        limit = attempt["limits"].get("memory", "?")
        message = attempt["message"] = f"the step ran out of memory (limit {limit}) and was killed"
    reason = (f"ran in warm pod {attempt['pod']} (Job {attempt['job']}), which reported no "
              f"result: {cause}: {message}")  # fmt: skip
    if cause == "DeadlineExceeded":
        return WorkerLoss(reason, FunctionTimeoutError)
    return WorkerLoss(reason, functools.partial(WorkerFailedError, cause=cause))


def pool_key(image: str, requirements: Any) -> str:
    """Steps share pods when their image and Kubernetes requirements are the same."""
    described = None if requirements is None else repr(requirements)
    return json.dumps([image, described])
