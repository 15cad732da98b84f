"""Reference figures of Prefect 3's per-task overhead with its default local tracking.

Run it with a Python that has Prefect 3 installed (never this project's venv). Prefect 3.8.8
imports nothing of its server with FastAPI >= 0.155 (``Body(min_items=...)`` raises
TypeError), so FastAPI is pinned below that:

    python3 -m venv /tmp/prefect-venv
    /tmp/prefect-venv/bin/pip install 'prefect>=3,<4' 'fastapi<0.155'
    /tmp/prefect-venv/bin/python benchmarks/prefect_reference.py [--json] [--sizes 100,1000]

What it measures, for each N (100 and 1000 unless ``--sizes`` says otherwise), with a
trivial task ``inc(x) -> x + 1``:

- chain:   a ``@flow`` that calls ``x = inc(x)`` N times (direct task calls, which Prefect 3
  runs synchronously in the flow's thread);
- fan-out: a ``@flow`` that calls ``inc.submit(i)`` N times (default thread-pool task
  runner), then sums the ``.result()`` of every future.

Columns, each also given per step (total / N):

- "flow ms": wall time of the flow call, from the call until it returns. It includes the
  flow run's own fixed cost, notably Prefect's flow-run heartbeat thread, which the flow
  joins on exit after its current 1 s sleep: a synchronous flow call takes at least about
  a second, and rounds up towards the next whole second, so at small N this dominates.
- "in-flow ms/step": the flow body alone (first statement to return, timed inside it): the
  per-task cost without the flow run's set-up and tear-down.
- "recorded ms": from the same start until the Prefect API reports N task runs of that flow
  run in a terminal state (polled with ``read_task_runs`` and a flow-run filter). Prefect 3
  records task runs from events that its API server ingests in the background, so this
  includes the backlog left when the flow returns.

With two or more sizes it also prints the marginal cost per step between the smallest and
largest N, which cancels the per-flow-run costs. Each figure is the median of
``--repeats`` flow runs (1 by default).

Prefect runs with its defaults otherwise: no PREFECT_API_URL, so the client starts Prefect's
local ephemeral API server (a uvicorn subprocess on 127.0.0.1, SQLite database under
PREFECT_HOME). The script re-runs itself in a child process with a throwaway PREFECT_HOME
in a temp dir as its working directory, every inherited ``PREFECT_*`` variable removed,
telemetry off (``DO_NOT_TRACK=1``, ``PREFECT_SERVER_ANALYTICS_ENABLED=false``) and
``PREFECT_LOGGING_LEVEL=WARNING``. The server's start-up (first client connection) and one
warm-up flow run of N = 10 per shape are timed and reported apart from the figures. The
child runs in its own process group, which is killed when it ends, and the temp dir is
removed. Any failure prints the error and exits non-zero. With ``--json`` it prints one
JSON object: ``{"chain": {N: {"ms_per_step", "recorded_ms_per_step", ...}}, "fan-out":
{...}, "startup_s", ...}`` (JSON makes the N keys strings).
"""

# No ``from __future__ import annotations``: Prefect reads the flows' annotations as types.
import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SHAPES = ("chain", "fan-out")
CHILD_MARK = "PREFECT_REFERENCE_HOME"  # set in the child's environment: the throwaway home
WARM_UP_SIZE = 10
# Interval between read_task_runs polls while waiting for recording: 2% of the time waited so
# far, within these bounds, so that polling neither loads the server nor blurs the figure.
POLL_FRACTION, POLL_MIN_S, POLL_MAX_S = 0.02, 0.01, 0.25
PAGE = 200  # the API's default (and maximum) page size

