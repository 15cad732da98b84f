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

    python benchmarks/ui_render.py [--repeats N]

Chromium is Debian's /usr/bin/chromium (Playwright downloads no browser).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

from _bench import print_table
from server_runs_list import ROOTS, RUNS_PER_ROOT, median_ms, record, root_id, running_server

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
                .map((e) => [e.startTime, e.responseEnd])""",
            api,
        )
        return {
            "first": marks["first"],
            "dom": marks["dom"],
            "painted": marks["painted"],
            "gap": marks["gap"],
            "longtask": max(marks["longtasks"], default=0.0),
            "api": sum(end - start for start, end in requests),
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


if __name__ == "__main__":
    main()
