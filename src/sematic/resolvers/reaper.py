"""Cleaning up after pipelines whose driver is gone for good, and after finished ones.

A detached pipeline is driven by its driver Job. If that Job failed (its restarts are
exhausted) or was deleted, nobody will ever finish its runs, and its worker Jobs would run
on. ``reap`` finds such pipelines, deletes their Jobs and key Secret, and marks their
unfinished runs FAILED with a ``WorkerLostError`` whose cause is ``DriverGone``. On the
way it removes what finished pipelines left: worker Jobs still running, finished Jobs
(unless ``ClusterSettings.keep_finished_jobs``) and key Secrets.

Whoever is alive runs it: ``sematic runs`` once per command, and the server every
``REAP_INTERVAL_S`` seconds through ``Reaper`` (a daemon thread), so a driver's death is
acted on within ``REAP_INTERVAL_S`` plus the Job controller's own delay.

Which pipelines are detached is read from the metadata: a root run recorded with a
``container_image`` was submitted to a driver Job (named after the root run) in the
namespace of the reaper's cluster settings. A root whose driver Job is missing counts as
orphaned only ``grace`` seconds after it was created (the Job is created just after the
root is recorded).

``plan`` decides (pure); ``reap`` reads the cluster and the store and carries it out.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sematic.core.engine import TERMINAL, State
from sematic.core.errors import RunNotFoundError, WorkerLostError
from sematic.core.ports import MetadataStore
from sematic.core.records import RunRecord
from sematic.kubernetes.manifests import ClusterSettings, driver_job_name, label_value
from sematic.resolvers.cancel import end_unfinished

if TYPE_CHECKING:
    from sematic.kubernetes.pipelines import JobState

DRIVER_GONE = "DriverGone"
REAP_INTERVAL_S = 20.0
DEFAULT_GRACE_S = 30.0
_UNFINISHED = tuple(state.value for state in State if not state.is_terminal)
_ERROR_TYPE = f"{WorkerLostError.__module__}.{WorkerLostError.__qualname__}"


class ClusterObjects(Protocol):
    """What the reaper needs of a namespace (``PipelineObjects`` is the real one)."""

    def jobs(self) -> list[JobState]: ...
    def key_secrets(self) -> dict[str, str]: ...
    def delete_job(self, name: str) -> None: ...
    def delete_secret(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do: pipelines to fail (root id -> why), Jobs and Secrets to delete."""

    orphans: dict[str, str] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reaped:
    """What ``reap`` did: the pipelines failed (root id -> why), the runs marked FAILED,
    the Jobs and Secrets deleted."""

    orphans: dict[str, str]
    runs_failed: int
    jobs: list[str]
    secrets: list[str]


def plan(
    *,
    jobs: Sequence[JobState],
    secrets: Mapping[str, str],
    roots: Mapping[str, RunRecord],
    driven: Iterable[RunRecord],
    now: float,
    grace: float = DEFAULT_GRACE_S,
    keep_finished_jobs: bool = False,
) -> Plan:
    """Decide, from the namespace's Sematic ``jobs`` and key ``secrets`` (name -> root
    label), the recorded ``roots`` of those (by root label; unknown roots are left alone)
    and the unfinished root runs that were ``driven`` by a driver Job."""
    from sematic.kubernetes.pipelines import JobStatus

    orphans: dict[str, str] = {}
    drivers = {job.name: job for job in jobs if job.role == "driver"}
    for job in drivers.values():
        root = roots.get(job.root or "")
        if job.status is JobStatus.FAILED and root is not None and root.state not in TERMINAL:
            orphans[root.id] = (
                f"its driver Job {job.name} failed and will not be restarted (its restarts "
                "are exhausted)"
            )
    for root in driven:
        name = driver_job_name(root.id)
        if root.state in TERMINAL or root.id in orphans or name in drivers:
            continue
        if now - root.created_at >= grace:
            orphans[root.id] = f"its driver Job {name} is gone (it was deleted)"
    orphan_labels = {label_value(root_id) for root_id in orphans}
    finished_labels = {label for label, r in roots.items() if r.state in TERMINAL}
    doomed = [
        job.name
        for job in jobs
        if _doomed(job, job.root in orphan_labels, job.root in finished_labels, keep_finished_jobs)
    ]
    gone = orphan_labels | finished_labels
    return Plan(
        orphans=orphans,
        jobs=doomed,
        secrets=[name for name, label in secrets.items() if label in gone],
    )


def _doomed(job: JobState, orphaned: bool, finished: bool, keep_finished: bool) -> bool:
    from sematic.kubernetes.pipelines import JobStatus

    done = job.status is not JobStatus.ACTIVE
    keep_finished = keep_finished or job.keep
    if orphaned:  # everything goes, but finished Jobs kept for debugging
        return not (done and keep_finished)
    if finished:  # left by a finished pipeline: a driver still running may be exiting, and
        # a kept warm pod is ending (told to stop; else once its driver is silent 10 min)
        exiting = job.role == "driver" or (job.role == "warm" and keep_finished)
        return (done and not keep_finished) or (not done and not exiting)
    return False


