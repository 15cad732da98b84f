"""Listing runs with 1,000,000 runs stored, on SQLite and on a real PostgreSQL server.

Fills a database with 1,000,000 runs: 1,200 pipelines of 500 runs and, the newest, 4
pipelines of 100,000 runs (40 pipeline names, 8 users, mixed states, 2% of the runs ran in
pods). The SQLite file is kept in ``~/.cache/sematic-dev/bench`` (``$SEMATIC_BENCH_CACHE``)
and reused by later runs; PostgreSQL (a private server from tests/harness/postgres.py) is
loaded from it with COPY each run. Then ``python -m sematic.server`` serves each database and
every query form is timed, p50 and p99:

- before: the old query shapes, run as SQL on the same database (ORDER BY created_at DESC,
  id ASC, LIMIT/OFFSET, and an exact ``count(*)`` of every match on every page);
- after, SQL: the new shapes (keyset cursor, ``count(*)`` of at most 10,001 matches);
- after, HTTP: ``GET /api/v1/runs`` end to end on the server (what the UI and clients see).

And ``sematic runs`` (20 newest pipelines with what their pods reserved): the old way (every
run of each pipeline read with ``runs_of_root``) against the new one, both in this process,
then the command itself, end to end. The old SQL runs against the new indexes, so "before"
understates what the old schema cost. The PostgreSQL plans of the listing are printed.

    python benchmarks/runs_at_scale.py [--runs N] [--repeats N] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.harness

from _bench import print_table
from sematic.cli.runs import _ran_in_pods
from sematic.cli.usage import pipeline_usage
from sematic.core import cursor
from sematic.storage.sql import SqlMetadataStore, migrate
from sematic.storage.sql.models import runs
from server_runs_list import running_server

T0 = 1_760_000_000.0
BIG, BIG_SIZE, SMALL_SIZE = 4, 100_000, 500
NAMES, USERS = 40, 8
STATES = (
    ["RESOLVED"] * 85
    + ["FAILED"] * 5
    + ["CANCELED"] * 3
    + ["NESTED_FAILED"] * 2
    + [
        "CREATED",
        "SCHEDULED",
        "RAN",
        "RETRYING",
        "RESOLVED",
    ]
)
POD = json.dumps({"usage": {"seconds": 60.0, "cpu_seconds": 120.0, "memory_gib_seconds": 240.0}})
COLUMNS = [column.name for column in runs.columns]
CACHE = Path(os.environ.get("SEMATIC_BENCH_CACHE") or Path.home() / ".cache/sematic-dev/bench")


def _rows(total: int) -> Iterator[tuple[Any, ...]]:
    """``total`` runs: pipelines of 500 runs, then the 4 big ones (newest); two runs a second,
    so many runs share a creation time."""
    big = min(BIG * BIG_SIZE, total // 2)
    sizes = [SMALL_SIZE] * ((total - big) // SMALL_SIZE) + [big // BIG] * BIG
    number, second = 0, 0
    for pipeline, size in enumerate(sizes):
        root = f"{number:032x}"
        for j in range(size):
            at = T0 + second // 2
            second += 1
            state = STATES[(number * 7 + j) % len(STATES)]
            values = {
                "id": f"{number:032x}",
                "root_id": root,
                "parent_id": None if j == 0 else root,
                "name": f"pipeline{pipeline % NAMES}" if j == 0 else f"step{j % 25}",
                "function_path": "bench.pipeline" if j == 0 else f"bench.step{j % 25}",
                "state": state,
                "created_at": at,
                "updated_at": at + 1,
                "inline": j % 3 == 0,
                "cache_hit": False,
                "tags": '["bench"]' if j == 0 else "[]",
                "inputs": "{}",
                "submitted_by": f"user{pipeline % USERS}",
                "execution": POD if number % 50 == 7 else None,
                "started_at": at,
                "ended_at": at + 1,
            }
            yield tuple(values.get(column) for column in COLUMNS)
            number += 1


def sqlite_database(total: int) -> Path:
    """The cached SQLite file holding ``total`` runs at the newest schema (made if missing)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"runs-{total}-r{migrate.HEAD}.sqlite"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    start = time.perf_counter()
    SqlMetadataStore(f"sqlite:///{partial}").close()  # the schema, by the migrations
    connection = sqlite3.connect(partial)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        for index in runs.indexes:  # rebuilt after the load: much faster than kept up
            connection.execute(f"DROP INDEX {index.name}")
        marks = ", ".join("?" * len(COLUMNS))
        statement = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({marks})"
        connection.executemany(statement, _rows(total))
        connection.commit()
    finally:
        connection.close()
    engine = create_engine(f"sqlite:///{partial}")
    for index in runs.indexes:
        index.create(engine)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    partial.rename(path)
    print(f"filled {path.name}: {total:,} runs in {time.perf_counter() - start:.0f} s")
    return path


