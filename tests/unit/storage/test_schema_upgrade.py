"""Upgrading a team's existing database: data written under an older schema revision is
read back intact once ``SqlMetadataStore`` has migrated it to head, on SQLite and on a real
PostgreSQL server, also when two server replicas open it at the same moment.

The revisions come from Alembic's script directory (never hard-coded), so a new migration
is tested against every older revision as soon as it lands. Old data is inserted with SQL
built from the tables as reflected from the database at that revision, not from today's
models: the test writes what an older sematic wrote.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Column, Connection, Engine, MetaData, Table, inspect, null, select

from sematic.core.engine import State
from sematic.core.records import (
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)
from sematic.storage.sql import SqlMetadataStore, connect, migrate

_SCRIPTS = ScriptDirectory.from_config(migrate.alembic_config())
HEAD = _SCRIPTS.get_current_head()
# Newest first: HEAD, the revision before it, ..., the first one.
CHAIN = [script.revision for script in _SCRIPTS.walk_revisions()]
BELOW_HEAD = CHAIN[1:]
PREVIOUS = BELOW_HEAD[0] if BELOW_HEAD else None


def _hex(name: str, digits: int) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:digits]


def _run_id(name: str) -> str:
    return _hex(f"run:{name}", 32)


def _artifact_id(name: str) -> str:
    return _hex(f"artifact:{name}", 64)


T0 = 1_764_000_000.25  # late 2025


@dataclass(frozen=True)
class History:
    """What an older sematic recorded: three pipelines, one resolved, one failed, one
    running with a cancel request."""

    runs: list[RunRecord]
    transitions: list[TransitionRecord]  # in the order written
    artifacts: list[ArtifactRecord]
    edges: list[EdgeRecord]  # in the order written
    cancels: list[CancelRecord]

    def run(self, name: str) -> RunRecord:
        return next(run for run in self.runs if run.id == _run_id(name))


def _history() -> History:
    config, data, model, batch = (
        _artifact_id(name) for name in ("config", "data", "model", "batch")
    )
    train, score, serve = _run_id("train"), _run_id("score"), _run_id("serve")
    runs = [
        RunRecord(
            id=train,
            root_id=train,
            parent_id=None,
            name="train_pipeline",
            function_path="pipelines.train.train_pipeline",
            state=State.RESOLVED,
            created_at=T0,
            updated_at=T0 + 95.5,
            inline=False,
            source_code="@sematic.func\ndef train_pipeline(config: dict) -> Model:\n    ...\n",
            docstring="Loads the data and trains the model — ünïcödé ✓.",
            resource_requirements={"cpu": 1, "memory_gib": 2.5},
            base_image_tag="default",
            container_image="registry.example/ml@sha256:" + "ab" * 32,
            tags=("nightly", "team:ml"),
            inputs={"config": config},
            output=model,
            nested_run_id=_run_id("train/fit"),
            started_at=T0 + 1.5,
            ended_at=T0 + 95.5,
        ),
        RunRecord(
            id=_run_id("train/load"),
            root_id=train,
            parent_id=train,
            name="load_data",
            function_path="pipelines.train.load_data",
            state=State.RESOLVED,
            created_at=T0 + 2.0,
            updated_at=T0 + 3.0,
            inline=True,
            cache_key=_hex("load_data(config)", 64),
            cache_hit=True,
            tags=("nightly",),
            inputs={"config": config},
            output=data,
            started_at=T0 + 2.5,
            ended_at=T0 + 3.0,
        ),
        RunRecord(
            id=_run_id("train/fit"),
            root_id=train,
            parent_id=train,
            name="fit",
            function_path="pipelines.train.fit",
            state=State.RESOLVED,
            created_at=T0 + 2.5,
            updated_at=T0 + 95.0,
            inline=False,
            resource_requirements={"cpu": 4, "memory_gib": 16.5, "gpu": {"count": 1}},
            container_image="registry.example/ml@sha256:" + "cd" * 32,
            inputs={"data": data, "config": config},
            output=model,
            started_at=T0 + 10.0,
            ended_at=T0 + 95.0,
        ),
        RunRecord(
            id=score,
            root_id=score,
            parent_id=None,
            name="score_pipeline",
            function_path="pipelines.score.score_pipeline",
            state=State.NESTED_FAILED,
            created_at=T0 + 200.0,
            updated_at=T0 + 230.0,
            tags=("adhoc",),
            inputs={"model": model},
            exception_type="builtins.ValueError",
            exception_message="a step failed: fit_score",
            started_at=T0 + 200.5,
            ended_at=T0 + 230.0,
        ),
        RunRecord(
            id=_run_id("score/evaluate"),
            root_id=score,
            parent_id=score,
            name="evaluate",
            function_path="pipelines.score.evaluate",
            state=State.FAILED,
            created_at=T0 + 201.0,
            updated_at=T0 + 229.0,
            inline=False,
            inputs={"model": model},
            exception_type="builtins.ValueError",
            exception_message="bad 'threshold': -1\nexpected a probability",
            traceback=(
                "Traceback (most recent call last):\n"
                '  File "pipelines/score.py", line 12, in evaluate\n'
                "ValueError: bad 'threshold'"
            ),
            started_at=T0 + 205.0,
            ended_at=T0 + 229.0,
        ),
        RunRecord(
            id=serve,
            root_id=serve,
            parent_id=None,
            name="serve_pipeline",
            function_path="pipelines.serve.serve_pipeline",
            state=State.RAN,
            created_at=T0 + 300.0,
            updated_at=T0 + 302.0,
            tags=("nightly", "prod"),
            inputs={"batch": batch},
            started_at=T0 + 301.0,
        ),
        RunRecord(
            id=_run_id("serve/predict"),
            root_id=serve,
            parent_id=serve,
            name="predict",
            function_path="pipelines.serve.predict",
            state=State.SCHEDULED,
            created_at=T0 + 302.0,
            updated_at=T0 + 302.0,
            inline=False,
            inputs={"batch": batch},
        ),
    ]
    # Each run's states, one a second from its creation; written in time order across runs.
    paths = {
        train: [State.CREATED, State.SCHEDULED, State.RAN, State.RESOLVED],
        _run_id("train/load"): [State.CREATED, State.SCHEDULED, State.RESOLVED],
        _run_id("train/fit"): [State.CREATED, State.SCHEDULED, State.RESOLVED],
        score: [State.CREATED, State.SCHEDULED, State.RAN, State.NESTED_FAILED],
        _run_id("score/evaluate"): [
            State.CREATED,
            State.SCHEDULED,
            State.RETRYING,
            State.SCHEDULED,
            State.FAILED,
        ],
        serve: [State.CREATED, State.SCHEDULED, State.RAN],
        _run_id("serve/predict"): [State.CREATED, State.SCHEDULED],
    }
    steps = [
        (run.id, state, run.created_at + i) for run in runs for i, state in enumerate(paths[run.id])
    ]
    steps.sort(key=lambda step: step[2])
    transitions = [TransitionRecord(run_id, state, at) for run_id, state, at in steps]
    artifacts = [
        ArtifactRecord(
            config,
            {"type": ["builtins", "dict"], "args": {"key": "str", "value": "Any"}},
            {"lr": 0.001, "epochs": 10, "layers": [64, 32], "name": "ünï"},
            412,
            T0 + 0.5,
        ),
        ArtifactRecord(
            data, {"type": ["pandas", "DataFrame"]}, [[1, 2.5], [None, 3]], 10_485_760, T0 + 3.0
        ),
        ArtifactRecord(
            model, {"type": ["pipelines.model", "Model"]}, "Model(layers=2)", 5 * 2**31, T0 + 95.0
        ),
        ArtifactRecord(batch, {"type": ["builtins", "list"]}, None, 0, T0 + 299.5),
    ]
    edges = [
        EdgeRecord(None, train, "config", config),
        EdgeRecord(None, _run_id("train/load"), "config", config),
        EdgeRecord(_run_id("train/load"), _run_id("train/fit"), "data", data),
        EdgeRecord(None, _run_id("train/fit"), "config", config),
        EdgeRecord(_run_id("train/fit"), None, None, model),
        EdgeRecord(None, score, "model", model),
        EdgeRecord(None, _run_id("score/evaluate"), "model", model),
        EdgeRecord(None, serve, "batch", batch),
        EdgeRecord(None, _run_id("serve/predict"), "batch", batch),
    ]
    cancels = [CancelRecord(serve, "canceled by alice@example.com: wrong batch", T0 + 303.0)]
    return History(runs, transitions, artifacts, edges, cancels)


# Creating a database at an older revision and filling it, with SQL from the reflected tables.


def _engine_for(url: str) -> Engine:
    return connect.create(connect.parse(url))


def _create_at(url: str, revision: str) -> None:
    """Creates the schema of ``revision`` in the empty database ``url`` with Alembic."""
    engine = _engine_for(url)
    try:
        config = migrate.alembic_config()
        # As migrate.upgrade does: env.py migrates the connection handed over.
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        assert migrate.current_revisions(engine) == {revision}
    finally:
        engine.dispose()


def _plausible(column: Column[Any]) -> Any:
    """A value for a NOT NULL column that none of today's records has (a dropped column)."""
    if isinstance(column.type, JSON):
        return {}
    kind = column.type.python_type
    return {str: "", bool: False, int: 0, float: 0.0}.get(kind, kind())


