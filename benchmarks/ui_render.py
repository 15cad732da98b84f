"""How fast the web UI renders 10,000 recorded runs in headless Chromium, beside the API.

Records 10 pipelines of 1,000 runs each (``server_runs_list``'s generator, straight through
``SqlMetadataStore.write``), starts ``python -m sematic.server`` on them, and loads each page
in a fresh browser context (nothing cached) REPEATS times. For each page it prints medians:

- first / all in DOM: navigation start -> the first, then every row (list) or node (graph)
  in the DOM (the graph adds its nodes in batches, nearest to the visible part first);
- painted: navigation start -> the frame after that has been produced;
- longest block: the longest the main thread was busy without a break during the load,
  measured by a probe that posts itself a message continuously (so also blocks under
  the 50 ms long-task threshold), next to the longest PerformanceObserver 'longtask';
- API in page: the page's own request(s) to the API (Resource Timing), and API httpx: the
  median of 20 GETs of the same URL from Python.

Then a pipeline of 100,002 runs (``tests/ui/big_fanout.py``: a fan-out of 100,000 ``inc``
steps, 10 failed) is recorded into another database, and its run page is loaded the same
way: the time until the folded graph is shown (one node for the 100,000 runs), and the bytes
of the page's first graph response, beside the whole ``/graph`` endpoint (what the page
read before folding) timed from Python in the same run. Last, the same pipeline with its
steps SCHEDULED is opened and all 100,000 are resolved (batches of 5,000 written to the
database) while the page follows them live: how long after the last write the page shows
the final counts, the longest the page's main thread was busy meanwhile, and how often it
read the folded graph.

    python benchmarks/ui_render.py [--repeats N]

Chromium is Debian's /usr/bin/chromium (Playwright downloads no browser).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from _bench import print_table
from server_runs_list import ROOTS, RUNS_PER_ROOT, median_ms, record, root_id, running_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sematic.storage.sql import SqlMetadataStore  # noqa: E402
from tests.ui.big_fanout import STEPS, big_fanout_batches, write_big_fanout  # noqa: E402

WHOLE_REPEATS = 3  # the whole graph of 100,000 runs takes seconds a request

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Installed before any page script: the long-task observer, the main-thread probe, and a
# MutationObserver that notes when `selector` first matches `count` elements.
PROBE = """
(() => {
  const marks = { longtasks: [], gap: 0 };
  performance.setResourceTimingBufferSize(10000);
  window.__bench = marks;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) marks.longtasks.push(entry.duration);
  }).observe({ type: "longtask", buffered: true });
  const channel = new MessageChannel();
  let last = performance.now();
  channel.port1.onmessage = () => {
    const now = performance.now();
    marks.gap = Math.max(marks.gap, now - last);
    last = now;
    if (!marks.stop) channel.port2.postMessage(0);
  };
  channel.port2.postMessage(0);
  window.__benchRestart = () => {
    marks.gap = 0;
    marks.stop = false;
    last = performance.now();
    channel.port2.postMessage(0);
  };
  const watch = () => {
    const { selector, count } = window.__target || {};
    if (!selector || marks.dom) return;
    const found = document.querySelectorAll(selector).length;
    if (found && !marks.first) marks.first = performance.now();
    if (found >= count) {
      marks.dom = performance.now();
      requestAnimationFrame(() => setTimeout(() => {
        marks.painted = performance.now();
        marks.stop = true;
      }, 0));
    }
  };
  new MutationObserver(watch).observe(document, { childList: true, subtree: true });
})();
"""


def measure(browser: Browser, url: str, selector: str, count: int, api: str) -> dict[str, Any]:
    """One cold load of ``url``; times in ms from navigation start."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        context.add_init_script(
            f"window.__target = {{selector: {selector!r}, count: {count}}};\n{PROBE}"
        )
        page = context.new_page()
        page.goto(url)
        # Polled from here: wait_for_function would evaluate a string, which the UI's
        # Content-Security-Policy forbids. The times are taken in the page, not here.
        deadline = time.monotonic() + 120
        while not page.evaluate("window.__bench && window.__bench.stop === true"):
            assert time.monotonic() < deadline, f"{url}: {selector} never matched {count}"
            page.wait_for_timeout(50)
        marks: dict[str, Any] = page.evaluate("window.__bench")
        found = page.locator(selector).count()
        assert found == count, f"{url}: {found} elements match {selector}, expected {count}"
        requests = page.evaluate(
            """(api) => performance.getEntriesByType("resource")
                .filter((e) => e.name.includes(api))
                .map((e) => [e.startTime, e.responseEnd, e.decodedBodySize])""",
            api,
        )
        return {
            "first": marks["first"],
            "dom": marks["dom"],
            "painted": marks["painted"],
            "gap": marks["gap"],
            "longtask": max(marks["longtasks"], default=0.0),
            "api": sum(end - start for start, end, _ in requests),
            "bytes": requests[0][2] if requests else 0,
        }
    finally:
        context.close()


