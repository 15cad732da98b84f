"""SqlMetadataStore on a SQLite file and on a real PostgreSQL server
(see tests/harness/postgres.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from sematic.core.errors import ConfigurationError, RunNotFoundError, StoreError
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord
from sematic.storage.sql import SqlMetadataStore, migrate
from sematic.storage.sql.models import Base


def run(run_id: str, root_id: str = "root", **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "parent_id": None if run_id == root_id else root_id,
        "name": f"fn_{run_id}",
        "function_path": f"pkg.mod.fn_{run_id}",
        "state": "CREATED",
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_000.0,
    }
    values.update(fields)
    return RunRecord(id=run_id, root_id=root_id, **values)  # type: ignore[arg-type]


def artifact(artifact_id: str, summary: object = None) -> ArtifactRecord:
    return ArtifactRecord(artifact_id, {"type": ["builtins", "int"]}, summary, 2, 1.5)


FULL_RUN = RunRecord(
    id="r-full",
    root_id="r-full",
    parent_id="some-parent",
    name="train_model",
    function_path="pipelines.train.train_model",
    state="RESOLVED",
    created_at=1_700_000_000.123456,
    updated_at=1_700_000_001.654321,
    inline=False,
    source_code="def train_model(x: int) -> int:\n    return x  # ünïcödé ✓\n",
    docstring="Trains.\n\nReally.",
    cache_key="cache-123",
    cache_hit=True,
    resource_requirements={"cpu": 2.5, "gpu": {"count": 1, "kind": "a100"}, "tolerations": []},
    base_image_tag="cuda",
    container_image="registry/image@sha256:abc",
    tags=("nightly", "team:ml", "ünï"),
    inputs={"x": "art-x", "config": "art-config"},
    output="art-out",
    nested_run_id="r-nested",
    exception_type="builtins.ValueError",
    exception_message="bad 'value'\nsecond line",
    traceback='Traceback (most recent call last):\n  File "x.py"\nValueError',
    started_at=1_700_000_000.5,
    ended_at=1_700_000_000.75,
)


def test_round_trip_of_every_field(store: SqlMetadataStore) -> None:
    minimal = run("r-min", root_id="r-min", tags=(), inputs={})
    summaries = [None, 0, 3.25, "text ✓", [1, [2, None]], {"b": 1, "a": {"nested": True}}]
    artifacts = [artifact(f"art-{i}", summary) for i, summary in enumerate(summaries)]
    edges = [
        EdgeRecord(None, "r-full", "x", "art-0"),
        EdgeRecord("r-full", None, None, "art-1"),
        EdgeRecord("r-min", "r-full", "config", "art-2"),
    ]
    transitions = [
        TransitionRecord("r-full", "CREATED", 1.25),
        TransitionRecord("r-full", "RAN", 2),
    ]
    store.write(runs=[FULL_RUN, minimal], transitions=transitions, artifacts=artifacts, edges=edges)

    assert store.get_run("r-full") == FULL_RUN
    assert store.get_run("r-min") == minimal
    assert store.transitions_of("r-full") == transitions
    for expected in artifacts:
        assert store.get_artifact(expected.id) == expected
    assert list(store.get_artifact("art-5").summary) == ["b", "a"]  # key order kept
    assert store.edges_of_root("r-full") == edges
    assert store.edges_of_root("r-min") == [edges[2]]


def test_runs_are_upserted(store: SqlMetadataStore) -> None:
    store.write(runs=[run("root", created_at=1.0), run("child", created_at=2.0)])
    updated = run("child", created_at=2.0, state="RESOLVED", output="art", tags=("t",))
    store.write(runs=[updated])
    assert store.get_run("child") == updated
    assert [r.id for r in store.runs_of_root("root")] == ["root", "child"]
    # Twice in one batch: the last one wins.
    store.write(runs=[run("root", state="RAN"), run("root", state="FAILED", updated_at=9.0)])
    assert store.get_run("root") == run("root", state="FAILED", updated_at=9.0)


def test_a_terminal_state_is_never_left(store: SqlMetadataStore) -> None:
    """The reaper's FAILED stays when the dying driver writes NESTED_FAILED afterwards."""
    store.write(runs=[run("root", state="RAN"), run("child", state="RAN")])
    reaped = run("root", state="FAILED", exception_message="the driver is gone")
    store.write(runs=[reaped], transitions=[TransitionRecord("root", "FAILED", 5.0)])

    late = run("root", state="NESTED_FAILED", exception_message="a step failed")
    late_child = run("child", state="RESOLVED", output="art")
    store.write(
        runs=[late, late_child],
        transitions=[
            TransitionRecord("root", "NESTED_FAILED", 6.0),
            TransitionRecord("child", "RESOLVED", 6.0),
        ],
    )
    assert store.get_run("root") == reaped
    assert store.get_run("child") == late_child  # not terminal before: written
    assert [t.state for t in store.transitions_of("root")] == ["FAILED"]
    assert [t.state for t in store.transitions_of("child")] == ["RESOLVED"]

    # The same terminal state again fills in fields; its transitions are not repeated.
    filled = run("child", state="RESOLVED", output="art", ended_at=7.0)
    store.write(runs=[filled], transitions=[TransitionRecord("child", "RESOLVED", 7.0)])
    assert store.get_run("child") == filled
    assert [t.state for t in store.transitions_of("child")] == ["RESOLVED"]


