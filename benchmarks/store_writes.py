"""What a metadata write costs now that terminal states are kept and transitions recorded
once, beside the store before that (``--old-rev``, default 9e31566), in one run.

Each side runs in its own process (its ``src`` on PYTHONPATH): ``WRITES`` batches as a
LocalResolver flush writes them (one run upserted, one transition) into a fresh SQLite file
and a fresh database of a PostgreSQL server started for the run (tests/harness/postgres.py),
and prints microseconds per write, best of 3.

    python benchmarks/store_writes.py [--old-rev REV] [--writes 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import print_table  # noqa: E402
from tests.harness.postgres import local_postgres  # noqa: E402

MEASURE = """
import sys, time, uuid
from sematic.core.records import RunRecord, TransitionRecord
from sematic.storage.sql import SqlMetadataStore

url, writes = sys.argv[1], int(sys.argv[2])
best = float("inf")
with SqlMetadataStore(url) as store:
    for _ in range(3):
        root = uuid.uuid4().hex
        began = time.perf_counter()
        for i in range(writes):
            now = time.time()
            state = "RESOLVED" if i == writes - 1 else ("SCHEDULED", "RAN")[i % 2]
            run = RunRecord(id=root, root_id=root, parent_id=None, name="f",
                            function_path="m.f", state=state, created_at=now, updated_at=now)
            store.write(runs=[run], transitions=[TransitionRecord(root, state, now)])
        best = min(best, (time.perf_counter() - began) / writes)
print(best * 1e6)
"""


def _measure(src: Path, url: str, writes: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, str(writes)],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default="9e31566")
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, local_postgres() as postgres:
        old = Path(scratch) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.old_rev, "src"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        rows = []
        for database in ("sqlite", "postgresql"):
            figures = []
            for name, src in (("old", old / "src"), ("new", ROOT / "src")):
                if database == "sqlite":
                    url = f"sqlite:///{Path(scratch) / f'{name}.sqlite'}"
                else:
                    # A database of its own per side: the old schema is older.
                    base, _, _ = postgres.rpartition("/")
                    subprocess.run(
                        [sys.executable, "-c", CREATE, postgres, name],
                        check=True,
                    )
                    url = f"{base}/{name}"
                figures.append(_measure(src, url, args.writes))
            rows.append(
                [
                    database,
                    f"{figures[0]:.0f}",
                    f"{figures[1]:.0f}",
                    f"{figures[1] / figures[0]:.2f}",
                ]
            )
        print(f"one write (a run and a transition), µs, best of 3 x {args.writes}")
        print_table(["database", args.old_rev, "now", "ratio"], rows)


CREATE = """
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with engine.connect() as connection:
    connection.execute(text(f"CREATE DATABASE {sys.argv[2]}"))
engine.dispose()
"""

if __name__ == "__main__":
    main()
