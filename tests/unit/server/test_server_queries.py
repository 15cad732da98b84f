"""The listing query on SQLite and PostgreSQL: filters, order, pagination, totals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sematic.core.records import ArtifactRecord, RunRecord
from sematic.server.queries import Queries, RunFilter
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


@pytest.fixture(params=["sqlite", "postgresql"])
def queries(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queries]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with SqlMetadataStore(url) as store:
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
        listing = Queries(store.url)
        try:
            yield listing
        finally:
            listing.close()


def _ids(queries: Queries, where: RunFilter, limit: int = 100, offset: int = 0) -> list[int]:
    page = queries.list_runs(where, limit=limit, offset=offset)
    return [int(run.id, 16) for run in page.runs]


def test_filters_order_and_pages(queries: Queries) -> None:
    assert _ids(queries, RunFilter()) == list(range(19, -1, -1))
    assert _ids(queries, RunFilter(), limit=5, offset=3) == [16, 15, 14, 13, 12]
    assert queries.list_runs(RunFilter(), limit=5, offset=3).total == 20
    assert _ids(queries, RunFilter(root_only=True)) == [10, 0]
    assert _ids(queries, RunFilter(state="FAILED")) == [4]
    assert _ids(queries, RunFilter(name="step1")) == [19, 16, 13, 10, 7, 4, 1]
    assert _ids(queries, RunFilter(tag="a")) == list(range(19, 0, -2))
    assert _ids(queries, RunFilter(tag="ab")) == list(range(18, -1, -2))
    assert _ids(queries, RunFilter(tag="x")) == []
    both = RunFilter(tag="a", name="step1", state="RESOLVED")
    assert _ids(queries, both) == [19, 13, 7, 1]
    assert queries.list_runs(both, limit=1, offset=0).total == 4
    assert queries.list_runs(RunFilter(tag="'; DROP TABLE runs; --"), limit=1, offset=0).total == 0


def test_artifacts_by_ids(queries: Queries) -> None:
    found = queries.artifacts(["b" * 64, "a" * 64, "d" * 64, "a" * 64])
    assert [artifact.id for artifact in found] == ["a" * 64, "b" * 64]
    assert queries.artifacts([]) == []
