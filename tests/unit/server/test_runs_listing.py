"""``GET /runs`` pages by cursor and counts up to a cap, on a real server over SQLite and
over PostgreSQL; ``HttpMetadataStore`` follows the cursors and reads what SQL reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sematic.core import cursor
from sematic.core.records import RunRecord
from sematic.storage.http import HttpMetadataStore
from sematic.storage.http import metadata as http_metadata
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import server_env, start_server

T0 = 1_700_000_000.0
MANY = 10_001  # one more run than the server counts by default
POD = {"usage": {"seconds": 1.0, "cpu_seconds": 1.0}}


def _runs(first: int, count: int, *, root_every: int, at: float) -> list[RunRecord]:
    """Pipelines of ``root_every`` runs; four runs share each creation time."""
    written = []
    for i in range(first, first + count):
        root = i - (i - first) % root_every
        written.append(
            RunRecord(
                id=f"{i:032x}",
                root_id=f"{root:032x}",
                parent_id=None if i == root else f"{root:032x}",
                name="pipe" if i == root else f"step{i % 3}",
                function_path="module.step",
                state=("RESOLVED", "FAILED")[i % 2],
                created_at=at + (i - first) // 4,
                updated_at=at + (i - first) // 4,
                submitted_by=("ada", "bob")[(root // root_every) % 2],
                execution=POD if i % 7 == 3 else None,
            )
        )
    return written


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def listed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, list[RunRecord]]]:
    """A server over 10,001 runs plus 60 newer ones; yields its URL, the database URL and
    the 60 newer runs."""
    home = tmp_path_factory.mktemp("listing") / "home"
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'db.sqlite3'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.database_url(server.create_database())
    recent = _runs(MANY, 60, root_every=6, at=T0 + 100_000)
    with SqlMetadataStore(url) as store:
        store.write(runs=_runs(0, MANY, root_every=500, at=T0))
        store.write(runs=recent)
    running = start_server(home, env=server_env(home, SEMATIC_DATABASE_URL=url))
    try:
        yield running.url, url, recent
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api(listed: tuple[str, str, list[RunRecord]]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=listed[0] + "/api/v1", timeout=30) as client:
        yield client


def _get(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get("/runs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _newest_first(records: list[RunRecord]) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)]


def test_next_cursors_walk_every_run_once(
    api: httpx.Client, listed: tuple[str, str, list[RunRecord]]
) -> None:
    recent = listed[2]
    filters = {"root_only": "false", "status": "FAILED", "name": "step1"}
    for params in ({}, filters, {"submitted_by": "bob", "root_only": "true"}):
        expected = [
            run
            for run in recent
            if params.get("status", run.state) == run.state
            and params.get("name", run.name) == run.name
            and params.get("submitted_by", run.submitted_by) == run.submitted_by
            and (params.get("root_only") != "true" or run.id == run.root_id)
        ]
        seen: list[str] = []
        body = _get(api, limit=7, **params)
        seen.extend(run["id"] for run in body["runs"])
        while body["next_cursor"] is not None and len(seen) < len(expected):
            assert len(body["runs"]) == 7
            body = _get(api, limit=7, cursor=body["next_cursor"], **params)
            seen.extend(run["id"] for run in body["runs"])
        assert seen[: len(expected)] == _newest_first(expected), params


def test_the_last_page_has_no_next_cursor(api: httpx.Client) -> None:
    body = _get(api, root_only="true", submitted_by="ada", status="FAILED")
    assert body["next_cursor"] is None
    assert (body["total"], body["total_exact"]) == (len(body["runs"]), True)
    roots = _get(api, root_only="true", limit=500)
    assert roots["next_cursor"] is None and roots["total"] == len(roots["runs"]) == 31


def test_totals_stop_at_ten_thousand_unless_asked(api: httpx.Client) -> None:
    body = _get(api, limit=5)
    assert (body["total"], body["total_exact"]) == (10_000, False)
    assert (body["limit"], body["offset"], len(body["runs"])) == (5, 0, 5)
    assert body["next_cursor"] == cursor.encode(
        (body["runs"][-1]["created_at"], body["runs"][-1]["id"])
    )
    exact = _get(api, limit=5, exact_total="true")
    assert (exact["total"], exact["total_exact"]) == (MANY + 60, True)
    failed = _get(api, limit=5, status="FAILED", cursor=body["next_cursor"])
    assert (failed["total"], failed["total_exact"]) == ((MANY + 60) // 2, True)


def test_an_offset_still_works_up_to_ten_thousand(api: httpx.Client) -> None:
    first = _get(api, limit=10)
    assert _get(api, limit=4, offset=6)["runs"] == first["runs"][6:]
    after = _get(api, limit=4, cursor=first["next_cursor"])
    assert _get(api, limit=2, offset=2, cursor=first["next_cursor"])["runs"] == after["runs"][2:]
    assert len(_get(api, limit=3, offset=10_000)["runs"]) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not a cursor"},
        {"cursor": cursor.encode((T0, "x"))},
        {"cursor": "W10"},
        {"offset": "10001"},
        {"root_id": "nope"},
        {"in_pods": "maybe"},
        {"exact_total": "perhaps"},
    ],
)
def test_bad_listing_parameters_are_a_400_naming_them(
    api: httpx.Client, params: dict[str, str]
) -> None:
    response = api.get("/runs", params=params)
    assert response.status_code == 400, response.text
    assert next(iter(params)) in response.json()["error"]


def test_the_http_store_reads_what_sql_reads(
    listed: tuple[str, str, list[RunRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_metadata, "PAGE", 9)  # several pages, each after the last
    server_url, url, recent = listed
    root = recent[0].root_id
    with SqlMetadataStore(url) as sql, HttpMetadataStore(server_url) as http:
        for filters in (
            {},
            {"root_only": True},
            {"status": "FAILED", "name": "step0"},
            {"root_id": root, "in_pods": True},
            {"root_id": f"{500:032x}"},
        ):
            assert http.list_runs(limit=40, **filters) == sql.list_runs(limit=40, **filters)
            after = (recent[30].created_at, recent[30].id)
            assert http.list_runs(after=after, limit=20, offset=3, **filters) == sql.list_runs(
                after=after, limit=20, offset=3, **filters
            )
            assert http.count_runs(cap=20, **filters) == sql.count_runs(cap=20, **filters)
        assert http.count_runs() == sql.count_runs() == MANY + 60
        assert http.count_runs(cap=50_000) == MANY + 60
        assert http.count_runs(cap=17) == 17