# Makes the client start (and use) the local ephemeral server, and keeps everything offline.
PREFECT_ENV = {
    "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",  # the default profile's setting, made explicit
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # server telemetry to Prefect's endpoint
    "DO_NOT_TRACK": "1",  # client (SDK) telemetry
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_UI_ENABLED": "false",  # the ephemeral server serves no UI anyway
    "PREFECT_SERVER_API_HOST": "127.0.0.1",  # the ephemeral server binds 127.0.0.1 anyway
    # Start-up (database migrations) takes 12-17 s on 2 cores, close to the 20 s default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}

# A benchmark flow: n -> (value, flow run id, seconds its body took inside the flow run).
Flow = Callable[[int], tuple[int, str, float]]


def expected_value(shape: str, n: int) -> int:
    return n * (n + 1) // 2 if shape == "fan-out" else n


def define_flows() -> dict[str, Flow]:
    """Import Prefect and define the benchmark flows: shape -> flow."""
    from prefect import flow, task
    from prefect.context import FlowRunContext

    @task
    def inc(x: int) -> int:
        return x + 1

    def flow_run_id() -> str:
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            raise RuntimeError("no flow run context inside the flow")
        return str(context.flow_run.id)

    @flow(name="chain")
    def chain(n: int) -> tuple[int, str, float]:
        start = time.perf_counter()
        x = 0
        for _ in range(n):
            x = inc(x)
        return x, flow_run_id(), time.perf_counter() - start

    @flow(name="fan-out")
    def fan_out(n: int) -> tuple[int, str, float]:
        start = time.perf_counter()
        futures = [inc.submit(i) for i in range(n)]
        total = sum(future.result() for future in futures)
        return total, flow_run_id(), time.perf_counter() - start

    return {"chain": chain, "fan-out": fan_out}


class Recorder:
    """Reads what the Prefect API has recorded of a flow run's task runs."""

    def __init__(self, client: Any) -> None:
        from prefect.client.schemas import filters
        from prefect.client.schemas.objects import TERMINAL_STATES
        from prefect.client.schemas.sorting import TaskRunSort

        self.client = client
        self.filters = filters
        # The server's default sort, given explicitly: with FastAPI 0.154 the server rejects
        # the ``"sort": null`` that the client sends when no sort is given (HTTP 422).
        self.sort = TaskRunSort.ID_DESC
        self.terminal = filters.TaskRunFilter(
            state=filters.TaskRunFilterState(
                type=filters.TaskRunFilterStateType(any_=sorted(TERMINAL_STATES))
            )
        )

    def flow_run_filter(self, flow_run_id: str) -> Any:
        return self.filters.FlowRunFilter(id=self.filters.FlowRunFilterId(any_=[flow_run_id]))

    def has_terminal(self, flow_run_id: str, n: int) -> bool:
        """Whether at least ``n`` task runs of the flow run are terminal (one cheap query)."""
        page = self.client.read_task_runs(
            flow_run_filter=self.flow_run_filter(flow_run_id),
            task_run_filter=self.terminal,
            sort=self.sort,
            offset=n - 1,
            limit=1,
        )
        return len(page) > 0

    def wait(self, flow_run_id: str, n: int, start: float, timeout: float) -> None:
        """Poll until ``n`` task runs of the flow run are terminal; TimeoutError after that.

        ``start`` is the ``perf_counter`` time the flow was called at; ``timeout`` counts from
        now.
        """
        now = time.perf_counter()
        deadline = now + timeout
        while not self.has_terminal(flow_run_id, n):
            if now > deadline:
                raise TimeoutError(
                    f"{n} task runs of flow run {flow_run_id} not recorded in {timeout:.0f} s"
                )
            time.sleep(min(max((now - start) * POLL_FRACTION, POLL_MIN_S), POLL_MAX_S))
            now = time.perf_counter()

    def check(self, flow_run_id: str, n: int) -> None:
        """Raise unless the flow run has exactly ``n`` task runs, all Completed."""
        runs: list[Any] = []
        while True:
            page = self.client.read_task_runs(
                flow_run_filter=self.flow_run_filter(flow_run_id),
                sort=self.sort,
                limit=PAGE,
                offset=len(runs),
            )
            runs += page
            if len(page) < PAGE:
                break
        states = sorted({str(run.state_type) for run in runs})
        if len(runs) != n or any(run.state_type.value != "COMPLETED" for run in runs):
            raise RuntimeError(f"flow run {flow_run_id}: {len(runs)} task runs, states {states}")


@dataclass(frozen=True)
class Sample:
    """Seconds of one flow run: its body, the flow call, and the call until recorded."""

    body: float
    returned: float
    recorded: float


def run_once(flow: Flow, shape: str, n: int, recorder: Recorder) -> Sample:
    """Run the flow once; wait until its N task runs are recorded as terminal."""
    gc.collect()
    start = time.perf_counter()
    value, flow_run_id, body = flow(n)
    returned = time.perf_counter() - start
    recorder.wait(flow_run_id, n, start, timeout=120 + n * 0.5)
    recorded = time.perf_counter() - start
    if value != expected_value(shape, n):
        raise RuntimeError(f"{shape}({n}) returned {value!r}")
    recorder.check(flow_run_id, n)
    return Sample(body=body, returned=returned, recorded=recorded)


def measure(sizes: Sequence[int], repeats: int) -> dict[str, Any]:
    """Start the ephemeral server, warm up, then time every shape and size."""
    start = time.perf_counter()
    import prefect
    from prefect import get_client

    flows = define_flows()
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
        if error is not None:
            raise RuntimeError(f"Prefect API health check failed: {error!r}")
        startup_s = time.perf_counter() - start
        api_url = str(client.api_url)
        if not api_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"not the local ephemeral server: {api_url}")
        recorder = Recorder(client)

        start = time.perf_counter()
        for shape in SHAPES:
            run_once(flows[shape], shape, WARM_UP_SIZE, recorder)
        warm_up_s = time.perf_counter() - start

        report: dict[str, Any] = {
            "prefect_version": prefect.__version__,
            "api_url": api_url,
            "import_s": import_s,
            "startup_s": startup_s,
            "warm_up_s": warm_up_s,
            "repeats": repeats,
        }
        for shape in SHAPES:
            report[shape] = {}
            for n in sizes:
                samples = [run_once(flows[shape], shape, n, recorder) for _ in range(repeats)]
                body = statistics.median(sample.body for sample in samples)
                returned = statistics.median(sample.returned for sample in samples)
                recorded = statistics.median(sample.recorded for sample in samples)
                report[shape][n] = {
                    "ms_per_step": returned * 1000 / n,
                    "recorded_ms_per_step": recorded * 1000 / n,
                    "in_flow_ms_per_step": body * 1000 / n,
                    "total_ms": returned * 1000,
                    "recorded_total_ms": recorded * 1000,
                    "in_flow_total_ms": body * 1000,
                }
    low, high = min(sizes), max(sizes)
    if high > low:
        # The per-flow-run costs (creating the flow run, draining at its end) cancel out.
        report["marginal_ms_per_step"] = {
            shape: {
                "between": [low, high],
                **{
                    key: (report[shape][high][total] - report[shape][low][total]) / (high - low)
                    for key, total in (
                        ("ms_per_step", "total_ms"),
                        ("recorded_ms_per_step", "recorded_total_ms"),
                        ("in_flow_ms_per_step", "in_flow_total_ms"),
                    )
                },
            }
            for shape in SHAPES
        }
    return report


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``headers``: first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def print_report(report: dict[str, Any]) -> None:
    runs = "1 run" if report["repeats"] == 1 else f"median of {report['repeats']} runs"
    print(
        f"Prefect {report['prefect_version']}, ephemeral SQLite API server at "
        f"{report['api_url']} ({runs})"
    )
    rows: list[list[str]] = []
    for shape in SHAPES:
        for n, figures in report[shape].items():
            rows.append(
                [
                    shape,
                    f"{n:,}",
                    f"{figures['total_ms']:,.1f}",
                    f"{figures['ms_per_step']:.3f}",
                    f"{figures['in_flow_ms_per_step']:.3f}",
                    f"{figures['recorded_total_ms']:,.1f}",
                    f"{figures['recorded_ms_per_step']:.3f}",
                ]
            )
    print_table(
        ["shape", "N", "flow ms", "ms/step", "in-flow ms/step", "recorded ms", "recorded ms/step"],
        rows,
    )
    for shape, marginal in report.get("marginal_ms_per_step", {}).items():
        low, high = marginal["between"]
        print(
            f"{shape}: marginal ms/step between N = {low:,} and {high:,}: "
            f"{marginal['ms_per_step']:.3f}, in-flow {marginal['in_flow_ms_per_step']:.3f}, "
            f"until recorded {marginal['recorded_ms_per_step']:.3f}"
        )
    print(
        f"server start-up (excluded): {report['startup_s']:.2f} s; warm-up flow runs "
        f"(N = {WARM_UP_SIZE}, excluded): {report['warm_up_s']:.2f} s; "
        f"import prefect: {report['import_s']:.2f} s"
    )


