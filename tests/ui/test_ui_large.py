"""The run page of a 100,000-step pipeline: one folded node, its runs a page at a time.

The pipeline (``tests.ui.big_fanout``: 100,000 runs of ``inc``, 10 of them failed) is
written straight into a fresh SQLite database through ``SqlMetadataStore.write`` in
batches, then served by a real server and read by headless Chromium. Its timing is measured by
``benchmarks/ui_render.py``, not here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from sematic.storage.sql import SqlMetadataStore
from tests.ui.big_fanout import (
    FAILED_EVERY,
    RUNNING,
    STEPS,
    WIDE_LEAVES,
    WIDE_PARTS,
    finish_running,
    step_id,
    wide_records,
    write_big_fanout,
)
from tests.ui.conftest import (
    FANOUT_GROUPS,
    FANOUT_STEPS,
    UiHome,
    node,
    panel_section,
    ui_server_env,
)
from tests.unit.server.conftest import Server, start_server

pytestmark = pytest.mark.slow

PAGE = 50
TIMES = "\N{MULTIPLICATION SIGN}"  # the UI writes "inc TIMES 100,000"
DASH = "\N{EN DASH}"  # and "1 DASH 50 of 100,000"


@dataclass(frozen=True)
class BigFanout:
    server: Server
    root_id: str
    database_url: str
    wide_root: str


@pytest.fixture(scope="module")
def big_fanout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigFanout]:
    home = tmp_path_factory.mktemp("big") / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'db.sqlite3'}"
    root_id = write_big_fanout(url)
    wide = wide_records(time.time() - 3600)
    with SqlMetadataStore(url) as store:
        store.write(runs=wide)
    running = start_server(home, env=ui_server_env(home))
    try:
        yield BigFanout(running, root_id, url, wide[0].id)
    finally:
        running.stop()


def first_graph_bytes(page: Page) -> int:
    """The size of the page's first graph response (Resource Timing)."""
    sizes: list[int] = page.evaluate(
        """() => performance.getEntriesByType("resource")
            .filter((e) => e.name.includes("/graph"))
            .map((e) => e.decodedBodySize)"""
    )
    assert sizes, "the page read no graph"
    return sizes[0]


def test_a_100000_step_fanout_is_one_node_whose_runs_are_paged(
    page: Page, big_fanout: BigFanout
) -> None:
    page.goto(f"{big_fanout.server.url}/#/runs/{big_fanout.root_id}")
    expect(page.locator(".run-header h1")).to_have_text("big_fanout")
    group = page.locator("svg.dag g.node.group")
    expect(group).to_have_count(1)
    expect(group.locator("text.name")).to_have_text(f"inc {TIMES} 100,000")
    expect(group.locator("text.meta")).to_have_text("10 failed · 99,985 resolved")
    expect(group).to_have_class(re.compile(r"\bstate-FAILED\b"))
    expect(group.locator("rect.seg.state-FAILED")).to_have_count(1)
    expect(group.locator("rect.seg.state-RESOLVED")).to_have_count(1)
    expect(group.locator("rect.seg.state-SCHEDULED")).to_have_count(1)
    expect(node(page, "total")).to_have_count(1)
    expect(page.locator("svg.dag g.node")).to_have_count(2)  # the group and total
    edge = page.locator("svg.dag path.edge")  # one, for the 100,000 values into total
    expect(edge).to_have_count(1)
    expect(edge).to_have_class(re.compile(r"\bmany\b"))
    expect(edge.locator("title")).to_have_text("100,000 values")
    expect(page.locator(".graph-toolbar")).to_contain_text("100,002 runs")
    assert first_graph_bytes(page) < 200_000

    group.click()
    side = page.locator("aside.panel .group-side")
    expect(side.locator("h2")).to_have_text(f"inc {TIMES} 100,000")
    rows = side.locator("table.group-runs tbody tr[data-run]")
    expect(rows).to_have_count(PAGE)
    expect(side.locator(".group-range")).to_have_text(f"1{DASH}{PAGE} of 100,000")
    # Failed first: the ten failures, the runs not finished, then the others by creation.
    expect(rows.locator(".state-FAILED")).to_have_count(10)
    expect(rows.nth(0)).to_have_attribute("data-run", step_id(FAILED_EVERY - 1))
    expect(rows.nth(10)).to_have_attribute("data-run", step_id(STEPS - 1 - RUNNING))
    expect(rows.nth(10 + RUNNING)).to_have_attribute("data-run", step_id(0))
    expect(side.locator(".histogram")).to_have_attribute("data-count", str(STEPS - RUNNING))
    expect(side.locator(".hist-bin")).to_have_count(20)
    assert "run=group" in page.url

    side.locator("[data-action=group-next]").click()
    expect(side.locator(".group-range")).to_have_text(f"{PAGE + 1}{DASH}{2 * PAGE} of 100,000")
    expect(rows.locator(".state-FAILED")).to_have_count(0)
    expect(rows.nth(0)).to_have_attribute("data-run", step_id(PAGE - 10 - RUNNING))

    # Only the failures; the fifth of them, read in the run panel.
    side.locator("select[name=group-status]").select_option("FAILED")
    expect(rows).to_have_count(10)
    expect(side.locator(".group-range")).to_have_text(f"1{DASH}10 of 10")
    expect(side.locator("[data-action=group-next]")).to_be_disabled()
    fifth = 5 * FAILED_EVERY - 1
    rows.nth(4).click()
    expect(page.locator("aside.panel .run-side h2")).to_have_text("inc")
    exception = panel_section(page, "exception")
    expect(exception).to_contain_text(f"ValueError: inc({fifth}) refused its input")
    expect(exception.locator("pre.traceback")).to_contain_text('File "inc.py", line 3')
    expect(page.locator(".group-side")).to_be_hidden()
    expect(group).to_have_class(re.compile(r"\bselected\b"))  # its group stays marked
    assert page.url.endswith(f"run={step_id(fifth)}")

    # The address opens the same run, in its group; the link goes back to the group.
    page.reload()
    expect(panel_section(page, "exception")).to_contain_text(f"inc({fifth}) refused")
    page.click("[data-action=back-to-group]")
    expect(side.locator("h2")).to_have_text(f"inc {TIMES} 100,000")
    expect(rows).to_have_count(PAGE)


