"""The listing queries on SQLite and PostgreSQL: filters, order, pagination, totals."""

from __future__ import annotations

from typing import Any

import pytest

from sematic.core.records import ArtifactRecord, RunRecord
from sematic.storage.sql import SqlMetadataStore


def _run(i: int, *, root: int, state: str = "RESOLVED", tags: tuple[str, ...] = ()) -> RunRecord:
    return RunRecord(
        id=f"{i:032x}",
        root_id=f"{root:032x}",
        parent_id=None if i == root else f"{root:032x}",
        name=f"step{i % 3}",
        function_path=f"module.step{i % 3}",
        state=state,
        created_at=1000.0 + i,
        updated_at=1000.0 + i,
        tags=tags,
    )


@pytest.fixture
def seeded(store: SqlMetadataStore) -> SqlMetadataStore:
    store.write(
        runs=[
            _run(
                i,
                root=0 if i < 10 else 10,
                state="FAILED" if i == 4 else "RESOLVED",
                tags=("a", "b") if i % 2 else ("ab",),
            )
            for i in range(20)
        ],
        artifacts=[
            ArtifactRecord(id=c * 64, type_description={}, summary=None, size=1, created_at=1.0)
            for c in "abc"
        ],
    )
    return store


def _ids(store: SqlMetadataStore, limit: int = 100, offset: int = 0, **filters: Any) -> list[int]:
    return [int(run.id, 16) for run in store.list_runs(limit=limit, offset=offset, **filters)]


def test_filters_order_and_pages(seeded: SqlMetadataStore) -> None:
    assert _ids(seeded) == list(range(19, -1, -1))
    assert _ids(seeded, limit=5, offset=3) == [16, 15, 14, 13, 12]
    assert seeded.count_runs() == 20
    assert _ids(seeded, root_only=True) == [10, 0]
    assert _ids(seeded, status="FAILED") == [4]
    assert _ids(seeded, name="step1") == [19, 16, 13, 10, 7, 4, 1]
    assert _ids(seeded, tag="a") == list(range(19, 0, -2))
    assert _ids(seeded, tag="ab") == list(range(18, -1, -2))
    assert _ids(seeded, tag="x") == []
    assert _ids(seeded, tag="a", name="step1", status="RESOLVED") == [19, 13, 7, 1]
    assert _ids(seeded, limit=1, tag="a", name="step1", status="RESOLVED") == [19]
    assert seeded.count_runs(tag="a", name="step1", status="RESOLVED") == 4
    assert seeded.count_runs(tag="'; DROP TABLE runs; --") == 0


def test_artifacts_by_ids(seeded: SqlMetadataStore) -> None:
    found = seeded.get_artifacts(["b" * 64, "a" * 64, "d" * 64, "a" * 64])
    assert [artifact.id for artifact in found] == ["a" * 64, "b" * 64]
    assert seeded.get_artifacts([]) == []
