"""Small values stay small: bytes on disk and S3 requests per value, packing off vs on.

A LocalResolver fan-out of N trivial integer steps (``fan_out`` of local_pipelines.py: N
inline steps, N + 3 values) resolves twice per artifact store, in one run: "before" with
packing off (``small_payload_bytes=0``: every payload a file or object of its own, as
before packing) and "after" with the default threshold (4096 bytes: payloads up to it
packed in the database's ``small_payloads`` table). Each resolution gets a fresh
SEMATIC_HOME (SQLite in WAL mode, checkpointed before it is measured).

Artifact stores: (a) a local folder; (b) ``s3://`` on moto's S3-protocol server
(tests/harness/s3.py, on 127.0.0.1), whose requests are counted by operation with its
request recorder (as tests/unit/storage/test_s3_artifacts.py does).

Bytes on disk are allocated bytes (st_blocks, what ``du`` shows), per value stored: the
artifact folder, the database file, their total, and "payload cost": the folder plus what
the database grew by against the same pipeline with packing off (the packed payloads).
For S3, the objects' bytes (S3 bills stored bytes, and each object is a request).
LocalResolver's time per step is the best of ``--repeats`` alternating runs (local folder
at ``--n``), else of one run.

    .venv/bin/python benchmarks/small_values.py [--n 2000] [--large 100000] [--no-s3]

``--large`` runs the local-folder comparison again at that N (0: not at all); S3 is
measured at ``--n`` only (moto answers a few hundred requests a second: 100,000 values
unpacked would take it tens of minutes).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.harness.s3

from _bench import print_table
from local_pipelines import fan_out
from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.packed import DEFAULT_THRESHOLD
from sematic.storage.sql import SqlMetadataStore

MODES = {"before (packing off)": 0, f"after (<= {DEFAULT_THRESHOLD} B packed)": DEFAULT_THRESHOLD}


@dataclass
class Figures:
    seconds: float
    steps: int
    values: int
    folder_files: int
    folder_bytes: int
    db_bytes: int
    packed_table_bytes: int | None
    objects: int = 0
    object_bytes: int = 0
    requests: Counter[str] = field(default_factory=Counter)


def allocated(path: Path) -> int:
    """Bytes ``path`` (a file, or every file under a folder) takes on disk."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def database_figures(db: Path) -> tuple[int, int, int | None]:
    """Values recorded, bytes of the database file(s) after a checkpoint, and the bytes of
    the small_payloads table (SQLite's dbstat, when this SQLite has it)."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        values = int(connection.execute("SELECT count(*) FROM artifacts").fetchone()[0])
        try:
            row = connection.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'small_payloads'"
            ).fetchone()
            table: int | None = int(row[0] or 0)
        except sqlite3.OperationalError:
            table = None
    finally:
        connection.close()
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return values, sum(allocated(f) for f in files), table


def resolve_once(
    n: int,
    threshold: int,
    artifact_url: Callable[[Path], str],
    recording: Callable[[], AbstractContextManager[list[Any]]],
) -> Figures:
    with tempfile.TemporaryDirectory(prefix="sematic-small-values-") as folder:
        home = Path(folder)
        settings = LocalSettings(
            home=home,
            database_url=f"sqlite:///{home / 'db.sqlite3'}",
            artifact_url=artifact_url(home),
            small_payload_bytes=threshold,
        )
        SqlMetadataStore(settings.database_url).close()  # created and migrated beforehand
        future = fan_out(n)
        with recording() as requests:
            start = time.perf_counter()
            value = future.resolve(LocalResolver(progress=False, settings=settings))
            seconds = time.perf_counter() - start
        assert value == n * (n + 1) // 2
        values, db_bytes, table = database_figures(home / "db.sqlite3")
        artifacts = home / "artifacts"
        files = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
        return Figures(
            seconds=seconds,
            steps=n + 2,  # the fan-out, its N steps and the total
            values=values,
            folder_files=len(files),
            folder_bytes=allocated(artifacts),
            db_bytes=db_bytes,
            packed_table_bytes=table,
            requests=Counter(getattr(r, "operation", str(r)) for r in requests),
        )


def local_folder(home: Path) -> str:
    return str(home / "artifacts")


@contextmanager
def nothing_recorded() -> Iterator[list[Any]]:
    yield []


def compare_local(n: int, repeats: int) -> dict[str, Figures]:
    """Each mode ``repeats`` times, alternating; the best time of each (bytes do not vary)."""
    best: dict[str, Figures] = {}
    for _ in range(repeats):
        for mode, threshold in MODES.items():
            found = resolve_once(n, threshold, local_folder, nothing_recorded)
            if mode not in best or found.seconds < best[mode].seconds:
                best[mode] = found
    return best


def compare_s3(n: int) -> dict[str, Figures]:
    from tests.harness.s3 import local_s3

    figures = {}
    with local_s3() as server:
        saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
        for variable in saved:
            del os.environ[variable]
        os.environ.update(server.environment())
        try:
            client = server.client()
            for mode, threshold in MODES.items():
                prefix = uuid.uuid4().hex
                url = f"s3://{server.bucket}/{prefix}"
                found = resolve_once(n, threshold, lambda _home, url=url: url, server.recording)
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=server.bucket, Prefix=f"{prefix}/"
                )
                sizes = [item["Size"] for page in pages for item in page.get("Contents", [])]
                found.objects, found.object_bytes = len(sizes), sum(sizes)
                figures[mode] = found
        finally:
            for variable in server.environment():
                os.environ.pop(variable, None)
            os.environ.update(saved)
    return figures


def per(total: float, count: int) -> str:
    return f"{total / count:,.1f}"


def print_local(n: int, figures: dict[str, Figures]) -> None:
    before = figures[next(iter(MODES))]
    print(f"(a) local artifact folder, fan-out of {n:,} int steps: bytes on disk per value")
    rows = []
    for mode, f in figures.items():
        grown = f.db_bytes - before.db_bytes
        rows.append(
            [
                mode,
                f"{f.values:,}",
                f"{f.folder_files:,}",
                per(f.folder_bytes, f.values),
                per(f.db_bytes, f.values),
                per(f.folder_bytes + f.db_bytes, f.values),
                per(f.folder_bytes + grown, f.values),
                "n/a" if f.packed_table_bytes is None else per(f.packed_table_bytes, f.values),
                f"{f.seconds * 1000 / f.steps:.3f}",
            ]
        )
    print_table(
        [
            "",
            "values",
            "files",
            "folder B/value",
            "db B/value",
            "total B/value",
            "payload cost B/value",
            "packed table B/value",
            "LocalResolver ms/step",
        ],
        rows,
    )
    after = figures[list(MODES)[1]]
    print(
        f"after/before: total bytes {(after.folder_bytes + after.db_bytes) / (before.folder_bytes + before.db_bytes):.3f}x, "  # noqa: E501
        f"payload cost {(after.folder_bytes + after.db_bytes - before.db_bytes) / max(before.folder_bytes, 1):.4f}x, "  # noqa: E501
        f"time per step {after.seconds / before.seconds:.2f}x"
    )


def print_s3(n: int, figures: dict[str, Figures]) -> None:
    before = figures[next(iter(MODES))]
    print(f"(b) s3:// on moto's S3 server, fan-out of {n:,} int steps: requests and bytes")
    rows = []
    for mode, f in figures.items():
        total = sum(f.requests.values())
        top = ", ".join(f"{op} {count:,}" for op, count in f.requests.most_common())
        rows.append(
            [
                mode,
                f"{f.values:,}",
                f"{total:,}",
                f"{total / f.steps:.3f}",
                f"{f.objects:,}",
                per(f.object_bytes, f.values),
                per(f.db_bytes, f.values),
                per(f.db_bytes - before.db_bytes, f.values),
                f"{f.seconds * 1000 / f.steps:.3f}",
                top or "-",
            ]
        )
    print_table(
        [
            "",
            "values",
            "S3 requests",
            "requests/step",
            "objects",
            "object B/value",
            "db B/value",
            "db growth B/value",
            "ms/step",
            "by operation",
        ],
        rows,
    )
    after = figures[list(MODES)[1]]
    print(
        f"after/before: requests {sum(after.requests.values()) / max(sum(before.requests.values()), 1):.4f}x, "  # noqa: E501
        f"time per step {after.seconds / before.seconds:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="steps of the fan-out")
    parser.add_argument(
        "--large", type=int, default=100_000, help="local folder again at this N (0: no)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="local runs at --n, best of")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 comparison")
    args = parser.parse_args()
    fan_out(2).resolve(LocalResolver(progress=False, settings=_scratch()))  # warm imports
    print_local(args.n, compare_local(args.n, args.repeats))
    if not args.no_s3:
        print()
        print_s3(args.n, compare_s3(args.n))
    if args.large:
        print()
        start = time.perf_counter()
        print_local(args.large, compare_local(args.large, 1))
        print(f"({time.perf_counter() - start:.0f} s for both resolutions at {args.large:,})")


def _scratch() -> LocalSettings:
    home = Path(tempfile.mkdtemp(prefix="sematic-small-values-warm-"))
    return LocalSettings(home, f"sqlite:///{home / 'db.sqlite3'}", str(home / "artifacts"))


if __name__ == "__main__":
    main()