def test_two_writers_of_one_run_take_turns(db_url: str) -> None:
    """Writers racing to settle one run: the first terminal state written stays."""
    with SqlMetadataStore(db_url) as first:
        first.write(runs=[run("root", state="RAN")])
    states = ["FAILED", "NESTED_FAILED", "CANCELED", "RESOLVED"] * 4
    barrier = threading.Barrier(len(states))

    def writer(state: str) -> None:
        with SqlMetadataStore(db_url) as own:
            barrier.wait()
            own.write(
                runs=[run("root", state=state)], transitions=[TransitionRecord("root", state, 1.0)]
            )

    threads = [threading.Thread(target=writer, args=(state,)) for state in states]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with SqlMetadataStore(db_url) as store:
        transitions = store.transitions_of("root")
        assert len(transitions) == 1
        assert store.get_run("root").state == transitions[0].state


def test_a_write_sent_again_adds_nothing(store: SqlMetadataStore) -> None:
    """What a client retrying after a lost answer does: the second copy changes nothing."""
    runs = [run("root", state="RAN"), run("child", state="SCHEDULED")]
    transitions = [
        TransitionRecord("root", "SCHEDULED", 1.0),
        TransitionRecord("root", "RAN", 2.0),
        TransitionRecord("child", "SCHEDULED", 2.0),
    ]
    edges = [EdgeRecord(None, "root", "x", "a")]
    for _ in range(2):
        store.write(runs=runs, transitions=transitions, artifacts=[artifact("a")], edges=edges)
    assert store.transitions_of("root") == transitions[:2]
    assert store.transitions_of("child") == transitions[2:]
    assert store.edges_of_root("root") == edges
    # Entering a state again later is a new transition.
    store.write(transitions=[TransitionRecord("child", "SCHEDULED", 3.0)])
    assert len(store.transitions_of("child")) == 2


def test_artifacts_and_edges_are_written_once(store: SqlMetadataStore) -> None:
    edge = EdgeRecord(None, "root", "x", "a")
    output_edge = EdgeRecord("root", None, None, "a")
    for _ in range(2):
        store.write(runs=[run("root")], artifacts=[artifact("a", "first")], edges=[edge, edge])
        store.write(edges=[output_edge])
    store.write(artifacts=[artifact("a", "second")], edges=[output_edge])
    assert store.get_artifact("a").summary == "first"  # present: left as is
    assert store.edges_of_root("root") == [edge, output_edge]