def _row(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as a row of ``table`` as it is at this revision: unknown keys dropped, every
    other NOT NULL column filled, Python None in a nullable JSON column as SQL NULL."""
    row: dict[str, Any] = {}
    for column in table.c:
        if column is table.autoincrement_column or column.server_default is not None:
            continue
        if column.name in values:
            value = values[column.name]
            row[column.name] = (
                null()
                if value is None and column.nullable and isinstance(column.type, JSON)
                else value
            )
        elif not column.nullable:
            row[column.name] = _plausible(column)
    return row


def _insert_history(url: str, history: History) -> set[str]:
    """Writes ``history`` as rows of the tables in the database; returns those tables."""
    engine = _engine_for(url)
    try:
        metadata = MetaData()
        with engine.begin() as connection:
            metadata.reflect(bind=connection)
            tables = metadata.tables

            def insert(name: str, rows: list[dict[str, Any]]) -> None:
                table = tables[name]
                connection.execute(table.insert(), [_row(table, row) for row in rows])

            insert("runs", [_run_values(run) for run in history.runs])
            insert("artifacts", [_values(artifact) for artifact in history.artifacts])
            insert("run_transitions", [_values(t) for t in history.transitions])
            # An older sematic stored a missing run id or parameter as '' (never NULL).
            insert(
                "edges",
                [
                    {name: "" if value is None else value for name, value in _values(e).items()}
                    for e in history.edges
                ],
            )
            if "cancel_requests" in tables:
                insert("cancel_requests", [_values(cancel) for cancel in history.cancels])
            if not _transitions_unique(connection):
                # A client retried a write whose answer it lost: a schema that allowed it
                # kept the transition twice; the store shows it once (the first copy).
                predict = _run_id("serve/predict")
                again = [t for t in history.transitions if t.run_id == predict][-1]
                insert("run_transitions", [_values(again)])
            return set(tables)
    finally:
        engine.dispose()


def _transitions_unique(connection: Connection) -> bool:
    """Whether the schema refuses a second copy of a transition (same run, state and time)."""
    inspector = inspect(connection)
    keys: set[str | None] = {"run_id", "state", "at"}
    unique = [
        set(i["column_names"]) for i in inspector.get_indexes("run_transitions") if i["unique"]
    ]
    unique += [set(c["column_names"]) for c in inspector.get_unique_constraints("run_transitions")]
    return any(columns <= keys for columns in unique)


def _values(record: Any) -> dict[str, Any]:
    return {spec.name: getattr(record, spec.name) for spec in fields(record)}


def _run_values(run: RunRecord) -> dict[str, Any]:
    values = _values(run)
    values["tags"] = list(run.tags)
    values["state"] = str(run.state)
    return values


def _columns(url: str, table: str) -> set[str]:
    engine = _engine_for(url)
    try:
        with engine.connect() as connection:
            return {column.name for column in Table(table, MetaData(), autoload_with=connection).c}
    finally:
        engine.dispose()


# Reading it back through the store.


def _fields(run: RunRecord, columns: set[str]) -> dict[str, Any]:
    """The fields of ``run`` that the older schema had columns for (later ones are new)."""
    return {spec.name: getattr(run, spec.name) for spec in fields(run) if spec.name in columns}


def _check_history(
    store: SqlMetadataStore,
    history: History,
    run_columns: set[str],
    *,
    cancels: bool,
    older_roots: tuple[str, ...] = (),
) -> None:
    """Every row of ``history`` reads back as written (``older_roots``: ids of other root
    runs, created before the history, in listing order)."""
    assert {"id", "root_id", "state", "tags", "inputs", "resource_requirements"} <= run_columns
    for expected in history.runs:
        assert _fields(store.get_run(expected.id), run_columns) == _fields(expected, run_columns)
    roots = [run for run in history.runs if run.id == run.root_id]
    for root in roots:
        of_root = [run for run in history.runs if run.root_id == root.id]
        stored = store.runs_of_root(root.id)
        assert [run.id for run in stored] == [run.id for run in of_root]
        ids = {run.id for run in of_root}
        assert store.edges_of_root(root.id) == [
            e for e in history.edges if e.source_run_id in ids or e.destination_run_id in ids
        ]
    for run in history.runs:
        assert store.transitions_of(run.id) == [
            t for t in history.transitions if t.run_id == run.id
        ]
    for artifact in history.artifacts:
        assert store.get_artifact(artifact.id) == artifact
    newest_first = sorted(history.runs, key=lambda run: (run.created_at, run.id), reverse=True)
    assert [run.id for run in store.list_runs()] == [
        *(run.id for run in newest_first),
        *older_roots,
    ]
    assert [run.id for run in store.list_runs(root_only=True)] == [
        *(run.id for run in newest_first if run.id == run.root_id),
        *older_roots,
    ]
    assert [run.id for run in store.list_runs(tag="nightly")] == [
        run.id for run in newest_first if "nightly" in run.tags
    ]
    assert [run.id for run in store.list_runs(status="FAILED")] == [_run_id("score/evaluate")]
    assert store.count_runs() == len(history.runs) + len(older_roots)
    assert (
        store.find_cached_output(history.run("train/load").cache_key or "")
        == history.run("train/load").output
    )
    serve = _run_id("serve")
    assert store.cancel_request(serve) == (history.cancels[0] if cancels else None)


def _check_writes_work(store: SqlMetadataStore, history: History) -> None:
    """The upgraded database takes new writes: old runs settle, a new pipeline starts."""
    serve, predict = history.run("serve"), history.run("serve/predict")
    canceled = [
        replace(run, state=State.CANCELED, updated_at=T0 + 400.0, ended_at=T0 + 400.0)
        for run in (serve, predict)
    ]
    new_root = RunRecord(
        _run_id("retrain"),
        _run_id("retrain"),
        None,
        "train_pipeline",
        "pipelines.train.train_pipeline",
        State.CREATED,
        T0 + 500.0,
        T0 + 500.0,
        tags=("nightly",),
        inputs={"config": _artifact_id("config2")},
    )
    new_artifact = ArtifactRecord(
        _artifact_id("config2"), {"type": ["builtins", "dict"]}, {"lr": 0.01}, 9, T0 + 499.0
    )
    new_edge = EdgeRecord(None, new_root.id, "config", new_artifact.id)
    store.write(
        runs=[*canceled, new_root],
        transitions=[
            TransitionRecord(predict.id, State.CANCELED, T0 + 400.0),
            TransitionRecord(serve.id, State.CANCELED, T0 + 400.0),
            TransitionRecord(new_root.id, State.CREATED, T0 + 500.0),
        ],
        artifacts=[new_artifact],
        edges=[new_edge],
    )
    store.request_cancel(new_root.id, "no longer needed")

    for run in (*canceled, new_root):
        assert store.get_run(run.id) == run
    old = [t for t in history.transitions if t.run_id == predict.id]
    assert store.transitions_of(predict.id) == [
        *old,
        TransitionRecord(predict.id, State.CANCELED, T0 + 400.0),
    ]
    assert store.transitions_of(new_root.id) == [
        TransitionRecord(new_root.id, State.CREATED, T0 + 500.0)
    ]
    assert store.get_artifact(new_artifact.id) == new_artifact
    assert store.edges_of_root(new_root.id) == [new_edge]
    assert store.list_runs(limit=1) == [new_root]
    cancel = store.cancel_request(new_root.id)
    assert cancel is not None and cancel.reason == "no longer needed"


def _version_rows(connection: Connection) -> list[str]:
    version = Table(migrate.VERSION_TABLE, MetaData(), autoload_with=connection)
    return [str(value) for (value,) in connection.execute(select(version.c.version_num))]


def _check_at_head(url: str) -> None:
    engine = _engine_for(url)
    try:
        assert migrate.current_revisions(engine) == {HEAD}
        with engine.connect() as connection:
            assert _version_rows(connection) == [HEAD]
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", BELOW_HEAD, ids=[f"from-{r}" for r in BELOW_HEAD])
def test_an_older_database_is_upgraded_with_its_data(db_url: str, revision: str) -> None:
    _create_at(db_url, revision)
    history = _history()
    tables = _insert_history(db_url, history)
    run_columns = _columns(db_url, "runs")

    with SqlMetadataStore(db_url) as store:
        _check_at_head(db_url)
        _check_history(store, history, run_columns, cancels="cancel_requests" in tables)
        _check_writes_work(store, history)
    # Reopened: still at head, the old rows and the new ones still there.
    with SqlMetadataStore(db_url) as store:
        _check_at_head(db_url)
        assert store.count_runs() == len(history.runs) + 1


REPLICA = r"""
import json, re, sys, time
from pathlib import Path

from alembic import command  # imported before the start, as a server has by then
from sqlalchemy import Engine, event

from sematic.core.records import RunRecord
from sematic.storage.sql import SqlMetadataStore, migrate

url, name, ready, start = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
# What this process changed in the schema: DDL, and the version row of each step.
changes = []
SCHEMA_CHANGE = re.compile(r"\s*(CREATE|ALTER|DROP|(INSERT INTO|UPDATE) alembic_version)\b", re.I)


@event.listens_for(Engine, "before_cursor_execute")
def _changes(conn, cursor, statement, parameters, context, executemany):
    if SCHEMA_CHANGE.match(statement):
        changes.append(" ".join(statement.split()[:3]))


read = migrate.current_revisions
seen = []


def current_revisions(engine):
    # The first call is upgrade()'s "already at head?" check: once it has answered, wait
    # until the other replica has answered too, so both go on to migrate at once.
    found = read(engine)
    if not seen:
        seen.extend(sorted(found))
        ready.touch()
        deadline = time.monotonic() + 60
        while not start.exists():
            if time.monotonic() > deadline:
                sys.exit("never told to start")
            time.sleep(0.001)
    return found


migrate.current_revisions = current_revisions
with SqlMetadataStore(url) as store:
    store.write(runs=[RunRecord(name, name, None, "serve", "m.serve", "CREATED", 1.0, 1.0)])
print(json.dumps({"seen": seen, "changes": changes}))
"""


def test_two_replicas_upgrade_an_older_database_at_once(db_url: str, tmp_path: Path) -> None:
    assert PREVIOUS is not None, f"no revision below {HEAD}: nothing to upgrade from"
    _create_at(db_url, PREVIOUS)
    history = _history()
    tables = _insert_history(db_url, history)
    run_columns = _columns(db_url, "runs")

    names = [_run_id(f"replica-{i}") for i in range(2)]
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    start = tmp_path / "start"
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, db_url, name, str(flag), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, flag in zip(names, ready, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready):
            exited = [p for p in replicas if p.poll() is not None]
            assert not exited and time.monotonic() < deadline, [p.communicate() for p in exited]
            time.sleep(0.005)
        start.touch()
        outputs = [p.communicate(timeout=60) for p in replicas]
    finally:
        for p in replicas:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in replicas] == [0, 0], outputs
    reports = [json.loads(out) for out, _ in outputs]
    # Both had found the database at the previous revision before either migrated...
    assert [report["seen"] for report in reports] == [[PREVIOUS], [PREVIOUS]]
    # ...and still the migrations ran once: the second found head once it had the lock.
    idle, migrator = sorted(reports, key=lambda report: len(report["changes"]))
    assert idle["changes"] == [], reports
    assert "UPDATE alembic_version SET" in migrator["changes"], reports

    _check_at_head(db_url)
    with SqlMetadataStore(db_url) as store:
        # The replicas' own runs (created at 1.0, before the history) were written too.
        _check_history(
            store,
            history,
            run_columns,
            cancels="cancel_requests" in tables,
            older_roots=tuple(sorted(names, reverse=True)),  # equal times: greater id first
        )
        assert [store.get_run(name).id for name in names] == names
