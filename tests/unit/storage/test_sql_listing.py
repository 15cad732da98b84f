"""Listing runs at scale, on SQLite and PostgreSQL: keyset pages (a cursor), capped counts,
filters with the cursor, a pipeline's runs that ran in pods, and the indexes the planner
picks. How fast it is with a million runs is measured by benchmarks/runs_at_scale.py."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any

import pytest
from sqlalchemy import text

from sematic.core import cursor
from sematic.core.records import RunRecord
from sematic.storage.sql import SqlMetadataStore

T0 = 1_700_000_000.0
USERS = ("ada", "bob", "cy")


def _run(i: int, *, root: int, at: float, **fields: Any) -> RunRecord:
    values: dict[str, Any] = {
        "id": f"{i:032x}",
        "root_id": f"{root:032x}",
        "parent_id": None if i == root else f"{root:032x}",
        "name": f"pipeline{root % 2}" if i == root else f"step{i % 3}",
        "function_path": "module.step",
        "state": ("RESOLVED", "FAILED", "CANCELED")[i % 3],
        "created_at": at,
        "updated_at": at,
        "submitted_by": USERS[root % 3],
        **fields,
    }
    return RunRecord(**values)


def _pipelines(count: int, size: int, *, first: int = 0, at: float = T0) -> list[RunRecord]:
    """``count`` pipelines of ``size`` runs; many runs share a creation time (4 per time)."""
    written = []
    for p in range(count):
        root = first + p * size
        for j in range(size):
            written.append(_run(root + j, root=root, at=at + (p * size + j) // 4))
    return written


def _key(run: RunRecord) -> tuple[float, str]:
    return run.created_at, run.id


def _newest_first(records: list[RunRecord]) -> list[str]:
    return [run.id for run in sorted(records, key=_key, reverse=True)]


def _pages(store: SqlMetadataStore, size: int, **filters: Any) -> list[list[RunRecord]]:
    pages, after = [], None
    while True:
        page = store.list_runs(after=after, limit=size, **filters)
        if page:
            pages.append(page)
        if len(page) < size:
            return pages
        after = _key(page[-1])


def test_keyset_pages_cover_every_run_once_with_equal_creation_times(
    store: SqlMetadataStore,
) -> None:
    written = _pipelines(6, 11)
    store.write(runs=written)
    for size in (1, 4, 7, 66, 100):
        pages = _pages(store, size)
        assert [run.id for page in pages for run in page] == _newest_first(written), size
        assert all(len(page) == size for page in pages[:-1])


def test_runs_written_while_paging_neither_repeat_nor_hide_older_ones(
    store: SqlMetadataStore,
) -> None:
    """Runs created while a client pages (newer than its cursor) do not shift the pages:
    every run that existed when paging began is listed once (offsets would repeat runs)."""
    before = _pipelines(5, 10)
    store.write(runs=before)
    stop = threading.Event()
    errors: list[BaseException] = []
    fresh = itertools.count(10_000)

    def writer() -> None:
        try:
            while not stop.is_set():
                i = next(fresh)
                store.write(runs=[_run(i, root=i, at=T0 + 1_000 + i)])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[str] = []
        page = store.list_runs(limit=3)
        start = page[0].created_at
        seen.extend(run.id for run in page)
        while len(page) == 3:
            page = store.list_runs(after=_key(page[-1]), limit=3)
            seen.extend(run.id for run in page)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(seen) == len(set(seen))
    older = [run_id for run_id in seen if int(run_id, 16) < 10_000]
    assert older == _newest_first(before)
    assert store.count_runs() > len(before)  # runs were written meanwhile
    assert all(store.get_run(run_id).created_at <= start for run_id in older)


def test_filters_combine_with_the_cursor(store: SqlMetadataStore) -> None:
    written = _pipelines(12, 7)
    store.write(runs=written)
    cases: list[dict[str, Any]] = [
        {"root_only": True},
        {"status": "FAILED"},
        {"status": "FAILED", "root_only": True},
        {"name": "step1"},
        {"name": "pipeline1", "root_only": True},
        {"submitted_by": "bob"},
        {"submitted_by": "cy", "root_only": True, "status": "CANCELED"},
        {"root_id": f"{14:032x}"},
    ]
    for filters in cases:
        expected = [run for run in written if _matches(run, filters)]
        assert expected, filters
        for size in (2, 5):
            listed = [run.id for page in _pages(store, size, **filters) for run in page]
            assert listed == _newest_first(expected), (filters, size)
        assert store.count_runs(**filters) == len(expected)


def _matches(run: RunRecord, filters: dict[str, Any]) -> bool:
    return (
        (not filters.get("root_only") or run.id == run.root_id)
        and filters.get("status", run.state) == run.state
        and filters.get("name", run.name) == run.name
        and filters.get("submitted_by", run.submitted_by) == run.submitted_by
        and filters.get("root_id", run.root_id) == run.root_id
    )


def test_the_cursor_and_an_offset_add_up(store: SqlMetadataStore) -> None:
    written = _pipelines(3, 10)
    store.write(runs=written)
    order = _newest_first(written)
    after = store.list_runs(limit=5)[-1]
    assert [r.id for r in store.list_runs(after=_key(after), offset=4, limit=3)] == order[9:12]


def test_counts_stop_at_the_cap(store: SqlMetadataStore) -> None:
    store.write(runs=_pipelines(4, 25))
    assert store.count_runs() == 100
    assert store.count_runs(cap=10) == 10
    assert store.count_runs(cap=100) == 100
    assert store.count_runs(cap=1_000) == 100
    assert store.count_runs(cap=0) == 0
    assert store.count_runs(status="FAILED", cap=5) == 5
    assert store.count_runs(root_only=True, cap=3) == 3
    assert store.count_runs(root_only=True, cap=10) == 4
    assert store.count_runs(name="nothing", cap=10) == 0


def test_a_pipelines_runs_that_ran_in_pods(store: SqlMetadataStore) -> None:
    pod = {"usage": {"cpu_seconds": 1.0}, "attempts": []}
    written = [
        _run(i, root=0, at=T0 + i, execution=pod if i % 10 == 3 else None) for i in range(200)
    ]
    store.write(runs=[*written, _run(500, root=500, at=T0, execution=pod)])
    in_pods = store.list_runs(root_id=f"{0:032x}", in_pods=True, limit=1_000)
    assert [run.id for run in in_pods] == _newest_first([r for r in written if r.execution])
    assert store.count_runs(root_id=f"{0:032x}", in_pods=True) == 20
    assert store.count_runs(in_pods=True) == 21


def test_a_cursor_round_trips_and_refuses_anything_else() -> None:
    position = (T0 + 0.123456789, "ab" * 16)
    assert cursor.decode(cursor.encode(position)) == position
    for bad in ("", "x", "!!!", cursor.encode((T0, "not-an-id")), "W10", "eyJhIjoxfQ", "a" * 500):
        with pytest.raises(ValueError):
            cursor.decode(bad)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_runs_created_at_id"),
        ({"root_only": True}, "ix_roots_created_at_id"),
        ({"status": "FAILED"}, "ix_runs_state_created_at_id"),
        ({"status": "FAILED", "root_only": True}, "ix_roots_state_created_at_id"),
        ({"name": "x"}, "ix_runs_name_created_at_id"),
        ({"name": "x", "root_only": True}, "ix_roots_name_created_at_id"),
        ({"submitted_by": "u"}, "ix_runs_submitted_by_created_at_id"),
        ({"submitted_by": "u", "root_only": True}, "ix_roots_submitted_by_created_at_id"),
        ({"root_id": "ab" * 16, "in_pods": True}, "ix_runs_in_pods_root_id"),
    ],
)
def test_sqlite_lists_through_the_index_that_gives_the_order(
    tmp_path: Any, filters: dict[str, Any], index: str
) -> None:
    """SQLite's plan, with or without a cursor: the page's ids come from the filter's index,
    searched in order (only the page's rows are then read and sorted), never a scan of the
    table. (PostgreSQL's plan depends on its statistics: benchmarks/runs_at_scale.py
    prints it on a million runs.)"""
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        conditions = store._run_conditions(
            tag=None,
            **{"status": None, "name": None, "root_only": False, "submitted_by": None, **filters},
        )
        for after in (None, (T0, "ab" * 16)):
            query = store._listing(conditions, after, 50)
            sql = query.compile(store._engine, compile_kwargs={"literal_binds": True})
            with store._engine.connect() as connection:
                plan = " ".join(
                    str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                )
            used = re.search(f"(SEARCH|SCAN) runs USING (COVERING )?INDEX {index}( |$)", plan)
            assert used, plan
            assert not re.search(r"SCAN (runs|page)(?! USING)", plan), plan  # no table scan