def load_postgres(url: str, source: Path) -> None:
    """The runs of the SQLite file ``source`` copied into the empty database ``url``."""
    import psycopg

    start = time.perf_counter()
    SqlMetadataStore(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        for index in runs.indexes:
            conn.execute(text(f"DROP INDEX {index.name}"))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    lite = sqlite3.connect(source)
    try:
        with psycopg.connect(dsn) as pg, pg.cursor() as cur:
            names = ", ".join(COLUMNS)
            with cur.copy(f"COPY runs ({names}) FROM STDIN") as copy:
                for row in lite.execute(f"SELECT {names} FROM runs"):
                    copy.write_row(row)
    finally:
        lite.close()
    for index in runs.indexes:
        index.create(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE runs"))
    engine.dispose()
    print(f"loaded PostgreSQL from the cache in {time.perf_counter() - start:.0f} s")


def _percentiles(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p99 (ms) of ``repeats`` calls of ``action`` (after one warm-up call)."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.99 * len(times)))]


def _old(engine: Engine, where: str, offset: int = 0) -> Callable[[], object]:
    """The old shape: a page by LIMIT/OFFSET in the old order, and an exact count."""
    page = text(f"SELECT * FROM runs {where} ORDER BY created_at DESC, id LIMIT 50 OFFSET {offset}")
    count = text(f"SELECT count(*) FROM runs {where}")

    def run() -> object:
        with engine.connect() as conn:
            return conn.execute(page).all(), conn.execute(count).scalar()

    return run


def _page_sql(clause: str) -> str:
    """The new page: its ids from the filter's index alone, then their rows."""
    ids = f"SELECT id FROM runs {clause} ORDER BY created_at DESC, id DESC LIMIT 51"
    return f"SELECT * FROM runs WHERE id IN ({ids}) ORDER BY created_at DESC, id DESC"


def _new(engine: Engine, where: str, after: tuple[float, str] | None) -> Callable[[], object]:
    """The new shape: a page after the cursor, and a count of at most 10,001 matches."""
    keyset = "" if after is None else f"(created_at, id) < ({after[0]!r}, '{after[1]}')"
    condition = " AND ".join(part for part in (where.removeprefix("WHERE "), keyset) if part)
    clause = f"WHERE {condition}" if condition else ""
    page = text(_page_sql(clause))
    count = text(f"SELECT count(*) FROM (SELECT 1 FROM runs {where} LIMIT 10001) AS capped")

    def run() -> object:
        with engine.connect() as conn:
            return conn.execute(page).all(), conn.execute(count).scalar()

    return run


def _deep(engine: Engine) -> tuple[int, tuple[float, str]]:
    """Half way down the listing: its offset, and the cursor of the run just before it."""
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(runs)).scalar_one()
        row = conn.execute(
            text(
                "SELECT created_at, id FROM runs ORDER BY created_at DESC, id DESC "
                f"LIMIT 1 OFFSET {total // 2 - 1}"
            )
        ).one()
    return total // 2, (float(row[0]), str(row[1]))


def measure(label: str, url: str, home: Path, repeats: int) -> list[list[str]]:
    """Rows of the table for the database ``url``."""
    engine = create_engine(url)
    with engine.connect() as conn:
        user = conn.execute(text("SELECT submitted_by FROM runs LIMIT 1")).scalar_one()
    offset, position = _deep(engine)
    forms = [
        ("latest 50", "", {}),
        ("root_only", "WHERE id = root_id", {"root_only": "true"}),
        ("status=FAILED", "WHERE state = 'FAILED'", {"status": "FAILED"}),
        ("name=step3", "WHERE name = 'step3'", {"name": "step3"}),
        ("roots name=pipeline7", "WHERE id = root_id AND name = 'pipeline7'",
         {"root_only": "true", "name": "pipeline7"}),
        (f"submitted_by={user}", f"WHERE submitted_by = '{user}'", {"submitted_by": user}),
    ]  # fmt: skip
    table = []
    with (
        running_server(home, url) as base,
        httpx.Client(base_url=base + "/api/v1", timeout=60) as client,
    ):

        def http(params: dict[str, str]) -> Callable[[], object]:
            return lambda: client.get("/runs", params={"limit": "50", **params}).raise_for_status()

        for name, where, params in forms:
            table.append(
                _row(
                    label,
                    name,
                    _old(engine, where),
                    _new(engine, where, None),
                    http(params),
                    repeats,
                )
            )
        deep = {"cursor": cursor.encode(position)}
        table.append(
            _row(
                label,
                f"page at {offset:,} (cursor)",
                _old(engine, "", offset),
                _new(engine, "", position),
                http(deep),
                max(5, repeats // 10),
            )
        )
    table.append(_cli(label, url, home, engine))
    engine.dispose()
    return table


def _row(
    database: str,
    form: str,
    before: Callable[[], object],
    after: Callable[[], object],
    served: Callable[[], object],
    repeats: int,
) -> list[str]:
    old = _percentiles(before, max(3, repeats // 10))
    new = _percentiles(after, repeats)
    http = _percentiles(served, repeats)
    return [
        database,
        form,
        f"{old[0]:.1f} / {old[1]:.1f}",
        f"{new[0]:.1f} / {new[1]:.1f}",
        f"{http[0]:.1f} / {http[1]:.1f}",
        f"{old[1] / new[1]:.0f}x",
    ]


def _cli(label: str, url: str, home: Path, engine: Engine) -> list[str]:
    """``sematic runs``: what it reads, the old way and the new, then the command."""
    with SqlMetadataStore(url) as store:
        roots = store.list_runs(root_only=True, limit=20)

        def old() -> object:
            return [pipeline_usage(store.runs_of_root(r.id), None) for r in roots]

        def new() -> object:
            return [pipeline_usage(_ran_in_pods(store, r.id), None) for r in roots]

        assert old() == new()
        before = _percentiles(old, 2)
        after = _percentiles(new, 10)
    env = {**os.environ, "SEMATIC_HOME": str(home), "SEMATIC_DATABASE_URL": url}
    env.pop("SEMATIC_SERVER_URL", None)
    command = [sys.executable, "-m", "sematic.cli", "runs"]

    def run_cli() -> object:
        return subprocess.run(command, env=env, check=True, capture_output=True)

    whole = _percentiles(run_cli, 5)
    return [
        label,
        "sematic runs (20 pipelines)",
        f"{before[0]:.0f} / {before[1]:.0f}",
        f"{after[0]:.1f} / {after[1]:.1f}",
        f"{whole[0]:.0f} / {whole[1]:.0f} (CLI)",
        f"{before[1] / after[1]:.0f}x",
    ]


def postgres_plans(url: str) -> None:
    engine = create_engine(url)
    queries = {
        "latest": _page_sql(""),
        "roots": _page_sql("WHERE id = root_id"),
        "FAILED after a cursor": _page_sql(
            "WHERE state = 'FAILED' AND (created_at, id) < (1760100000.0, 'f')"
        ),
        "submitted_by": _page_sql("WHERE submitted_by = 'user0'"),
    }
    with engine.connect() as conn:
        for name, query in queries.items():
            plan = [str(row[0]).strip() for row in conn.execute(text(f"EXPLAIN {query}"))]
            print(f"PostgreSQL plan, {name}: {' / '.join(plan)}")
    engine.dispose()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    from tests.harness.postgres import local_postgres

    with local_postgres() as admin:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_runs"))
        engine.dispose()
        yield admin.rsplit("/", 1)[0] + "/bench_runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    source = sqlite_database(args.runs)
    headers = ["database", "query", "before (SQL)", "after (SQL)", "after (HTTP)", "before/after"]
    legend = f"{args.runs:,} runs stored; milliseconds, p50 / p99; ratio of the p99s"
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        if args.only != "postgresql":
            table = measure("SQLite", f"sqlite:///{source}", home, args.repeats)
            print(f"\n{legend}")
            print_table(headers, table)
        if args.only != "sqlite":
            with postgres_database() as url:
                load_postgres(url, source)
                postgres_plans(url)
                table = measure("PostgreSQL", url, home, args.repeats)
            print(f"\n{legend}")
            print_table(headers, table)


if __name__ == "__main__":
    main()
