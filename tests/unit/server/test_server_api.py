"""The read-only API, queried over HTTP on a real server over recorded pipelines."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

import sematic
from sematic.storage.serialization import verify
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import TAG, Recorded, Server

MISSING_RUN = "0" * 32
MISSING_ARTIFACT = "0" * 64


def _store(recorded: Recorded) -> SqlMetadataStore:
    return SqlMetadataStore(recorded.settings.database_url)


def _all_runs(api: httpx.Client, **params: object) -> list[dict[str, object]]:
    response = api.get("/runs", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    runs: list[dict[str, object]] = response.json()["runs"]
    return runs


def test_health(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": sematic.__version__}


def test_runs_list_is_newest_first_with_totals(api: httpx.Client, recorded: Recorded) -> None:
    with _store(recorded) as store:
        expected = [
            run.id
            for root in (recorded.mixed_root, recorded.steps_root, recorded.failed_root)
            for run in store.runs_of_root(root)
        ]
    body = api.get("/runs").json()
    assert (body["limit"], body["offset"], body["total"]) == (50, 0, len(expected))
    assert sorted(run["id"] for run in body["runs"]) == sorted(expected)
    keys = [(-run["created_at"], run["id"]) for run in body["runs"]]
    assert keys == sorted(keys)


def test_runs_list_pages_cover_everything_once(api: httpx.Client) -> None:
    everything = [run["id"] for run in _all_runs(api)]
    paged: list[object] = []
    for offset in range(0, len(everything) + 3, 3):
        body = api.get("/runs", params={"limit": 3, "offset": offset}).json()
        assert (body["limit"], body["offset"], body["total"]) == (3, offset, len(everything))
        paged.extend(run["id"] for run in body["runs"])
    assert paged == everything


def test_runs_list_filters(api: httpx.Client, recorded: Recorded) -> None:
    roots = _all_runs(api, root_only="true")
    assert {run["id"] for run in roots} == {
        recorded.mixed_root,
        recorded.steps_root,
        recorded.failed_root,
    }
    assert all(run["id"] == run["root_id"] for run in roots)
    assert len(_all_runs(api, root_only="false")) > len(roots)

    tagged = _all_runs(api, tag=TAG)
    assert [run["id"] for run in tagged] == [recorded.mixed_root]
    assert _all_runs(api, tag="no-such-tag") == []

    squares = _all_runs(api, name="remote_square")
    assert len(squares) == 2
    assert {run["name"] for run in squares} == {"remote_square"}

    failed = _all_runs(api, status="FAILED")
    assert failed and {run["state"] for run in failed} == {"FAILED"}
    assert {run["root_id"] for run in failed} == {recorded.failed_root}
    assert _all_runs(api, status="resolved", root_only="true") == [
        run for run in roots if run["state"] == "RESOLVED"
    ]
    both = api.get("/runs", params={"name": "remote_square", "root_only": "true"}).json()
    assert (both["runs"], both["total"]) == ([], 0)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"status": "DONE"},
        {"root_only": "maybe"},
    ],
)
def test_runs_list_rejects_bad_parameters(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/runs", params=params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["error"]


def test_run_detail_has_every_field_and_the_transitions(
    api: httpx.Client, recorded: Recorded
) -> None:
    with _store(recorded) as store:
        run = store.runs_of_root(recorded.failed_root)[-1]
        transitions = store.transitions_of(run.id)
    body = api.get(f"/runs/{run.id}").json()
    assert body.pop("transitions") == [{"state": t.state, "at": t.at} for t in transitions]
    expected = dataclasses.asdict(run)
    expected["tags"] = list(run.tags)
    assert body == expected
    assert isinstance(body["created_at"], float)
    assert [t["state"] for t in api.get(f"/runs/{recorded.failed_root}").json()["transitions"]][
        -1
    ] in ("FAILED", "NESTED_FAILED")


@pytest.mark.parametrize("suffix", ["", "/graph"])
def test_unknown_run_is_404_naming_the_id(api: httpx.Client, suffix: str) -> None:
    response = api.get(f"/runs/{MISSING_RUN}{suffix}")
    assert response.status_code == 404
    assert MISSING_RUN in response.json()["error"]


def test_unknown_route_is_a_json_404(api: httpx.Client) -> None:
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert "error" in response.json()
    assert api.post("/runs").status_code == 405


def test_graph_of_a_root_is_consistent(api: httpx.Client, recorded: Recorded) -> None:
    graph = api.get(f"/runs/{recorded.mixed_root}/graph").json()
    assert graph["root_id"] == recorded.mixed_root
    run_ids = {run["id"] for run in graph["runs"]}
    assert len(run_ids) == len(graph["runs"]) == 8
    assert {run["root_id"] for run in graph["runs"]} == {recorded.mixed_root}
    artifact_ids = {artifact["id"] for artifact in graph["artifacts"]}
    assert graph["edges"]
    for edge in graph["edges"]:
        assert edge["artifact_id"] in artifact_ids
        assert edge["source_run_id"] in run_ids | {None}
        assert edge["destination_run_id"] in run_ids | {None}
    for run in graph["runs"]:
        assert set(run["inputs"].values()) <= artifact_ids
        assert run["output"] is None or run["output"] in artifact_ids
    for artifact in graph["artifacts"]:
        assert set(artifact) == {"id", "type_description", "summary", "size", "created_at"}
    # Asked from any of its runs, the graph is the pipeline's.
    child = next(run["id"] for run in graph["runs"] if run["id"] != recorded.mixed_root)
    assert api.get(f"/runs/{child}/graph").json() == graph


def test_artifact_description_and_payload(api: httpx.Client, recorded: Recorded) -> None:
    root = api.get(f"/runs/{recorded.mixed_root}").json()
    artifact = api.get(f"/artifacts/{root['output']}").json()
    with _store(recorded) as store:
        assert artifact == dataclasses.asdict(store.get_artifact(root["output"]))
    assert artifact["summary"]["total"] == 0 + 1 + 0 + 1
    response = api.get(f"/artifacts/{root['output']}/payload")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert len(response.content) == artifact["size"]
    verify(artifact["id"], artifact["type_description"], response.content)


@pytest.mark.parametrize("suffix", ["", "/payload"])
def test_artifact_ids_are_checked(api: httpx.Client, suffix: str) -> None:
    missing = api.get(f"/artifacts/{MISSING_ARTIFACT}{suffix}")
    assert missing.status_code == 404
    assert MISSING_ARTIFACT in missing.json()["error"]
    for bad in ("abc", "A" * 64, "0" * 63 + "g", "0" * 65):
        response = api.get(f"/artifacts/{bad}{suffix}")
        assert response.status_code == 400
        assert "artifact id" in response.json()["error"]


def test_logs_of_a_worker_run(api: httpx.Client, recorded: Recorded) -> None:
    squares = _all_runs(api, name="remote_square")
    response = api.get(f"/runs/{squares[0]['id']}/logs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "squaring" in response.text
    assert (recorded.settings.log_path(str(squares[0]["id"]))).read_text() == response.text
    missing = api.get(f"/runs/{MISSING_RUN}/logs")
    assert missing.status_code == 404
    assert MISSING_RUN in missing.json()["error"]
    assert api.get("/runs/not-a-run/logs").status_code == 400


def test_plotly_js_is_served_for_the_ui_without_a_key(server: Server) -> None:
    """The UI draws plotly figures with the plotly.js of the plotly package installed here
    (a server without plotly answers 404 and the UI shows the figure's JSON)."""
    done = httpx.get(f"{server.url}/ui/vendor/plotly.min.js", timeout=10)
    assert done.status_code == 200
    assert done.headers["content-type"].startswith("text/javascript")
    assert b"plotly" in done.content[:2000].lower()