def test_the_graph_zooms_and_fits(page: Page, big_fanout: BigFanout) -> None:
    page.goto(f"{big_fanout.server.url}/#/runs/{big_fanout.root_id}")
    group = page.locator("svg.dag g.node.group")
    expect(group).to_have_count(1)
    zoom = page.locator("[data-zoom]")
    expect(zoom).to_have_text("100%")
    width = float(page.locator("svg.dag").get_attribute("width") or 0)
    page.click("[data-action=zoom-in]")
    expect(zoom).to_have_text("125%")
    assert float(page.locator("svg.dag").get_attribute("width") or 0) > width
    page.click("[data-action=zoom-out]")
    page.click("[data-action=zoom-out]")
    expect(zoom).to_have_text("80%")
    page.click("[data-action=fit]")
    expect(zoom).to_have_text("100%")  # it fits: never enlarged past 100%
    expect(page.locator("canvas.minimap")).to_be_hidden()  # two nodes: no minimap needed
    box = page.locator(".graph-scroll").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    expect(zoom).to_have_text("250%")  # Ctrl + wheel: up to the largest zoom
    assert float(page.locator("svg.dag").get_attribute("width") or 0) >= 2.4 * width


def test_a_big_graph_shows_a_minimap_that_moves_the_view(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    page.goto(f"{ui_server.url}/#/runs/{ui_home.fanout_root}")
    expect(page.locator("svg.dag g.node")).to_have_count(FANOUT_GROUPS)
    page.click("[data-action=expand-all]")
    expect(page.locator("svg.dag g.node")).to_have_count(FANOUT_GROUPS * FANOUT_STEPS)
    minimap = page.locator("canvas.minimap")
    expect(minimap).to_be_visible()
    scroller = page.locator(".graph-scroll")
    assert scroller.evaluate("(e) => e.scrollTop") == 0
    box = minimap.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 4)
    expect(scroller).not_to_have_js_property("scrollTop", 0)
    page.click("[data-action=fit]")
    expect(minimap).to_be_hidden()  # all of it in view


def test_a_run_whose_children_were_cut_fetches_them_when_expanded(
    page: Page, big_fanout: BigFanout
) -> None:
    page.goto(f"{big_fanout.server.url}/#/runs/{big_fanout.wide_root}")
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(WIDE_PARTS)  # 2,401 runs: the parts' children cut
    expect(page.locator(".graph-toolbar")).to_contain_text("2,401 runs")
    part = node(page, "part7")
    expect(part).to_contain_text(f"RESOLVED · {WIDE_LEAVES} nested")
    with page.expect_request(re.compile(r"/graph\?fold=20&.*parent=")):
        part.locator("[data-toggle]").click()
    expect(nodes).to_have_count(WIDE_PARTS - 1 + WIDE_LEAVES)
    node(page, "leaf7_18").click()
    expect(page.locator("aside.panel h2")).to_have_text("leaf7_18")
    node(page, "part7").locator("[data-toggle]").first.click()  # collapses, nothing fetched
    expect(nodes).to_have_count(WIDE_PARTS)


def test_the_folded_group_follows_its_runs_live_without_a_new_layout(
    page: Page, big_fanout: BigFanout
) -> None:
    """Last in this module: it resolves the runs left SCHEDULED."""
    page.goto(f"{big_fanout.server.url}/#/runs/{big_fanout.root_id}")
    group = page.locator("svg.dag g.node.group")
    expect(group.locator("text.meta")).to_have_text("10 failed · 99,985 resolved")
    expect(page.locator("#live")).to_have_text("live")
    group.click()
    legend = page.locator(".group-side .legend")
    expect(legend).to_have_count(3)
    svg = page.locator("svg.dag")
    expect(svg).to_have_attribute("data-rendered", re.compile(r"^\d+$"))
    rendered = svg.get_attribute("data-rendered")

    finish_running(big_fanout.database_url)
    expect(group.locator("text.meta")).to_have_text("10 failed · 99,990 resolved")
    expect(group.locator("rect.seg.state-SCHEDULED")).to_have_count(0)
    expect(legend).to_have_count(2)
    expect(page.locator(".group-side .legend[data-state=RESOLVED]")).to_contain_text("99,990")
    # Only counts changed: the nodes were updated in place, not laid out again.
    assert svg.get_attribute("data-rendered") == rendered
