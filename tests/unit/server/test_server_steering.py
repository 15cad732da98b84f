"""Cancel, rerun and live updates over HTTP, on a real server over a private SEMATIC_HOME."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sematic import LocalResolver
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import three_steps
from tests.unit.server.conftest import ROOT, Server, server_env, start_server

KEY = "steering-test-key"


@pytest.fixture
def steps(home: Path, tmp_path: Path) -> str:
    """A resolved three_steps pipeline in ``home``; its root id."""
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    return future.id


@pytest.fixture
def served(home: Path, steps: str) -> Iterator[Server]:
    home.mkdir(parents=True, exist_ok=True)
    server = start_server(home)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(served: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url + "/api/v1", timeout=10) as client:
        yield client


def _store() -> SqlMetadataStore:
    return SqlMetadataStore(LocalSettings.from_environment().database_url)


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The ``runs`` events of an open event stream, as they arrive."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if fields.get("event") == "runs":
                yield {**json.loads(fields["data"]), "id": fields.get("id")}
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def test_events_stream_a_pipeline_then_each_change(served: Server, steps: str) -> None:
    url = f"{served.url}/api/v1/events"
    with httpx.stream("GET", url, params={"root_id": steps, "since": 0}, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        first = next(events)
        assert sorted(run["name"] for run in first["runs"]) == [
            "step_a",
            "step_b",
            "step_c",
            "three_steps",
        ]
        assert float(first["id"]) == first["cursor"]

        with _store() as store:
            step_b = next(r for r in store.runs_of_root(steps) if r.name == "step_b")
            store.write(
                runs=[dataclasses.replace(step_b, tags=("touched",), updated_at=time.time())]
            )
        second = next(events)
    assert [(run["id"], run["tags"]) for run in second["runs"]] == [(step_b.id, ["touched"])]
    assert second["cursor"] > first["cursor"]


def test_events_send_every_run_when_more_than_a_batch_share_one_time(
    served: Server, steps: str
) -> None:
    """1,200 runs written with one updated_at (a bulk write stamps one time): the stream
    pages past its batch of 500 by id, none is skipped."""
    with _store() as store:
        root = store.get_run(steps)
        at = time.time()
        many = [
            dataclasses.replace(root, id=f"{i:032x}", parent_id=root.id, name="many", updated_at=at)
            for i in range(1, 1201)
        ]
        store.write(runs=many)
    received: set[str] = set()
    url = f"{served.url}/api/v1/events"
    # A run left behind would leave the stream silent: the read times out, failing the test.
    quiet = httpx.Timeout(10, read=5)
    with httpx.stream("GET", url, params={"root_id": steps, "since": 0}, timeout=quiet) as response:
        for event in _events(response):
            received.update(run["id"] for run in event["runs"] if run["name"] == "many")
            if len(received) == len(many):
                break
    assert received == {run.id for run in many}


def test_events_without_a_root_carry_root_runs_only(served: Server, steps: str) -> None:
    url = f"{served.url}/api/v1/events"
    with httpx.stream("GET", url, params={"since": 0}, timeout=20) as response:
        first = next(_events(response))
    assert [run["id"] for run in first["runs"]] == [steps]


@pytest.mark.parametrize(
    ("params", "message"),
    [({"root_id": "../etc"}, "is not a run id"), ({"since": "yesterday"}, "since must be")],
)
def test_events_refuse_bad_parameters(served: Server, params: dict[str, str], message: str) -> None:
    response = httpx.get(f"{served.url}/api/v1/events", params=params, timeout=10)
    assert response.status_code == 400
    assert message in response.json()["error"]


PIPELINE = textwrap.dedent(
    """
    import sys
    from sematic import LocalResolver
    from tests.pipelines.local import waits_remotely
    future = waits_remotely(sys.argv[1], 120.0)
    print(future.id, flush=True)
    future.resolve(LocalResolver(progress=False))
    """
)


def test_cancel_a_running_pipeline_over_http(api: httpx.Client, tmp_path: Path) -> None:
    witness = tmp_path / "running"
    with subprocess.Popen(
        [sys.executable, "-c", PIPELINE, str(witness)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as pipeline:
        assert pipeline.stdout is not None
        root_id = pipeline.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while api.get(f"/runs/{root_id}").status_code != 200 or not list(witness.glob("*")):
            assert time.monotonic() < deadline, "the pipeline never started"
            time.sleep(0.05)

        response = api.post(f"/runs/{root_id}/cancel", json={"reason": "from the test"})
        assert response.status_code == 202, response.text
        assert response.json() == {"root_id": root_id, "status": "cancel requested"}
        _, stderr = pipeline.communicate(timeout=60)
    assert "from the test" in stderr
    graph = api.get(f"/runs/{root_id}/graph").json()
    assert {run["state"] for run in graph["runs"]} == {"CANCELED"}

    again = api.post(f"/runs/{root_id}/cancel")
    assert again.status_code == 409
    assert "already finished: it is CANCELED" in again.json()["error"]
    assert api.post(f"/runs/{'0' * 32}/cancel").status_code == 404
    assert api.post("/runs/..%2F..%2Fetc/cancel").status_code in (400, 404)
    json_type = {"Content-Type": "application/json"}
    assert api.post(f"/runs/{root_id}/cancel", content=b"[1]", headers=json_type).status_code == 400


def _wait_resolved(api: httpx.Client, root_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = api.get(f"/runs/{root_id}/graph")
        if response.status_code == 200:
            graph: dict[str, Any] = response.json()
            root = next(run for run in graph["runs"] if run["id"] == root_id)
            if root["state"] in ("RESOLVED", "FAILED", "CANCELED"):
                return graph
        assert time.monotonic() < deadline, f"rerun {root_id} never finished"
        time.sleep(0.1)


def test_rerun_over_http_whole_and_from_a_step(api: httpx.Client, steps: str) -> None:
    whole = api.post(f"/runs/{steps}/rerun", json={"from_run_id": None})
    assert whole.status_code == 202, whole.text
    new_root = whole.json()["root_id"]
    assert new_root != steps
    graph = _wait_resolved(api, new_root)
    assert {run["state"] for run in graph["runs"]} == {"RESOLVED"}
    assert not any(run["cache_hit"] for run in graph["runs"])

    old = api.get(f"/runs/{steps}/graph").json()
    step_c = next(run["id"] for run in old["runs"] if run["name"] == "step_c")
    partial = api.post(f"/runs/{steps}/rerun", json={"from_run_id": step_c})
    assert partial.status_code == 202
    graph = _wait_resolved(api, partial.json()["root_id"])
    outputs = {run["name"]: run["output"] for run in graph["runs"]}
    assert outputs == {run["name"]: run["output"] for run in old["runs"]}

    foreign = api.post(f"/runs/{steps}/rerun", json={"from_run_id": new_root})
    assert foreign.status_code == 409
    assert "is not part of the pipeline" in foreign.json()["error"]
    assert api.post(f"/runs/{steps}/rerun", json={"from_run_id": 3}).status_code == 400


def test_steering_needs_the_api_key_in_server_mode(home: Path, steps: str) -> None:
    server = start_server(home, "--api-key-env", "K", env=server_env(home, K=KEY))
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as api:
            for path in (f"/runs/{steps}/cancel", f"/runs/{steps}/rerun"):
                assert api.post(path).status_code == 401
                wrong = api.post(path, headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
            bearer = {"Authorization": f"Bearer {KEY}"}
            keyed = api.post(f"/runs/{steps}/cancel", headers=bearer)
            assert keyed.status_code == 409  # authorized; the pipeline has finished
            # Server mode runs no pipeline code: a rerun is for the CLI, where the code is.
            rerun = api.post(f"/runs/{steps}/rerun", headers=bearer, json={"from_run_id": None})
            assert rerun.status_code == 409
            assert f"`sematic rerun {steps}`" in rerun.json()["error"]
            missing = api.post(f"/runs/{'0' * 32}/rerun", headers=bearer)
            assert missing.status_code == 404
    finally:
        server.stop()
    with _store() as store:
        assert store.cancel_request(steps) is None