def test_transitions_keep_their_order(store: SqlMetadataStore) -> None:
    store.write(runs=[run("root")], transitions=[TransitionRecord("root", "CREATED", 3.0)])
    later = [TransitionRecord("root", s, at) for s, at in [("SCHEDULED", 2.0), ("RAN", 1.0)]]
    store.write(transitions=later)
    store.write(transitions=[TransitionRecord("root", "RESOLVED", 0.5)])
    states = [t.state for t in store.transitions_of("root")]
    assert states == ["CREATED", "SCHEDULED", "RAN", "RESOLVED"]
    assert store.transitions_of("unknown") == []


def test_runs_and_edges_of_a_root(store: SqlMetadataStore) -> None:
    store.write(
        runs=[
            run("b", created_at=30.0),
            run("root", created_at=10.0),
            run("a", created_at=20.0),
            run("other", root_id="other", created_at=15.0),
        ],
        artifacts=[artifact("x"), artifact("y")],
        edges=[
            EdgeRecord("other", None, None, "y"),
            EdgeRecord(None, "a", "p", "x"),
            EdgeRecord("a", "b", "q", "y"),
            EdgeRecord("b", None, None, "y"),
        ],
    )
    assert [r.id for r in store.runs_of_root("root")] == ["root", "a", "b"]
    assert [e.destination_run_id for e in store.edges_of_root("root")] == ["a", "b", None]
    assert store.edges_of_root("other") == [EdgeRecord("other", None, None, "y")]
    assert store.runs_of_root("nothing") == [] and store.edges_of_root("nothing") == []


def test_list_runs(store: SqlMetadataStore) -> None:
    store.write(runs=[run(f"r{i}", root_id="r0", created_at=float(i)) for i in range(5)])
    store.write(runs=[run("s", root_id="s", created_at=2.5)])
    assert [r.id for r in store.list_runs(limit=3)] == ["r4", "r3", "s"]
    assert [r.id for r in store.list_runs(root_only=True)] == ["s", "r0"]


def test_find_cached_output_picks_the_latest_resolved(store: SqlMetadataStore) -> None:
    def cached(run_id: str, state: str, output: str | None, ended_at: float) -> RunRecord:
        return run(run_id, cache_key="k", state=state, output=output, ended_at=ended_at)

    assert store.find_cached_output("k") is None
    store.write(
        runs=[
            run("root"),
            cached("old", "RESOLVED", "art-old", 10.0),
            cached("new", "RESOLVED", "art-new", 20.0),
            cached("failed", "FAILED", "art-failed", 30.0),
            cached("no-output", "RESOLVED", None, 40.0),
            run("other-key", cache_key="k2", state="RESOLVED", output="art-k2"),
        ]
    )
    assert store.find_cached_output("k") == "art-new"
    assert store.find_cached_output("k2") == "art-k2"
    assert store.find_cached_output("unknown") is None


def test_missing_rows_raise(store: SqlMetadataStore) -> None:
    with pytest.raises(RunNotFoundError, match="'no-such-run'"):
        store.get_run("no-such-run")
    with pytest.raises(StoreError, match="'no-such-artifact'") as raised:
        store.get_artifact("no-such-artifact")
    assert not isinstance(raised.value, RunNotFoundError)


def test_a_failed_write_leaves_nothing(store: SqlMetadataStore) -> None:
    bad_edge = EdgeRecord("root", None, None, None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="artifact_id"):
        store.write(
            runs=[run("root")],
            transitions=[TransitionRecord("root", "CREATED", 1.0)],
            artifacts=[artifact("a")],
            edges=[EdgeRecord(None, "root", "x", "a"), bad_edge],
        )
    with pytest.raises(RunNotFoundError):
        store.get_run("root")
    with pytest.raises(StoreError):
        store.get_artifact("a")
    assert store.transitions_of("root") == [] and store.edges_of_root("root") == []
    # A transition of an unknown run breaks a foreign key; the store stays usable.
    with pytest.raises(StoreError):
        store.write(transitions=[TransitionRecord("ghost", "CREATED", 1.0)])
    store.write(runs=[run("root")])
    assert store.get_run("root") == run("root")


