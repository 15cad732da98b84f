"""The web UI while pipelines run: live states and logs, Cancel, Rerun, the API key."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sematic.resolvers.local import LocalResolver
from tests.pipelines.local import three_steps
from tests.ui.conftest import UiHome, node, screenshot, ui_server_env
from tests.unit.server.conftest import ROOT, Server, start_server

pytestmark = pytest.mark.slow

WAITING = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.ui.ui_pipelines import waiting_pipeline
    future = waiting_pipeline(float(sys.argv[1]))
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)
RUN_URL = re.compile(r"#/runs/([0-9a-f]{32})$")


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[tuple[Path, Server]]:
    home = tmp_path / "home"
    running = start_server(home, env=ui_server_env(home))
    try:
        yield home, running
    finally:
        running.stop()


def test_a_running_pipeline_shows_up_live_and_can_be_canceled(
    empty_server: tuple[Path, Server], page: Page, tmp_path: Path
) -> None:
    home, server = empty_server
    page.goto(server.url + "/")
    expect(page.locator("table.runs tr.empty")).to_contain_text("No pipelines recorded yet")
    expect(page.locator("#live")).to_have_text("live")

    errors = tmp_path / "pipeline.err"
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", WAITING, "120"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=ROOT,
            env=ui_server_env(home),
        ) as process,
    ):
        try:
            assert process.stdout is not None
            root_id = process.stdout.readline().strip()
            assert re.fullmatch(r"[0-9a-f]{32}", root_id), errors.read_text()

            # The list learns about the new pipeline from the events stream.
            row = page.locator(f'tr[data-run="{root_id}"]')
            expect(row.locator(".state")).to_have_text(re.compile(r"^(CREATED|SCHEDULED|RAN)$"))
            row.locator("a.run-link").click()
            expect(page.locator(".run-header h1")).to_have_text("waiting_pipeline")
            waiting = node(page, "wait_here")
            waiting.click()  # first: a failure's screenshot then shows its exception
            expect(waiting).to_have_class(re.compile(r"\bstate-SCHEDULED\b"))
            expect(page.locator("pre.logs")).to_contain_text("waiting step started")
            expect(page.locator(".logs-status")).to_contain_text("Following the log")
            screenshot(page, "live_pipeline_running")

            page.click("[data-action=cancel]")
            expect(page.locator(".action-message")).to_have_text("Cancel requested.")
            expect(page.locator(".run-header .state")).to_have_text("CANCELED")
            expect(waiting).to_have_class(re.compile(r"\bstate-CANCELED\b"))
            expect(page.locator("aside.panel .panel-title .state")).to_have_text("CANCELED")
            expect(page.locator("[data-action=cancel]")).to_be_hidden()
            expect(page.locator(".logs-status")).to_be_hidden()
            assert process.wait(60) != 0
        finally:
            if process.poll() is None:
                process.kill()
    assert "canceled" in errors.read_text().lower()

    page.go_back()
    expect(page.locator(f'tr[data-run="{root_id}"] .state')).to_have_text("CANCELED")


@pytest.fixture
def steps_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Server]]:
    home = tmp_path / "home"
    monkeypatch.setenv("SEMATIC_HOME", str(home))
    monkeypatch.delenv("SEMATIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
    future = three_steps(str(tmp_path / "witness"))
    future.resolve(LocalResolver(progress=False))
    running = start_server(home, env=ui_server_env(home))
    try:
        yield future.id, running
    finally:
        running.stop()


def test_rerun_buttons_start_new_pipelines_and_open_them(
    steps_server: tuple[str, Server], page: Page
) -> None:
    root_id, server = steps_server
    page.goto(f"{server.url}/#/runs/{root_id}")
    expect(page.locator("svg.dag g.node")).to_have_count(3)
    expect(page.locator("[data-action=cancel]")).to_be_hidden()

    page.click("[data-action=rerun]")
    expect(page).not_to_have_url(re.compile(root_id))
    expect(page).to_have_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    rerun_id = match.group(1)
    expect(page.locator(".run-header h1")).to_have_text("three_steps")
    expect(page.locator(".run-header .state")).to_have_text("RESOLVED")
    expect(page.locator("svg.dag g.node.state-RESOLVED")).to_have_count(3)
    assert rerun_id != root_id

    node(page, "step_b").click()
    expect(page.locator("aside.panel h2")).to_have_text("step_b")
    page.click("aside.panel [data-action=rerun-from]")
    expect(page).to_have_url(RUN_URL)
    expect(page).not_to_have_url(re.compile(rerun_id))
    expect(page.locator(".run-header .state")).to_have_text("RESOLVED")
    node(page, "step_c").click()
    expect(page.locator("aside.panel [data-section=output] .v-num")).to_have_text("111")

    page.goto(server.url + "/#/?pipeline=three_steps")
    expect(page.locator("table.runs tbody tr[data-run]")).to_have_count(3)


@pytest.fixture
def keyed_server(ui_home: UiHome) -> Iterator[Server]:
    env = ui_server_env(ui_home.home, SEMATIC_UI_TEST_KEY="s3cret-key")
    running = start_server(ui_home.home, "--api-key-env", "SEMATIC_UI_TEST_KEY", env=env)
    try:
        yield running
    finally:
        running.stop()


def test_a_keyed_server_asks_for_the_api_key_once(
    keyed_server: Server, page: Page, ui_home: UiHome
) -> None:
    page.goto(f"{keyed_server.url}/#/runs/{ui_home.recorded.mixed_root}")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()  # every read needs the key: the page asks for it
    page.fill("#key-dialog-input", "wrong-key")
    page.press("#key-dialog-input", "Enter")
    expect(dialog.locator(".key-dialog-why")).to_contain_text("refused")
    page.fill("#key-dialog-input", "s3cret-key")
    page.press("#key-dialog-input", "Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator(".run-header h1")).to_have_text("mixed")
    expect(page.locator("#live")).to_have_text("live")  # the events stream carries it too
    node(page, "remote_square").first.click()
    expect(page.locator("pre.logs")).to_contain_text(re.compile(r"squaring \d in pid"))
    screenshot(page, "keyed_server_after_the_key")

    page.reload()  # the key is kept in localStorage: not asked again
    expect(page.locator("#api-key")).to_have_value("s3cret-key")
    expect(page.locator("pre.logs")).to_contain_text(re.compile(r"squaring \d in pid"))
    expect(dialog).to_be_hidden()

    page.click("[data-action=rerun]")  # server mode runs no pipeline: the CLI does
    expect(page.locator(".action-message")).to_contain_text("sematic rerun")
