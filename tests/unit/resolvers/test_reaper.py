"""The reaper's decisions: pipelines whose driver Job is gone for good are failed and their
Jobs deleted; finished pipelines lose what they left. The cluster is a fake here (the
real one: tests/kubernetes/test_secrets_and_reaper.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sematic.core.records import RunRecord
from sematic.kubernetes.pipelines import JobState, JobStatus
from sematic.resolvers.reaper import DRIVER_GONE, Reaped, Reaper, plan, reap, report_lines
from sematic.storage.sql import SqlMetadataStore

NOW = 1_000_000.0
DRIVEN = "a" * 32  # a detached pipeline: its root names the driver's image
LOCAL = "b" * 32  # resolved from a laptop: no driver Job
DONE = "c" * 32


def _run(run_id: str, root_id: str, state: str, *, image: str | None = None) -> RunRecord:
    return RunRecord(
        id=run_id, root_id=root_id, parent_id=None if run_id == root_id else root_id,
        name="step", function_path="m.f", state=state, created_at=NOW - 100,
        updated_at=NOW - 100, container_image=image,
    )  # fmt: skip


def _job(name: str, root: str, status: JobStatus, role: str = "worker") -> JobState:
    return JobState(name=name, root=root, root_id=root, role=role, status=status)


def _driver(root: str, status: JobStatus) -> JobState:
    return _job(f"sematic-driver-{root}", root, status, "driver")


ACTIVE, FAILED, SUCCEEDED = JobStatus.ACTIVE, JobStatus.FAILED, JobStatus.SUCCEEDED


def test_a_failed_driver_dooms_its_pipeline_and_every_job_of_it() -> None:
    root = _run(DRIVEN, DRIVEN, "RAN", image="d@sha256:1")
    jobs = [_driver(DRIVEN, FAILED), _job("w1", DRIVEN, ACTIVE), _job("w0", DRIVEN, SUCCEEDED)]
    decided = plan(
        jobs=jobs, secrets={"sematic-key-a": DRIVEN}, roots={DRIVEN: root}, driven=[root],
        now=NOW,
    )  # fmt: skip
    assert "restarts are exhausted" in decided.orphans[DRIVEN]
    assert sorted(decided.jobs) == sorted(j.name for j in jobs)
    assert decided.secrets == ["sematic-key-a"]
    kept = plan(jobs=jobs, secrets={}, roots={DRIVEN: root}, driven=[root], now=NOW,
                keep_finished_jobs=True)  # fmt: skip
    assert kept.jobs == ["w1"]  # the running one goes; the finished ones stay for debugging


def test_a_driver_still_restarting_or_running_is_left_alone() -> None:
    root = _run(DRIVEN, DRIVEN, "RAN", image="d@sha256:1")
    decided = plan(jobs=[_driver(DRIVEN, ACTIVE), _job("w1", DRIVEN, ACTIVE)], secrets={},
                   roots={DRIVEN: root}, driven=[root], now=NOW)  # fmt: skip
    assert decided.orphans == {} and decided.jobs == [] and decided.secrets == []


def test_a_missing_driver_counts_after_the_grace_and_only_for_detached_pipelines() -> None:
    root = _run(DRIVEN, DRIVEN, "SCHEDULED", image="d@sha256:1")
    decided = plan(jobs=[_job("w1", DRIVEN, ACTIVE)], secrets={}, roots={DRIVEN: root},
                   driven=[root], now=NOW, grace=30)  # fmt: skip
    assert "is gone (it was deleted)" in decided.orphans[DRIVEN] and decided.jobs == ["w1"]
    young = plan(jobs=[], secrets={}, roots={}, driven=[root], now=NOW, grace=300)
    assert young.orphans == {}  # just submitted: its Job may not exist yet
    local = _run(LOCAL, LOCAL, "RAN")  # detach=False: its resolver is a process, not a Job
    decided = plan(jobs=[_job("w2", LOCAL, ACTIVE)], secrets={"k": LOCAL}, roots={LOCAL: local},
                   driven=[], now=NOW)  # fmt: skip
    assert decided.orphans == {} and decided.jobs == [] and decided.secrets == []


def test_what_finished_pipelines_left_is_removed_unless_kept() -> None:
    done = _run(DONE, DONE, "CANCELED")
    jobs = [_driver(DONE, SUCCEEDED), _job("w-old", DONE, SUCCEEDED), _job("w-run", DONE, ACTIVE)]
    decided = plan(jobs=jobs, secrets={"k": DONE}, roots={DONE: done}, driven=[], now=NOW)
    assert decided.orphans == {}
    assert sorted(decided.jobs) == sorted(["sematic-driver-" + DONE, "w-old", "w-run"])
    assert decided.secrets == ["k"]
    kept = plan(jobs=jobs, secrets={}, roots={DONE: done}, driven=[], now=NOW,
                keep_finished_jobs=True)  # fmt: skip
    assert kept.jobs == ["w-run"]
    marked = [dataclasses.replace(job, keep=True) for job in jobs]  # kept by their resolver
    assert plan(jobs=marked, secrets={}, roots={DONE: done}, driven=[], now=NOW).jobs == ["w-run"]
    exiting = plan(jobs=[_driver(DONE, ACTIVE)], secrets={}, roots={DONE: done}, driven=[],
                   now=NOW)  # fmt: skip
    assert exiting.jobs == []  # a driver that recorded the end may still be exiting
    warm = [_job("warm-0", DONE, ACTIVE, role="warm")]  # told to stop, ending
    assert plan(jobs=warm, secrets={}, roots={DONE: done}, driven=[], now=NOW).jobs == ["warm-0"]
    kept_warm = [dataclasses.replace(job, keep=True) for job in warm]
    assert plan(jobs=kept_warm, secrets={}, roots={DONE: done}, driven=[], now=NOW).jobs == []


class FakeNamespace:
    def __init__(self, jobs: list[JobState], secrets: dict[str, str]) -> None:
        self._jobs = {job.name: job for job in jobs}
        self._secrets = dict(secrets)

    def jobs(self) -> list[JobState]:
        return list(self._jobs.values())

    def key_secrets(self) -> dict[str, str]:
        return dict(self._secrets)

    def delete_job(self, name: str) -> None:
        self._jobs.pop(name, None)

    def delete_secret(self, name: str) -> None:
        self._secrets.pop(name, None)


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        yield store
    finally:
        store.close()


def test_reap_fails_the_unfinished_runs_with_the_cause_and_cleans_the_namespace(
    metadata: SqlMetadataStore,
) -> None:
    metadata.write(runs=[
        _run(DRIVEN, DRIVEN, "RAN", image="d@sha256:1"),
        _run("a1" * 16, DRIVEN, "RESOLVED"), _run("a2" * 16, DRIVEN, "SCHEDULED"),
        _run(LOCAL, LOCAL, "RAN"), _run(DONE, DONE, "RESOLVED", image="d@sha256:1"),
    ])  # fmt: skip
    namespace = FakeNamespace(
        [_driver(DRIVEN, FAILED), _job("w-a2", DRIVEN, ACTIVE), _job("w-b", LOCAL, ACTIVE),
         _driver(DONE, SUCCEEDED), _job("w-other", "d" * 32, ACTIVE)],
        {"key-a": DRIVEN, "key-b": LOCAL, "key-c": DONE},
    )  # fmt: skip
    reaped = reap(metadata, namespace, now=NOW)
    assert list(reaped.orphans) == [DRIVEN] and reaped.runs_failed == 2
    assert {j.name for j in namespace.jobs()} == {"w-b", "w-other"}  # not this pipeline's
    assert set(namespace.key_secrets()) == {"key-b"}
    runs = {run.id: run for run in metadata.runs_of_root(DRIVEN)}
    assert runs["a1" * 16].state == "RESOLVED"  # finished runs keep their state
    for run_id in (DRIVEN, "a2" * 16):
        run = runs[run_id]
        assert run.state == "FAILED" and run.ended_at is not None
        assert run.exception_type == "sematic.core.errors.WorkerLostError"
        assert (run.exception_message or "").startswith(f"{DRIVER_GONE}: ")
        assert "sematic-driver-" + DRIVEN in (run.exception_message or "")
    assert [t.state for t in metadata.transitions_of(DRIVEN)][-1] == "FAILED"
    assert report_lines(reaped) == [f"pipeline {DRIVEN} failed: {reaped.orphans[DRIVEN]}; "
                                    "its Jobs were deleted"]  # fmt: skip
    again = reap(metadata, namespace, now=NOW)  # nothing left to do
    assert again.orphans == {} and again.jobs == [] and again.runs_failed == 0


def test_the_periodic_reaper_reports_errors_and_goes_on() -> None:
    errors: list[BaseException] = []
    rounds: list[float] = []
    done = threading.Event()

    def reap_once() -> Reaped:
        rounds.append(time.monotonic())
        if len(rounds) == 1:
            raise RuntimeError("cluster away")
        if len(rounds) == 3:
            done.set()
        return Reaped({}, 0, [], [])

    reaper = Reaper(reap_once, interval=0.01, on_error=errors.append).start()
    try:
        assert done.wait(5)
    finally:
        started = time.monotonic()
        reaper.stop()
    assert time.monotonic() - started < 5
    assert [str(e) for e in errors] == ["cluster away"]


def test_sematic_runs_lists_runs_even_when_the_cluster_is_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from sematic.cli.main import cli

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEMATIC_SERVER_URL", raising=False)
    monkeypatch.delenv("SEMATIC_DATABASE_URL", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 0, result.output
    assert "No runs yet." in result.stdout
    assert "could not check the cluster for orphaned pipelines" in result.stderr
    assert "127.0.0.1" in result.stderr  # it tried the cluster the kubeconfig names