def reap(
    metadata: MetadataStore,
    objects: ClusterObjects,
    *,
    keep_finished_jobs: bool = False,
    grace: float = DEFAULT_GRACE_S,
    now: float | None = None,
) -> Reaped:
    """Find orphaned and finished pipelines in ``objects``' namespace and clean up."""
    jobs = objects.jobs()
    secrets = objects.key_secrets()
    driven = [
        run
        for state in _UNFINISHED
        for run in metadata.list_runs(status=state, root_only=True, limit=1000)
        if run.container_image is not None
    ]
    ids = {label_value(run.id): run.id for run in driven}
    for job in jobs:
        if job.root:
            ids.setdefault(job.root, job.root_id or job.root)
    for label in secrets.values():
        if label:
            ids.setdefault(label, label)
    roots = {label_value(run.id): run for run in driven}
    for label, root_id in ids.items():
        if label not in roots:
            try:
                roots[label] = metadata.get_run(root_id)
            except RunNotFoundError:
                continue  # another store's pipeline: not ours to judge
    decided = plan(
        jobs=jobs,
        secrets=secrets,
        roots=roots,
        driven=driven,
        now=time.time() if now is None else now,
        grace=grace,
        keep_finished_jobs=keep_finished_jobs,
    )
    for name in decided.jobs:  # first: nothing new starts on behalf of a failed run
        objects.delete_job(name)
    for name in decided.secrets:
        objects.delete_secret(name)
    failed = sum(fail_pipeline(metadata, root_id, why) for root_id, why in decided.orphans.items())
    return Reaped(decided.orphans, failed, decided.jobs, decided.secrets)


def fail_pipeline(metadata: MetadataStore, root_id: str, why: str) -> int:
    """Mark every unfinished run of the pipeline ``root_id`` FAILED because its driver is
    gone; return how many."""
    message = (
        f"{DRIVER_GONE}: the pipeline's driver is gone for good: {why}; its Jobs were "
        "deleted and its unfinished runs marked FAILED. Run the pipeline again."
    )
    return end_unfinished(metadata, root_id, State.FAILED, message, exception_type=_ERROR_TYPE)


def reap_cluster(
    metadata: MetadataStore,
    cluster: ClusterSettings,
    kubeconfig: str | None = None,
    *,
    timeout: float = 10.0,
    grace: float = DEFAULT_GRACE_S,
) -> Reaped:
    """``reap`` in the namespace of ``cluster``, reached with ``kubeconfig`` (default:
    ``$KUBECONFIG`` or ~/.kube/config; ``"in-cluster"`` from a pod)."""
    from sematic.kubernetes.pipelines import PipelineObjects, api_client

    api = api_client(kubeconfig)
    try:
        objects = PipelineObjects(api, cluster.namespace, timeout=timeout)
        return reap(metadata, objects, keep_finished_jobs=cluster.keep_finished_jobs, grace=grace)
    finally:
        api.close()


class Reaper:
    """Calls ``reap_once`` every ``interval`` seconds in a daemon thread, for a long-lived
    process (the server): ``Reaper.for_cluster(...).start()``, and ``stop()`` at shutdown.
    A round that fails is reported to ``on_error`` (default: one line on stderr) and the
    next one tries again."""

    def __init__(
        self,
        reap_once: Callable[[], Reaped],
        *,
        interval: float = REAP_INTERVAL_S,
        on_reaped: Callable[[Reaped], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._round = reap_once
        self._interval = interval
        self._on_reaped = on_reaped
        self._on_error = on_error or _report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sematic-reaper", daemon=True)

    @classmethod
    def for_cluster(
        cls,
        metadata: MetadataStore,
        cluster: ClusterSettings,
        kubeconfig: str | None = None,
        *,
        interval: float = REAP_INTERVAL_S,
        grace: float = DEFAULT_GRACE_S,
        on_reaped: Callable[[Reaped], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Reaper:
        """``reap_cluster(metadata, cluster, kubeconfig)`` each round; ``metadata`` stays
        the caller's (never closed here) and must allow use from another thread."""

        def reap_once() -> Reaped:
            return reap_cluster(metadata, cluster, kubeconfig, grace=grace)

        return cls(reap_once, interval=interval, on_reaped=on_reaped, on_error=on_error)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                reaped = self._round()
                if self._on_reaped is not None:
                    self._on_reaped(reaped)
            except Exception as error:  # noqa: BLE001 - the cluster or store hiccuped
                self._on_error(error)
            self._stop.wait(self._interval)


def _report(error: BaseException) -> None:
    print(f"sematic reaper: {type(error).__name__}: {error}", file=sys.stderr)


def report_lines(reaped: Reaped) -> list[str]:
    """What a command tells the user about what was reaped (nothing: no lines)."""
    return [
        f"pipeline {root_id} failed: {why}; its Jobs were deleted"
        for root_id, why in reaped.orphans.items()
    ]


__all__: list[str] = [
    "DRIVER_GONE",
    "Plan",
    "Reaped",
    "Reaper",
    "fail_pipeline",
    "plan",
    "reap",
    "reap_cluster",
    "report_lines",
]
