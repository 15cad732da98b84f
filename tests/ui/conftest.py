"""Web UI fixtures: recorded pipelines, a real server over them, and headless Chromium.

The pipelines recorded by the server tests (``recorded``: ``mixed``, ``three_steps``, a
failure) are reused, with two more added to the same SEMATIC_HOME: ``report`` (a DataFrame,
a numpy array, a dataclass, nesting, worker logs) and ``fanout``, a graph of 247 runs written
straight into the store (big enough to start collapsed), and ``previews``, whose runs output
an image, a plotly figure and a preview left out for its size (as the artifact summaries
describe them), and 25 daily runs of ``nightly_job``. Chromium is Debian's
``/usr/bin/chromium`` driven by Playwright, which downloads no browser; without it the UI
tests fail (never skip): run scripts/setup as root. Each test leaves a screenshot under
``$SEMATIC_TEST_ARTIFACTS/screenshots`` (default ``test-output/``).
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord
from sematic.resolvers.local import LocalResolver
from sematic.storage.sql import SqlMetadataStore
from tests.harness.png import png
from tests.ui import ui_pipelines
from tests.unit.server.conftest import ROOT, Recorded, Server, recorded, server_env, start_server

__all__ = ["browser", "page", "recorded", "ui_home", "ui_server"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SEMATIC_TEST_ARTIFACTS", ROOT / "test-output")) / "screenshots"
TIMEOUT_MS = 30_000
FANOUT_GROUPS = 6
FANOUT_STEPS = 40

expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class UiHome:
    """``recorded`` plus the ``report``, ``fanout``, ``previews`` and ``nightly_job`` pipelines."""

    recorded: Recorded
    report_root: str
    fanout_root: str
    previews_root: str

    @property
    def home(self) -> Path:
        return self.recorded.home


def _hex(*parts: int, width: int) -> str:
    return "".join(f"{part:08x}" for part in parts).rjust(width, "0")


def fanout_records(
    now: float,
) -> tuple[list[RunRecord], list[ArtifactRecord], list[EdgeRecord]]:
    """A root with FANOUT_GROUPS nested runs in a chain, each a chain of FANOUT_STEPS runs."""
    root_id = _hex(0xF0, 0, width=32)
    runs = [
        RunRecord(
            id=root_id,
            root_id=root_id,
            parent_id=None,
            name="fanout",
            function_path="tests.ui.fanout",
            state="RESOLVED",
            created_at=now,
            updated_at=now,
            started_at=now,
            ended_at=now + 5,
        )
    ]
    artifacts: list[ArtifactRecord] = []
    edges: list[EdgeRecord] = []

    def artifact(value: int) -> str:
        artifact_id = _hex(0xF0, value, width=64)
        artifacts.append(
            ArtifactRecord(
                id=artifact_id,
                type_description={"type_key": "builtins.int", "type": "int", "kind": "json"},
                summary=value,
                size=len(str(value)),
                created_at=now,
            )
        )
        return artifact_id

    previous_group: str | None = None
    for g in range(FANOUT_GROUPS):
        group_id = _hex(0xF1, g, width=32)
        output = artifact(1000 + g)
        runs.append(
            RunRecord(
                id=group_id,
                root_id=root_id,
                parent_id=root_id,
                name=f"group{g}",
                function_path="tests.ui.group",
                state="RESOLVED",
                created_at=now + g,
                updated_at=now + g,
                output=output,
            )
        )
        if previous_group is not None:
            edges.append(EdgeRecord(previous_group, group_id, "x", artifact(2000 + g)))
        previous_group = group_id
        previous_step: str | None = None
        for s in range(FANOUT_STEPS):
            step_id = _hex(0xF2, g, s, width=32)
            runs.append(
                RunRecord(
                    id=step_id,
                    root_id=root_id,
                    parent_id=group_id,
                    name=f"step{g}_{s}",
                    function_path="tests.ui.step",
                    state="RESOLVED",
                    created_at=now + g + s / 100,
                    updated_at=now + g + s / 100,
                )
            )
            if previous_step is not None:
                edges.append(EdgeRecord(previous_step, step_id, "x", artifact(g * 100 + s)))
            previous_step = step_id
    return runs, artifacts, edges


PREVIEWS = {
    "draw_image": {
        "class": "matplotlib.Figure",
        "size": [12, 8],
        "image": "data:image/png;base64," + base64.b64encode(png(12, 8)).decode(),
    },
    "draw_plotly": {
        "class": "plotly.Figure",
        "plotly": {"data": [{"type": "bar", "x": ["a", "b"], "y": [3, 5]}], "layout": {}},
    },
    "draw_huge": {"class": "PIL.Image", "size": [9000, 9000], "preview": "too large"},
}


def previews_records(now: float) -> tuple[list[RunRecord], list[ArtifactRecord]]:
    """A root run whose children output the previews in PREVIEWS."""
    root_id = _hex(0xE0, 0, width=32)
    runs = [
        RunRecord(
            id=root_id,
            root_id=root_id,
            parent_id=None,
            name="previews",
            function_path="tests.ui.previews",
            state="RESOLVED",
            created_at=now,
            updated_at=now,
        )
    ]
    artifacts = []
    for i, (name, summary) in enumerate(PREVIEWS.items()):
        artifact_id = _hex(0xE1, i, width=64)
        artifacts.append(
            ArtifactRecord(
                id=artifact_id,
                type_description={"type_key": f"x.{summary['class']}", "type": summary["class"]},
                summary=summary,
                size=1000,
                created_at=now,
            )
        )
        runs.append(
            RunRecord(
                id=_hex(0xE2, i, width=32),
                root_id=root_id,
                parent_id=root_id,
                name=name,
                function_path=f"tests.ui.{name}",
                state="RESOLVED",
                created_at=now + i,
                updated_at=now + i,
                output=artifact_id,
            )
        )
    return runs, artifacts


HISTORY_RUNS = 25


def history_records(now: float) -> list[RunRecord]:
    """HISTORY_RUNS root runs of one pipeline, ``nightly_job``, the newest failed; every
    fifth submitted by ``ana`` (the first among them), the others by ``ben``."""
    return [
        RunRecord(
            id=_hex(0xD0, i, width=32),
            root_id=_hex(0xD0, i, width=32),
            parent_id=None,
            name="nightly_job",
            function_path="tests.ui.nightly_job",
            state="FAILED" if i == HISTORY_RUNS - 1 else "RESOLVED",
            created_at=now - 86_400 * (HISTORY_RUNS - i),
            updated_at=now - 86_400 * (HISTORY_RUNS - i) + 60,
            started_at=now - 86_400 * (HISTORY_RUNS - i),
            ended_at=now - 86_400 * (HISTORY_RUNS - i) + 60,
            tags=(f"day{i}",),
            submitted_by="ana" if i % 5 == 0 else "ben",
        )
        for i in range(HISTORY_RUNS)
    ]


@pytest.fixture(scope="session")
def ui_home(recorded: Recorded) -> UiHome:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMATIC_HOME", str(recorded.home))
        patch.delenv("SEMATIC_DATABASE_URL", raising=False)
        patch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
        report = ui_pipelines.report(4)
        report.resolve(LocalResolver(progress=False))
    runs, artifacts, edges = fanout_records(time.time())
    previews, images = previews_records(time.time())
    with SqlMetadataStore(recorded.settings.database_url) as store:
        store.write(runs=runs, artifacts=artifacts, edges=edges)
        store.write(runs=previews, artifacts=images)
        store.write(runs=history_records(time.time()))
    return UiHome(
        recorded=recorded,
        report_root=report.id,
        fanout_root=runs[0].id,
        previews_root=previews[0].id,
    )


def ui_server_env(home: Path, **extra: str) -> dict[str, str]:
    """The server tests' environment, with the repository importable (for reruns)."""
    return server_env(home, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}", **extra)


@pytest.fixture(scope="session")
def ui_server(ui_home: UiHome) -> Iterator[Server]:
    running = start_server(ui_home.home, env=ui_server_env(ui_home.home))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the UI tests need Chromium at {CHROMIUM}: run scripts/setup as root (it installs "
            "it: apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context's page; fails the test on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
        screenshot(opened, request.node.name)
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=path, full_page=True)
    return path


def node(page: Page, name: str) -> Locator:
    """The collapsed node (or expanded box) of the graph whose run is called ``name``."""
    return page.locator(f'svg.dag g[data-run]:has(> text.name:text-is("{name}"))')


def panel_section(page: Page, name: str) -> Locator:
    return page.locator(f'aside.panel details[data-section="{name}"]')