def median(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="cold loads per page (median)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = f"sqlite:///{home / 'db.sqlite3'}"
        seconds = record(url)
        print(f"wrote {ROOTS * RUNS_PER_ROOT:,} runs in {seconds:.2f} s")
        graph_root = root_id(ROOTS - 1)
        pages = [
            (
                f"pipelines list ({ROOTS} rows)",
                "/",
                "table.runs tbody tr[data-run]",
                ROOTS,
                "/api/v1/runs?root_only=true",
            ),
            (
                f"run graph ({RUNS_PER_ROOT:,} runs)",
                f"/#/runs/{graph_root}",
                "svg.dag [data-run]",
                RUNS_PER_ROOT,
                f"/api/v1/runs/{graph_root}/graph",
            ),
        ]
        with (
            running_server(home, url) as base,
            httpx.Client(base_url=base, timeout=30) as client,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            rows = []
            try:
                for label, path, selector, count, api in pages:
                    measure(browser, base + path, selector, count, api)  # warm the server
                    samples = [
                        measure(browser, base + path, selector, count, api)
                        for _ in range(args.repeats)
                    ]
                    api_path = api + ("&limit=500&offset=0" if "?" in api else "")
                    httpx_ms, size = median_ms(client, api_path)
                    rows.append(
                        [
                            label,
                            f"{median(samples, 'first'):.0f}",
                            f"{median(samples, 'dom'):.0f}",
                            f"{median(samples, 'painted'):.0f}",
                            f"{median(samples, 'gap'):.0f}",
                            f"{median(samples, 'longtask'):.0f}",
                            f"{median(samples, 'api'):.0f}",
                            f"{httpx_ms:.1f}",
                            f"{size:,}",
                        ]
                    )
            finally:
                browser.close()
        print(f"median of {args.repeats} cold loads each; times in ms from navigation start")
        print_table(
            [
                "page",
                "first in DOM",
                "all in DOM",
                "painted",
                "longest block",
                "longest longtask",
                "API in page",
                "API httpx",
                "API bytes",
            ],
            rows,
        )
    print()
    fanout(args.repeats)
    print()
    live()


def fanout(repeats: int) -> None:
    """The run page of a 100,000-step fan-out, folded, beside the whole graph's endpoint."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = f"sqlite:///{home / 'db.sqlite3'}"
        start = time.perf_counter()
        root = write_big_fanout(url)
        print(f"wrote {STEPS + 2:,} runs (a fan-out) in {time.perf_counter() - start:.2f} s")
        with (
            running_server(home, url) as base,
            httpx.Client(base_url=base, timeout=120) as client,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = f"/#/runs/{root}"
                selector = "svg.dag g.node.group"
                measure(browser, base + page, selector, 1, "/graph")  # warm the server
                samples = [
                    measure(browser, base + page, selector, 1, "/graph") for _ in range(repeats)
                ]
            finally:
                browser.close()
            folded_ms, folded_bytes = median_ms(client, f"/api/v1/runs/{root}/graph?fold=20")
            whole_ms, whole_bytes = median_ms(
                client, f"/api/v1/runs/{root}/graph", repeats=WHOLE_REPEATS
            )
    shown = median(samples, "dom")
    first_bytes = int(median(samples, "bytes"))
    print(
        f"run page of {STEPS + 2:,} runs: median of {repeats} cold loads (page), "
        f"20 GETs (folded graph), {WHOLE_REPEATS} GETs (whole graph); times in ms"
    )
    print_table(
        ["what", "shown / answered", "painted", "longest block", "bytes", "vs folded"],
        [
            [
                "run page, folded graph shown",
                f"{shown:.0f}",
                f"{median(samples, 'painted'):.0f}",
                f"{median(samples, 'gap'):.0f}",
                f"{first_bytes:,}",
                "1.0x",
            ],
            ["GET /graph?fold=20 (httpx)", f"{folded_ms:.1f}", "", "", f"{folded_bytes:,}", ""],
            [
                "GET /graph, whole (httpx)",
                f"{whole_ms:.0f}",
                "",
                "",
                f"{whole_bytes:,}",
                f"{whole_ms / shown:.1f}x time, {whole_bytes / max(1, first_bytes):,.0f}x bytes",
            ],
        ],
    )
    print(
        f"goals: folded graph shown <= 1,000 ms: {shown:.0f} ms; "
        f"first graph response <= 200 KB: {first_bytes / 1000:.1f} KB"
    )


def live() -> None:
    """100,000 runs change state while their run page is open."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = f"sqlite:///{home / 'db.sqlite3'}"
        root = write_big_fanout(url, running=STEPS - 1)
        with running_server(home, url) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_init_script(
                    f"window.__target = {{selector: 'svg.dag g.node.group', count: 1}};\n{PROBE}"
                )
                page = context.new_page()
                page.goto(f"{base}/#/runs/{root}")
                deadline = time.monotonic() + 120
                while not page.evaluate("window.__bench && window.__bench.stop === true"):
                    assert time.monotonic() < deadline, "the folded graph never showed"
                    page.wait_for_timeout(50)
                page.locator("#live").filter(has_text="live").wait_for()
                page.locator("svg.dag g.node.group").click()  # the group's panel open too
                page.locator(".group-side table.group-runs tr[data-run]").first.wait_for()
                page.evaluate("window.__benchRestart()")
                reads_before = graph_reads(page)
                start = time.perf_counter()
                with SqlMetadataStore(url) as store:
                    batches = big_fanout_batches(time.time(), STEPS, running=0)
                    next(batches)  # the root and total: unchanged
                    for runs, _, _ in batches:
                        # Each run its own time, as resolvers write them (one time shared
                        # by more than the stream's batch would be sent only in part).
                        now = time.time()
                        store.write(
                            runs=[
                                dataclasses.replace(r, updated_at=now + k / 1e6, ended_at=now)
                                for k, r in enumerate(runs)
                            ]
                        )
                written = time.perf_counter()
                final = "10 failed · 99,990 resolved"
                meta = page.locator("svg.dag g.node.group text.meta")
                while meta.text_content() != final:
                    assert time.monotonic() < deadline + 300, "the page never caught up"
                    page.wait_for_timeout(20)
                caught_up = time.perf_counter()
                gap = page.evaluate("window.__bench.gap")
                reads = graph_reads(page)[len(reads_before) :]
            finally:
                browser.close()
    print(
        f"live: {STEPS:,} runs SCHEDULED -> RESOLVED/FAILED written in "
        f"{written - start:.1f} s while the page was open"
    )
    print_table(
        ["figure", "value"],
        [
            ["final counts shown after the last write (ms)", f"{(caught_up - written) * 1000:.0f}"],
            ["longest main-thread block meanwhile (ms)", f"{gap:.0f}"],
            ["folded graph reads meanwhile", f"{len(reads)}"],
            ["reads per second of writes", f"{len(reads) / max(0.001, caught_up - start):.2f}"],
            ["bytes of those reads", f"{sum(size for _, size in reads):,}"],
            [
                "median time of a read, in the page (ms)",
                f"{statistics.median(ms for ms, _ in reads) if reads else 0:.0f}",
            ],
        ],
    )


def graph_reads(page: Any) -> list[tuple[float, int]]:
    """The times (ms) and sizes of the page's graph responses so far."""
    reads: list[list[float]] = page.evaluate(
        """() => performance.getEntriesByType("resource")
            .filter((e) => e.name.includes("/graph"))
            .map((e) => [e.responseEnd - e.startTime, e.decodedBodySize])"""
    )
    return [(ms, int(size)) for ms, size in reads]


if __name__ == "__main__":
    main()