def test_reopening_migrates_nothing_and_keeps_data(db_url: str) -> None:
    with SqlMetadataStore(db_url) as first, SqlMetadataStore(db_url) as second:
        first.write(runs=[run("root")])
        assert second.get_run("root") == run("root")
    with SqlMetadataStore(db_url) as third:
        assert third.get_run("root") == run("root")


def test_migrations_match_the_models(store: SqlMetadataStore) -> None:
    assert ScriptDirectory.from_config(migrate.alembic_config()).get_heads() == [migrate.HEAD]
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == migrate.HEAD
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_database_from_a_newer_version_is_refused(db_url: str) -> None:
    with SqlMetadataStore(db_url) as store:
        engine = create_engine(store.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(ConfigurationError, match="newer version of sematic"):
        SqlMetadataStore(db_url)


OPEN_AND_WRITE = """
import sys
from sematic.core.records import RunRecord
from sematic.storage.sql import SqlMetadataStore
with SqlMetadataStore(sys.argv[1]) as store:
    n = sys.argv[2]
    store.write(runs=[RunRecord(n, n, None, "f", "m.f", "CREATED", 1.0, 1.0)])
"""


def test_processes_opening_a_new_database_at_once(db_url: str) -> None:
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_AND_WRITE, db_url, f"p{i}"]) for i in range(3)
    ]
    assert [p.wait(timeout=60) for p in processes] == [0] * 3
    with SqlMetadataStore(db_url) as store:
        assert [store.get_run(f"p{i}").id for i in range(3)] == ["p0", "p1", "p2"]


def test_threads_writing_at_once(store: SqlMetadataStore) -> None:
    def writer(thread: int) -> None:
        for i in range(20):
            run_id = f"t{thread}-{i}"
            store.write(
                runs=[run(run_id)],
                transitions=[TransitionRecord(run_id, "CREATED", 1.0)],
                artifacts=[artifact("shared"), artifact(run_id)],
                edges=[EdgeRecord(None, run_id, "x", "shared")],
            )

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.runs_of_root("root")) == 80
    assert len(store.edges_of_root("root")) == 80


READER = """
import sys, time
from sematic.storage.sql import SqlMetadataStore
with SqlMetadataStore(sys.argv[1]) as store:
    start = time.monotonic()
    state = store.get_run("root").state
    print(state, time.monotonic() - start, flush=True)
    sys.stdin.readline()
    print(store.get_run("root").state, flush=True)
"""


def test_sqlite_reader_process_is_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with SqlMetadataStore(f"sqlite:///{path}") as store:
        store.write(runs=[run("root", state="RESOLVED")])
        # Another connection holds the write lock with an uncommitted change.
        writer = sqlite3.connect(path, isolation_level=None)
        try:
            assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE runs SET state = 'FAILED' WHERE id = 'root'")
            with subprocess.Popen(
                [sys.executable, "-c", READER, f"sqlite:///{path}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            ) as reader:
                assert reader.stdin is not None and reader.stdout is not None
                state, _ = reader.stdout.readline().split()
                assert state == "RESOLVED"  # the last committed value, at once
                writer.execute("COMMIT")
                reader.stdin.write("go\n")
                reader.stdin.flush()
                assert reader.stdout.readline().strip() == "FAILED"
                assert reader.wait(timeout=30) == 0
        finally:
            writer.close()
        assert store.get_run("root").state == "FAILED"


def test_bad_urls_raise_configuration_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    closed_port = 9  # discard: nothing listens there
    cases = {
        "nonsense": "nonsense",
        "mysql://user:s3cret@db.example/meta": "mysql://user:***@db.example/meta",
        f"postgresql+psycopg://user:s3cret@127.0.0.1:{closed_port}/meta": "127.0.0.1:9",
        "postgresql+nosuchdriver://user:s3cret@127.0.0.1/meta": "user:***@",
        f"sqlite:///{a_file}/db.sqlite": str(a_file),
    }
    for url, shown in cases.items():
        with pytest.raises(ConfigurationError) as raised:
            SqlMetadataStore(url)
        message = str(raised.value)
        assert shown in message and "s3cret" not in message, message
