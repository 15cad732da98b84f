"""``sematic runs``, ``logs`` and ``cancel``: what was recorded, read from the database, or
from the Sematic server when ``server_url`` is set (pipelines resolved in a cluster)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import click

from sematic.cli.errors import CliError

if TYPE_CHECKING:
    from sematic.core.ports import MetadataStore
    from sematic.core.records import RunRecord
    from sematic.resolvers.settings import LocalSettings
    from sematic.storage.http import HttpLogs

FOLLOW_POLL_S = 0.2
FOLLOW_SERVER_POLL_S = 1.0  # following a log through the server
FOLLOW_SETTLE_S = 10.0  # at most this long after the run ended, while its log grows
REASON_WIDTH = 160
USAGE_PAGE = 500  # runs read at a time to sum what a pipeline's pods reserved


@contextlib.contextmanager
def _store() -> Iterator[MetadataStore]:
    from sematic.resolvers.settings import LocalSettings
    from sematic.resolvers.stores import open_stores

    metadata, _ = open_stores(LocalSettings.from_environment())
    try:
        yield metadata
    finally:
        metadata.close()


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _started(run: RunRecord) -> str:
    at = run.started_at or run.created_at
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: RunRecord, now: float) -> str:
    if run.started_at is None:
        return "-"
    end = run.ended_at if run.ended_at is not None else now
    return format_duration(max(0.0, end - run.started_at))


@click.command()
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Rows to show."
)
@click.option(
    "--all",
    "all_runs",
    is_flag=True,
    help="Show every run, not only pipelines, and the pods of those that ran in Kubernetes.",
)
def runs(limit: int, all_runs: bool) -> None:
    """List the most recent pipelines (root runs), newest first, with what their pods
    reserved (cpu, memory and GPU time, and its cost with a price table: see the README)."""
    from rich.console import Console
    from rich.table import Table

    from sematic.cli.usage import pipeline_usage, pod_details, prices_from_settings, usage_text

    prices = prices_from_settings()
    with _store() as metadata:
        _reap(metadata)
        records = metadata.list_runs(root_only=not all_runs, limit=limit)
        if all_runs:
            used = {run.id: pipeline_usage([run], prices) for run in records}
        else:
            used = {
                run.id: pipeline_usage(_ran_in_pods(metadata, run.id), prices) for run in records
            }
    if not records:
        click.echo("No runs yet.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "name", "state", "started", "duration", "reserved"):
        table.add_column(column, no_wrap=True)
    if prices is not None:
        table.add_column("cost", no_wrap=True, justify="right")
    table.add_column("reason", overflow="fold")
    now = time.time()
    for run in records:
        cells = [run.id, run.name, run.state, _started(run), _duration(run, now)]
        cells.append(usage_text(used[run.id].usage))
        if prices is not None:
            cells.append(f"{used[run.id].cost:.4f}")
        table.add_row(*cells, _reason(run))
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    if all_runs:
        for run in records:
            for line in pod_details(run, prices):
                console.print(line, highlight=False, markup=False, soft_wrap=True)


def _ran_in_pods(metadata: MetadataStore, root_id: str) -> Iterator[RunRecord]:
    """The runs of the pipeline ``root_id`` that ran in a pod (the only ones that reserved
    anything), page by page: a pipeline of 100,000 local runs reads none of them."""
    after: tuple[float, str] | None = None
    while True:
        page = metadata.list_runs(root_id=root_id, in_pods=True, after=after, limit=USAGE_PAGE)
        yield from page
        if len(page) < USAGE_PAGE:
            return
        after = (page[-1].created_at, page[-1].id)


def reap_with_store() -> None:
    """``_reap`` with the configured store."""
    with _store() as metadata:
        _reap(metadata)


def _reap(metadata: MetadataStore) -> None:
    """With a cluster configured ($KUBECONFIG or ~/.kube/config): fail the pipelines whose
    driver Job is gone for good and delete what finished pipelines left in the cluster
    (see sematic.resolvers.reaper). A cluster out of reach is only a warning."""
    import os
    from pathlib import Path

    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    kubeconfig = first or str(Path.home() / ".kube" / "config")
    if not Path(kubeconfig).is_file():
        return
    try:
        from sematic.resolvers.reaper import reap_cluster, report_lines
        from sematic.resolvers.settings import cluster_from_environment

        cluster = cluster_from_environment()
        reaped = reap_cluster(metadata, cluster, kubeconfig, timeout=5.0)
    except Exception as error:  # noqa: BLE001 - listing runs must not depend on the cluster
        click.echo(
            f"warning: could not check the cluster for orphaned pipelines: {error}", err=True
        )
        return
    for line in report_lines(reaped):
        click.echo(line, err=True)


def _reason(run: RunRecord) -> str:
    """Why a run failed: its exception's class and the first line of its message (a pod's
    end names its cause there: OOMKilled, Unschedulable, ...)."""
    from sematic.core.engine import State

    if run.state != State.FAILED or not run.exception_type:
        return ""
    message = (run.exception_message or "").strip().splitlines()
    first = message[0] if message else ""
    text = f"{run.exception_type.rpartition('.')[2]}: {first}"
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


class _LogReader:
    """What a run's log holds from a position on: the local file, or with a server
    (runs that ran in pods or elsewhere), what the server keeps (only the bytes that
    follow the position are sent)."""

    def __init__(self, settings: LocalSettings, run_id: str) -> None:
        self._path = settings.log_path(run_id)
        self._run_id = run_id
        self._server: HttpLogs | None = None
        if settings.server_url:
            from sematic.storage.http import HttpLogs

            self._server = HttpLogs(settings.server_url, settings.api_key)

    @property
    def poll_s(self) -> float:
        """How often to look for more while following."""
        return FOLLOW_SERVER_POLL_S if self._server is not None else FOLLOW_POLL_S

    def __call__(self, position: int) -> tuple[bytes, int]:
        """The bytes after ``position``, and the log's size (smaller than ``position``:
        the log was replaced by a shorter one)."""
        if self._server is not None:
            chunk = self._server.read(self._run_id, position)
            return (b"", 0) if chunk is None else (chunk.data, chunk.size)
        try:
            with self._path.open("rb") as file:
                file.seek(position)
                data = file.read()
        except FileNotFoundError:
            return b"", 0
        return data, position + len(data)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def _copy_new(read: _LogReader, position: int) -> int:
    """Write what the log holds from ``position`` on to stdout; return the new position."""
    chunk, size = read(position)
    if chunk:
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
        sys.stdout.flush()
        return position + len(chunk)
    return min(position, size)  # a log replaced by a shorter one: go on from its end


@click.command()
@click.argument("run_id")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new lines until the run has finished (and its log stopped growing); "
    "a run in a pod is followed through the server. Ctrl-C stops.",
)
def logs(run_id: str, follow: bool) -> None:
    """Print what the run RUN_ID printed (its log file)."""
    try:
        _print_logs(run_id, follow)
    except KeyboardInterrupt:
        sys.stdout.flush()
        raise SystemExit(130) from None


def _print_logs(run_id: str, follow: bool) -> None:
    from sematic.core.engine import TERMINAL
    from sematic.resolvers.liveness import ResolverProcess, resolver_of
    from sematic.resolvers.settings import LocalSettings

    settings = LocalSettings.from_environment()
    with _store() as metadata, contextlib.closing(_LogReader(settings, run_id)) as read:
        run = metadata.get_run(run_id)  # an unknown id is a clear error
        state = run.state
        position = _copy_new(read, 0)
        while follow and state not in TERMINAL:
            time.sleep(read.poll_s)
            state = metadata.get_run(run_id).state
            position = _copy_new(read, position)
            if state not in TERMINAL and resolver_of(settings, run.root_id) is ResolverProcess.GONE:
                position = _copy_new(read, position)
                raise CliError(
                    f"the process resolving this pipeline was killed; run {run_id} stays "
                    f"{state} (mark it canceled with `sematic cancel --force {run.root_id}`)"
                )
        position = _settled(read, position, follow)
    if position == 0:
        click.echo(f"(run {run_id} has printed nothing; state {state})", err=True)


def _settled(read: _LogReader, position: int, follow: bool) -> int:
    """Print what is left once the run has ended; following, until the log stops growing
    (its last part, or the whole log from its pod, may arrive just after the run ended)."""
    position = _copy_new(read, position)
    deadline = time.monotonic() + FOLLOW_SETTLE_S
    while follow and time.monotonic() < deadline:
        time.sleep(read.poll_s)
        before = position
        position = _copy_new(read, position)
        if position == before:
            return position
    return position


@click.command()
@click.argument("run_id")
@click.option(
    "--wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the pipeline to stop (0: return at once).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Mark unfinished runs CANCELED now, for a pipeline whose resolver is gone.",
)
def cancel(run_id: str, wait: float, force: bool) -> None:
    """Cancel the pipeline RUN_ID belongs to: its resolver stops its workers and marks every
    unfinished run CANCELED.

    If the process resolving it was killed (on this machine), the runs are marked CANCELED
    here at once.
    """
    from sematic.resolvers.cancel import force_cancel, is_finished, request_cancel
    from sematic.resolvers.liveness import ResolverProcess, resolver_of
    from sematic.resolvers.settings import LocalSettings

    settings = LocalSettings.from_environment()
    with _store() as metadata:
        root = request_cancel(metadata, run_id, "canceled with `sematic cancel`")
        if force or resolver_of(settings, root.id) is ResolverProcess.GONE:
            count = force_cancel(metadata, root.id, "canceled with `sematic cancel`")
            click.echo(f"{root.name} ({root.id}): {count} unfinished runs marked CANCELED")
            return
        click.echo(f"{root.name} ({root.id}): cancel requested")
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            root = metadata.get_run(root.id)
            if is_finished(root):
                click.echo(f"{root.name} ({root.id}): {root.state}")
                return
            time.sleep(FOLLOW_POLL_S)
    if wait:
        raise CliError(
            f"the pipeline {root.id} did not stop within {wait:g}s; is the process resolving it "
            f"still running? `sematic cancel --force {root.id}` marks its runs CANCELED"
        )
