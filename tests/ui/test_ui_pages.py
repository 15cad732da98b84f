"""The web UI in headless Chromium over recorded pipelines: the list, the DAG, the panel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import (
    FANOUT_GROUPS,
    FANOUT_STEPS,
    HISTORY_RUNS,
    UiHome,
    node,
    panel_section,
)
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow


def test_the_pipelines_list_shows_the_latest_run_of_each_pipeline(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    page.goto(ui_server.url + "/")
    rows = page.locator("table.runs tbody tr[data-run]")
    expect(rows).to_have_count(7)
    names = {row.get_attribute("data-name") for row in rows.all()}
    assert names == {
        "mixed",
        "three_steps",
        "fails_inside",
        "report",
        "fanout",
        "previews",
        "nightly_job",
    }
    nightly = page.locator('tr[data-name="nightly_job"]')
    expect(nightly.locator(".state")).to_have_text("FAILED")  # its latest run
    expect(nightly.locator(".tag")).to_have_text(f"day{HISTORY_RUNS - 1}")
    expect(nightly.locator("td").last).to_have_text(f"{HISTORY_RUNS} runs")

    mixed = page.locator('tr[data-name="mixed"]')
    expect(mixed.locator(".state")).to_have_text("RESOLVED")
    expect(mixed.locator(".tag")).to_have_text("nightly")
    expect(mixed.locator("td").nth(3)).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    expect(page.locator('tr[data-name="fails_inside"] .state')).to_have_text("NESTED_FAILED")

    page.select_option("select[name=status]", "NESTED_FAILED")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", "fails_inside")
    assert "status=NESTED_FAILED" in page.url

    page.select_option("select[name=status]", "")
    page.fill("input[name=q]", "thr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", "three_steps")

    rows.first.locator("a.run-link").click()
    expect(page.locator(".run-header h1")).to_have_text("three_steps")
    assert page.url.endswith(f"#/runs/{ui_home.recorded.steps_root}")


def test_one_pipelines_history_is_paginated_by_the_server(page: Page, ui_server: Server) -> None:
    page.goto(ui_server.url + "/")
    page.locator('tr[data-name="nightly_job"] td').last.locator("a").click()
    expect(page.locator(".page-head h1")).to_contain_text("Runs of nightly_job")
    rows = page.locator("table.runs tbody tr[data-run]")
    expect(rows).to_have_count(20)
    expect(page.locator(".page-head .count")).to_have_text(f"{HISTORY_RUNS} runs")
    expect(page.locator(".pager")).to_contain_text("page 1 of 2")
    expect(rows.first.locator(".tag")).to_have_text(f"day{HISTORY_RUNS - 1}")  # newest first
    expect(page.locator("[data-action=previous]")).to_be_disabled()

    page.click("[data-action=next]")
    expect(rows).to_have_count(HISTORY_RUNS - 20)
    expect(rows.last.locator(".tag")).to_have_text("day0")
    expect(page.locator("[data-action=next]")).to_be_disabled()
    assert "page=2" in page.url

    page.select_option("select[name=status]", "FAILED")  # filtered by the server
    expect(rows).to_have_count(1)
    expect(page.locator(".page-head .count")).to_have_text("1 run")
    page.reload()  # the filters live in the address
    expect(rows).to_have_count(1)
    expect(page.locator("select[name=status]")).to_have_value("FAILED")


def test_runs_show_who_submitted_them_and_filter_by_user(page: Page, ui_server: Server) -> None:
    page.goto(ui_server.url + "/")
    rows = page.locator("table.runs tbody tr[data-run]")
    nightly = page.locator('tr[data-name="nightly_job"]')
    expect(nightly.locator("td.submitted-by")).to_have_text("ben")  # its latest run's
    page.fill("input[name=user]", "ana")  # pipelines with runs of ana, her latest run each
    expect(rows).to_have_count(1)
    expect(nightly.locator("td.submitted-by")).to_have_text("ana")
    expect(nightly.locator(".tag")).to_have_text(f"day{HISTORY_RUNS - 5}")
    expect(nightly.locator("td").last).to_have_text(f"{HISTORY_RUNS // 5} runs")
    assert "user=ana" in page.url

    nightly.locator("td").last.locator("a").click()  # the history, filtered by the server
    expect(page.locator(".page-head h1")).to_contain_text("Runs of nightly_job")
    expect(rows).to_have_count(HISTORY_RUNS // 5)
    expect(page.locator(".page-head .count")).to_have_text(f"{HISTORY_RUNS // 5} runs")
    expect(page.locator("input[name=user]")).to_have_value("ana")
    page.fill("input[name=user]", "ben")
    expect(page.locator(".page-head .count")).to_have_text(f"{HISTORY_RUNS - 5} runs")
    page.fill("input[name=user]", "nobody")
    expect(rows).to_have_count(0)

    page.fill("input[name=user]", "")
    expect(rows).to_have_count(20)
    rows.first.locator("a.run-link").click()
    expect(page.locator(".run-header [data-submitted-by]")).to_have_text("submitted by ben")


def test_the_run_page_draws_the_dag_and_renders_values_and_logs(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    root = ui_home.recorded.mixed_root
    page.goto(f"{ui_server.url}/#/runs/{root}")
    expect(page.locator(".run-header h1")).to_have_text("mixed")
    expect(page.locator(".run-header .state")).to_have_text("RESOLVED")
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(7)
    names = sorted(n.text_content() or "" for n in page.locator("svg.dag g.node > text.name").all())
    expected = ["square", "remote_square", "worker_pid"] * 2 + ["summarize"]
    assert names == sorted(expected)
    expect(page.locator("svg.dag g.cluster")).to_have_count(1)  # the root, expanded
    expect(page.locator("svg.dag g.node.state-RESOLVED")).to_have_count(7)

    # The root is selected first: its inputs and its dataclass output.
    expect(panel_section(page, "inputs")).to_contain_text("n")
    output = panel_section(page, "output")
    expect(output.locator(".type")).to_have_text("Report")
    expect(output.locator("table.v-mapping th", has_text="total")).to_have_count(1)
    expect(output.locator("table.v-mapping tr", has_text="total").locator(".v-num")).to_have_text(
        "2"
    )

    node(page, "summarize").first.click()
    expect(page.locator("aside.panel h2")).to_have_text("summarize")
    expect(page.locator("svg.dag g.node.selected")).to_have_count(1)
    expect(panel_section(page, "inputs")).to_contain_text("[0, 1, 0, 1]")
    assert re.search(r"run=[0-9a-f]{32}$", page.url)

    node(page, "remote_square").first.click()
    expect(page.locator("aside.panel h2")).to_have_text("remote_square")
    expect(page.locator("pre.logs")).to_contain_text(re.compile(r"squaring \d in pid \d+"))
    expect(panel_section(page, "source")).to_contain_text("def remote_square(x: int, witness: str)")
    expect(panel_section(page, "docstring")).to_contain_text("Squares x in a worker process.")


def test_dataframes_arrays_and_nesting_render_by_type(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    page.goto(f"{ui_server.url}/#/runs/{ui_home.report_root}")
    expect(page.locator(".run-header h1")).to_have_text("report")
    # report (box) > prepare (box) > make_frame, scale; announce; make_weights; evaluate
    expect(page.locator("svg.dag g.cluster")).to_have_count(2)
    expect(page.locator("svg.dag g.node")).to_have_count(5)
    expect(page.locator("svg.dag path.edge")).to_have_count(4)

    node(page, "scale").click()
    table = panel_section(page, "output").locator("table.v-dataframe")
    expect(table.locator("thead th")).to_have_text(["", re.compile("^city"), re.compile("^score")])
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").nth(2).locator("td")).to_have_text(["city2", "6.0"])
    expect(panel_section(page, "output")).to_contain_text("DataFrame · 4 rows \u00d7 2 columns")

    node(page, "evaluate").click()
    inputs = panel_section(page, "inputs")
    expect(inputs.locator(".v-array")).to_contain_text("shape (4) · int64")
    expect(inputs.locator(".v-array")).to_contain_text("[0, 7, 14, 21]")
    output = panel_section(page, "output")
    expect(output.locator("tr", has_text="best_city")).to_contain_text("city3")
    expect(output.locator("tr", has_text="accuracy")).to_contain_text("0.875")

    node(page, "announce").click()
    expect(page.locator("pre.logs")).to_have_text("announcing 4 rows from a worker\n")
    expect(panel_section(page, "output")).to_contain_text("4 rows")

    # Collapsing the nested pipeline: one node in its place, the edge re-targeted to it.
    prepare = node(page, "prepare")
    prepare.locator("[data-toggle]").click()
    expect(page.locator("svg.dag g.cluster")).to_have_count(1)
    expect(page.locator("svg.dag g.node")).to_have_count(4)
    expect(node(page, "scale")).to_have_count(0)
    prepare_id = node(page, "prepare").get_attribute("data-run")
    expect(page.locator(f'svg.dag path.edge[data-from="{prepare_id}"]')).to_have_count(1)
    node(page, "prepare").locator("[data-toggle]").click()
    expect(node(page, "scale")).to_have_count(1)


def test_a_big_graph_starts_collapsed_and_expands_on_demand(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    page.goto(f"{ui_server.url}/#/runs/{ui_home.fanout_root}")
    expect(page.locator(".graph-toolbar")).to_contain_text(f"{1 + FANOUT_GROUPS * 41} runs")
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(FANOUT_GROUPS)
    expect(page.locator("svg.dag path.edge")).to_have_count(FANOUT_GROUPS - 1)
    expect(node(page, "group3")).to_contain_text(f"RESOLVED · {FANOUT_STEPS} nested")

    node(page, "group3").locator("[data-toggle]").click()
    expect(nodes).to_have_count(FANOUT_GROUPS - 1 + FANOUT_STEPS)
    expect(node(page, "step3_39")).to_have_count(1)
    # The chain inside, plus the group chain whose edges now reach the box.
    expect(page.locator("svg.dag path.edge")).to_have_count(FANOUT_GROUPS - 1 + FANOUT_STEPS - 1)

    page.click("[data-action=expand-all]")
    expect(nodes).to_have_count(FANOUT_GROUPS * FANOUT_STEPS)
    page.click("[data-action=collapse-all]")
    expect(nodes).to_have_count(FANOUT_GROUPS)


def test_a_nested_runs_address_opens_its_pipeline_with_it_selected(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    step = f"{0xF2:08x}{2:08x}{17:08x}".rjust(32, "0")
    page.goto(f"{ui_server.url}/#/runs/{step}")
    expect(page.locator(".run-header h1")).to_have_text("fanout")
    expect(page.locator("aside.panel h2")).to_have_text("step2_17")
    expect(page.locator("svg.dag g.node.selected")).to_have_count(1)
    expect(node(page, "step2_17")).to_have_class(re.compile(r"\bselected\b"))
    assert page.url.endswith(f"#/runs/{ui_home.fanout_root}?run={step}")


def test_images_and_plotly_figures_render(page: Page, ui_server: Server, ui_home: UiHome) -> None:
    page.goto(f"{ui_server.url}/#/runs/{ui_home.previews_root}")
    expect(page.locator("svg.dag g.node")).to_have_count(3)

    node(page, "draw_image").click()
    image = panel_section(page, "output").locator("img.v-image")
    expect(image).to_be_visible()
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [12, 8]
    expect(panel_section(page, "output")).to_contain_text("matplotlib.Figure \u00b7 12 \u00d7 8 px")

    node(page, "draw_plotly").click()
    figure = panel_section(page, "output").locator(".v-plotly")
    # Drawn by plotly.js, which the server serves from its plotly package: two bars.
    expect(figure.locator(".v-plotly-chart svg.main-svg").first).to_be_visible()
    expect(figure.locator("g.point")).to_have_count(2)

    node(page, "draw_huge").click()
    expect(panel_section(page, "output").locator(".v-class")).to_have_text(
        "<PIL.Image> \u00b7 9000 \u00d7 9000 px \u00b7 preview too large"
    )


def test_a_failed_pipeline_shows_its_exception_and_traceback(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    page.goto(f"{ui_server.url}/#/runs/{ui_home.recorded.failed_root}")
    expect(page.locator(".run-header .state")).to_have_text(re.compile("FAILED"))
    expect(page.locator("[data-action=cancel]")).to_be_hidden()
    failed = page.locator("svg.dag g.node.state-FAILED")
    expect(failed).to_have_count(1)
    failed.click()
    exception = panel_section(page, "exception")
    message = exception.locator(".exception-message")
    expect(message).to_have_text("builtins.ValueError: remote boom 1")
    expect(exception.locator("pre.traceback")).to_contain_text("Traceback")


def test_an_unknown_page_says_so(page: Page, ui_server: Server) -> None:
    page.goto(f"{ui_server.url}/#/nowhere")
    expect(page.locator(".error-page")).to_contain_text("No page at /nowhere.")
    page.locator(".error-page a").click()
    expect(page.locator(".page-head h1")).to_have_text("Pipelines")


LAYOUT_CHECK = """
async ([seed, size]) => {
  const { RunGraph, layout } = await import("/ui/dag.js");
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  const id = (i) => i.toString(16).padStart(32, "0");
  const runs = [{ id: id(0), root_id: id(0), parent_id: null, name: "root", state: "RESOLVED",
                  created_at: 0, updated_at: 0 }];
  const edges = [];
  const children = new Map([[0, []]]);
  for (let i = 1; i < size; i += 1) {
    // Parents come earlier; a third of the runs nest under a non-root run. Values flow
    // between siblings (a function passes its calls' futures to its other calls).
    const parent = random() < 0.33 ? Math.floor(random() * i) : 0;
    runs.push({ id: id(i), root_id: id(0), parent_id: id(parent), name: `r${i}`,
                state: "RESOLVED", created_at: i, updated_at: i });
    const siblings = children.get(parent);
    for (let k = 0; k < 2 && siblings.length; k += 1) {
      const from = siblings[Math.floor(random() * siblings.length)];
      edges.push({ source_run_id: id(from), destination_run_id: id(i),
                   parameter: "x", artifact_id: "a" });
    }
    siblings.push(i);
    children.set(i, []);
  }
  const graph = new RunGraph({ root_id: id(0), runs, artifacts: [], edges });
  const problems = [];
  for (const expandAll of [true, false]) {
    const lay = layout(graph, (run) => expandAll || run === id(0));
    const boxes = [...lay.boxes.entries()];
    for (const [from, to] of lay.edges) {
      const a = lay.boxes.get(from);
      const b = lay.boxes.get(to);
      if (!(a.y + a.h <= b.y)) problems.push(`edge ${from}->${to} does not go down`);
    }
    // Boxes are disjoint unless one contains the other (nesting).
    const inside = (a, b) =>
      a.x >= b.x && a.y >= b.y && a.x + a.w <= b.x + b.w && a.y + a.h <= b.y + b.h;
    for (let i = 0; i < boxes.length; i += 1) {
      for (let j = i + 1; j < boxes.length; j += 1) {
        const [p, a] = boxes[i];
        const [q, b] = boxes[j];
        const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
        if (!apart && !inside(a, b) && !inside(b, a)) problems.push(`${p} overlaps ${q}`);
      }
    }
    const shown = boxes.length;
    const expected = expandAll ? size : 1 + graph.children.get(id(0)).length;
    if (shown !== expected) problems.push(`${shown} boxes, expected ${expected}`);
    if (lay.visible.size !== size) problems.push(`${lay.visible.size} runs placed of ${size}`);
  }
  return problems.slice(0, 10);
}
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_layout_keeps_edges_downward_and_nodes_apart(
    page: Page, ui_server: Server, seed: int
) -> None:
    page.goto(ui_server.url + "/")
    expect(page.locator(".page-head h1")).to_have_text("Pipelines")
    assert page.evaluate(LAYOUT_CHECK, [seed, 300]) == []
