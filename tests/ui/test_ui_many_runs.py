"""The pipelines page over more runs than the server counts: "10,000+", and pages that follow
one another by cursor (10,050 root runs of one pipeline, written straight into a fresh SQLite
database, served by a real server, read by headless Chromium)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from sematic.core.records import RunRecord
from sematic.storage.sql import SqlMetadataStore
from tests.ui.conftest import ui_server_env
from tests.unit.server.conftest import Server, start_server

RUNS = 10_050
PAGE_SIZE = 20  # the page's
T0 = 1_700_000_000.0


def _root(i: int) -> RunRecord:
    run_id = f"{0xE0:08x}{i:024x}"
    return RunRecord(
        id=run_id,
        root_id=run_id,
        parent_id=None,
        name="hourly",
        function_path="jobs.hourly",
        state="RESOLVED",
        created_at=T0 + i // 3,  # three runs a second: equal times across pages
        updated_at=T0 + i // 3,
        submitted_by="ana",
    )


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[str]]]:
    home = tmp_path_factory.mktemp("crowded") / "home"
    home.mkdir()
    written = [_root(i) for i in range(RUNS)]
    with SqlMetadataStore(f"sqlite:///{home / 'db.sqlite3'}") as store:
        store.write(runs=written)
    newest_first = [r.id for r in sorted(written, key=lambda r: (r.created_at, r.id))][::-1]
    running = start_server(home, env=ui_server_env(home))
    try:
        yield running, newest_first
    finally:
        running.stop()


def _shown(page: Page) -> list[str]:
    rows = page.locator("table.runs tbody tr[data-run]")
    expect(rows).to_have_count(PAGE_SIZE)
    return [str(row.get_attribute("data-run")) for row in rows.all()]


def test_a_history_past_the_count_cap_says_so_and_pages_by_cursor(
    page: Page, crowded: tuple[Server, list[str]]
) -> None:
    server, newest_first = crowded
    page.goto(server.url + "/#/?pipeline=hourly")
    expect(page.locator(".page-head .count")).to_have_text("10,000+ runs")
    expect(page.locator(".pager")).to_contain_text("page 1 of 500+")
    seen = _shown(page)
    assert seen == newest_first[:PAGE_SIZE]
    for number in (2, 3):
        with page.expect_response(lambda r: "cursor=" in r.url and "/api/v1/runs" in r.url):
            page.click("[data-action=next]")
        expect(page.locator(".pager")).to_contain_text(f"page {number} of 500+")
        expect(page.locator("table.runs tbody tr[data-run]").first).to_have_attribute(
            "data-run", newest_first[(number - 1) * PAGE_SIZE]
        )
        seen += _shown(page)
    assert seen == newest_first[: 3 * PAGE_SIZE]  # no run twice, none left out
    page.click("[data-action=previous]")
    expect(page.locator(".pager")).to_contain_text("page 2 of 500+")
    assert _shown(page) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]


def test_the_grouped_view_reads_the_latest_ten_thousand_roots(
    page: Page, crowded: tuple[Server, list[str]]
) -> None:
    server, _ = crowded
    page.goto(server.url + "/")
    row = page.locator('tr[data-name="hourly"]')
    expect(row).to_contain_text("10000 runs")
    expect(page.locator(".notice")).to_have_text("Grouped from the latest 10,000 pipeline runs.")
