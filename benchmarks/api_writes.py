"""Recording through the API server vs straight into SQLite: ms per step, requests per step.

The same pipelines (chains and fan-outs of inline steps, from local_pipelines.py) resolve
with LocalResolver twice: writing directly into SQLite (WAL) and a local artifact folder,
and with SEMATIC_SERVER_URL pointing at ``python -m sematic.server`` on 127.0.0.1 (its
own SQLite and folder). Each time everything is recorded, durably, when resolve() returns;
the figures are the best of ``--repeats``. Requests are counted in the resolving process:
the recorder's metadata writes and payload uploads (both batched, one of each per flush
at most), and apart from them the cancel watch's polls (4 a second, whatever the steps).

    .venv/bin/python benchmarks/api_writes.py [--sizes 200,1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _bench import print_table, start_server
from local_pipelines import chain, fan_out
from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore

SHAPES = {"chain": chain, "fan-out": fan_out}
ROOT = Path(__file__).resolve().parents[1]


class RequestCounter:
    """Counts the HTTP requests this process sends, by kind."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        original = httpx.Client.send
        counts = self.counts

        def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            path = request.url.path
            if path.endswith("/cancel"):
                kind = "cancel poll"
            elif path.endswith("/write"):
                kind = "write"
            elif path.endswith("/payloads") or path.endswith("/payload"):
                kind = "payload upload"
            else:
                kind = f"{request.method} {path}"
            counts[kind] += 1
            return original(self, request, **kwargs)

        httpx.Client.send = send  # type: ignore[method-assign]


def resolve_best(
    shape: Callable[[int], Any],
    size: int,
    settings: LocalSettings,
    recorded_in: LocalSettings,
    counter: RequestCounter,
    repeats: int,
) -> tuple[float, int, collections.Counter[str]]:
    """The fastest of ``repeats`` resolutions (everything recorded when resolve() returns):
    seconds, runs recorded (read back from ``recorded_in``), requests sent."""
    best: tuple[float, int, collections.Counter[str]] | None = None
    for _ in range(repeats):
        gc.collect()
        future = shape(size)
        counter.counts.clear()
        start = time.perf_counter()
        future.resolve(LocalResolver(progress=False, settings=settings))
        elapsed = time.perf_counter() - start
        runs = len(_check(recorded_in, future.id))
        if best is None or elapsed < best[0]:
            best = (elapsed, runs, collections.Counter(counter.counts))
    assert best is not None
    return best


def _check(settings: LocalSettings, root_id: str) -> list[Any]:
    with SqlMetadataStore(settings.database_url) as store:
        runs = store.runs_of_root(root_id)
    assert runs and all(run.state == "RESOLVED" and run.output for run in runs)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counter = RequestCounter()
    with tempfile.TemporaryDirectory(prefix="sematic-bench-api-") as tmp:
        base = Path(tmp)
        direct = LocalSettings(
            base / "direct", f"sqlite:///{base / 'direct' / 'db.sqlite3'}", str(base / "direct/a")
        )
        server_home = base / "server"
        process, url = start_server(server_home, ROOT / "src")
        try:
            # The server's database, read back to check what was recorded through the API.
            server_db = LocalSettings(
                server_home, f"sqlite:///{server_home / 'db.sqlite3'}", str(server_home)
            )
            via_api = LocalSettings(base / "client", "sqlite:///unused", "unused", url)
            rows = []
            for shape_name, shape in SHAPES.items():
                for size in sizes:
                    shape(2).resolve(LocalResolver(progress=False, settings=direct))  # warm up
                    shape(2).resolve(LocalResolver(progress=False, settings=via_api))
                    sql_s, _, _ = resolve_best(shape, size, direct, direct, counter, args.repeats)
                    api_s, runs, sent = resolve_best(
                        shape, size, via_api, server_db, counter, args.repeats
                    )
                    polls = sent.pop("cancel poll", 0)
                    requests = sum(sent.values())
                    rows.append(
                        [
                            shape_name,
                            f"{size:,}",
                            f"{runs:,}",
                            f"{sql_s * 1000 / runs:.3f}",
                            f"{api_s * 1000 / runs:.3f}",
                            f"{api_s / sql_s:.2f}x",
                            f"{requests / runs:.2f}",
                            f"{sent['write']}",
                            f"{sent['payload upload']}",
                            f"{polls}",
                        ]
                    )
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(10)
    print("LocalResolver recording into SQLite directly vs through the API server (127.0.0.1)")
    print_table(
        [
            "shape",
            "N",
            "runs",
            "sqlite ms/run",
            "api ms/run",
            "api/sqlite",
            "requests/run",
            "writes",
            "payload uploads",
            "cancel polls",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
