"""The side panel of a run that ran in pods: a "Kubernetes job", each attempt, and what the
pipeline's pods reserved (the records as a CloudResolver driver writes them)."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import Page, expect

from sematic.core.usage import execution_json
from sematic.storage.sql import SqlMetadataStore
from tests.ui.conftest import UiHome, node, panel_section
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow

OOM = {
    "job": "sematic-bbbb-1", "pod": "sematic-bbbb-1-q7", "node": "node-a", "image": "reg/p:t",
    "image_digest": "sha256:" + "2" * 64, "requests": {"cpu": "1", "memory": "1Gi"},
    "limits": {"memory": "1Gi"}, "started_at": 100.0, "finished_at": 130.0, "ended": "OOMKilled",
    "exit_code": 137, "message": "the container ran out of memory (limit 1Gi) and was killed",
    "events": [{"at": 99.0, "reason": "Scheduled", "count": 1,
                "message": "Successfully assigned default/sematic-bbbb-1-q7 to node-a"}],
}  # fmt: skip
RETRY = dict(OOM, job="sematic-bbbb-2", pod="sematic-bbbb-2-r8", started_at=200.0,
             finished_at=230.0, ended="Succeeded", exit_code=0, message=None)  # fmt: skip


def test_a_run_in_pods_shows_its_attempts_and_the_pipeline_its_usage(
    page: Page, ui_server: Server, ui_home: UiHome
) -> None:
    root = ui_home.recorded.steps_root
    with SqlMetadataStore(ui_home.recorded.settings.database_url) as store:
        step = next(r for r in store.runs_of_root(root) if r.name == "step_b")
        ran = dataclasses.replace(step, inline=False, execution=execution_json([OOM, RETRY]))
        store.write(runs=[ran])

    page.goto(f"{ui_server.url}/#/runs/{root}")
    expect(page.locator(".run-header h1")).to_have_text("three_steps")
    # The root: the sum over the pipeline's pods (60 s of 1 cpu and 1 GiB).
    expect(panel_section(page, "kubernetes")).to_contain_text(
        "Pipeline reserved: 60.0 cpu·s, 60.0 GiB·s, 0 GPU·s"
    )

    node(page, "step_b").first.click()
    expect(page.locator("aside.panel h2")).to_have_text("step_b")
    expect(page.locator("aside.panel .panel-sub .chip")).to_have_text("Kubernetes job")
    pods = panel_section(page, "kubernetes")
    expect(pods.locator(".attempt")).to_have_count(2)
    first = pods.locator('.attempt[data-attempt="1"]')
    expect(first).to_contain_text("sematic-bbbb-1-q7")
    expect(first).to_contain_text("node-a")
    expect(first).to_contain_text("sha256:" + "2" * 64)
    expect(first).to_contain_text("cpu=1 memory=1Gi")
    expect(first).to_contain_text(
        "OOMKilled (exit code 137): the container ran out of memory (limit 1Gi)"
    )
    expect(first.locator(".pod-events")).to_contain_text("Scheduled: Successfully assigned")
    expect(pods.locator('.attempt[data-attempt="2"]')).to_contain_text("Succeeded (exit code 0)")

    node(page, "step_a").first.click()
    expect(page.locator("aside.panel h2")).to_have_text("step_a")
    expect(page.locator("aside.panel .panel-sub .chip")).to_have_text("inline")
    expect(panel_section(page, "kubernetes")).to_have_count(0)