def parse_sizes(text: str) -> list[int]:
    """``"100,1000"`` -> ``[100, 1000]``; ArgumentTypeError unless all are positive integers."""
    try:
        sizes = [int(size) for size in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return sizes


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def child(args: argparse.Namespace) -> int:
    """Measure in this process (the re-run child, with the throwaway PREFECT_HOME)."""
    try:
        # Prefect's own output must not mix with the JSON on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            report = measure(args.sizes, args.repeats)
    except Exception as error:  # noqa: BLE001 - report any failure and exit non-zero
        traceback.print_exc()
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    sys.stdout.flush()
    return 0


def kill_group(pgid: int) -> None:
    """Terminate what is left of the child's process group (e.g. the ephemeral server)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(1)


def parent(argv: Sequence[str], timeout: float) -> int:
    """Re-run this script in a child with a throwaway PREFECT_HOME; clean up after it."""
    home = tempfile.mkdtemp(prefix="prefect-reference-")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(PREFECT_ENV, PREFECT_HOME=home, **{CHILD_MARK: home})
    process: subprocess.Popen[bytes] | None = None
    try:
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *argv],
            env=env,
            cwd=home,  # no prefect.toml, .env or pyproject.toml of the caller's is read
            start_new_session=True,
        )
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"error: timed out after {timeout:.0f} s", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if process is not None:
            kill_group(process.pid)
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[100, 1000], help="comma-separated N (100,1000)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=1, help="flow runs per figure, median (1)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    args = parser.parse_args()
    if CHILD_MARK in os.environ:
        sys.exit(child(args))
    sys.exit(parent(sys.argv[1:], args.timeout))


if __name__ == "__main__":
    main()
