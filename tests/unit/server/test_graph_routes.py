"""The folded graph, a run's children page by page and their summary, from a real server
over a SQLite database holding a pipeline with a fan-out and a nested pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from sematic.core.engine import State
from sematic.storage.sql import SqlMetadataStore
from tests.harness.nested_pipeline import NestedPipeline
from tests.unit.server.conftest import Recorded, start_server


@dataclass
class Served:
    api: httpx.Client
    pipeline: NestedPipeline
    database_url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("graph") / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'db.sqlite3'}"
    pipeline = NestedPipeline(prefix=7)
    with SqlMetadataStore(url) as store:
        store.write(runs=pipeline.runs, artifacts=pipeline.artifacts, edges=pipeline.edges)
    server = start_server(home)
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as api:
            yield Served(api, pipeline, url)
    finally:
        server.stop()


def _get(served: Served, path: str, **params: Any) -> Any:
    answer = served.api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_fan_out_is_one_group_with_counts_and_merged_edges(served: Served) -> None:
    p = served.pipeline
    graph = _get(served, f"/runs/{p.incs[4].id}/graph", fold=20)  # any run of the pipeline
    assert graph["root_id"] == p.root.id and graph["folded"] is True
    assert graph["total_runs"] == len(p.runs)
    shown = [run["id"] for run in graph["runs"]]
    assert shown == [p.root.id, p.total.id, p.sub.id, *(r.id for r in p.leaves), p.one.id]
    (group,) = graph["groups"]
    assert group["id"] == f"group:{p.root.id}:pipe.inc"
    assert group["name"] == "inc" and group["count"] == 30
    assert group["states"] == {"RESOLVED": 25, "SCHEDULED": 2, "FAILED": 3}
    assert group["created_at"] == p.incs[0].created_at
    assert group["ended_at"] is None  # two are still running
    edges = {
        (e["source_run_id"], e["destination_run_id"], e["parameter"]): e for e in graph["edges"]
    }
    merged = edges[(group["id"], p.total.id, "xs")]
    assert merged["count"] == 25 and merged["artifact_id"] is None
    single = edges[(None, p.root.id, "n")]
    assert single["count"] == 1 and single["artifact_id"] == p.root.inputs["n"]
    described = {artifact["id"] for artifact in graph["artifacts"]}
    assert p.root.inputs["n"] in described and p.total.output in described
    assert graph["nested"] == {}


def test_the_whole_graph_is_unchanged_without_fold(served: Served) -> None:
    graph = _get(served, f"/runs/{served.pipeline.root.id}/graph")
    assert len(graph["runs"]) == len(served.pipeline.runs)
    assert "groups" not in graph and len(graph["edges"]) == len(served.pipeline.edges)


def test_depth_cuts_and_parent_opens_a_cut_run(served: Served) -> None:
    p = served.pipeline
    cut = _get(served, f"/runs/{p.root.id}/graph", fold=5, depth=1)
    assert [run["id"] for run in cut["runs"]] == [p.root.id, p.total.id, p.sub.id]
    assert cut["nested"] == {
        p.sub.id: {
            "count": 6,
            "states": {"RESOLVED": 6},
            "functions": {"pipe.leaf": 5, "pipe.one": 1},
        }
    }
    opened = _get(served, f"/runs/{p.root.id}/graph", fold=5, parent=p.sub.id)
    assert [run["id"] for run in opened["runs"]] == [p.sub.id, p.one.id]
    (leaves,) = opened["groups"]
    assert leaves["id"] == f"group:{p.sub.id}:pipe.leaf" and leaves["count"] == 5


def test_a_pipeline_no_larger_than_fold_above_comes_whole(served: Served) -> None:
    p = served.pipeline
    small = _get(served, f"/runs/{p.root.id}/graph", fold=20, fold_above=len(p.runs))
    assert small["folded"] is False and small["groups"] == [] and small["nested"] == {}
    assert len(small["runs"]) == len(p.runs) and len(small["edges"]) == len(p.edges)
    large = _get(served, f"/runs/{p.root.id}/graph", fold=20, fold_above=len(p.runs) - 1)
    assert large["folded"] is True and len(large["groups"]) == 1


def test_an_unchanged_graph_is_a_304_and_a_change_a_new_etag(served: Served) -> None:
    p = served.pipeline
    path = f"/runs/{p.root.id}/graph"
    first = served.api.get(path, params={"fold": 20})
    etag = first.headers["etag"]
    again = served.api.get(path, params={"fold": 20}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    running = p.incs[-4]
    assert running.state == State.SCHEDULED
    finished = replace(running, state=State.RESOLVED, updated_at=running.updated_at + 100)
    with SqlMetadataStore(served.database_url) as store:
        store.write(runs=[finished])
    changed = served.api.get(path, params={"fold": 20}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["groups"][0]["states"]["SCHEDULED"] == 1
    with SqlMetadataStore(served.database_url) as store:
        store.write(runs=[replace(finished, state=State.SCHEDULED)], reopened=[finished.id])


def test_children_of_a_group_page_failed_first_and_filter(served: Served) -> None:
    p = served.pipeline
    path = f"/runs/{p.root.id}/children"
    first = _get(served, path, function="pipe.inc", limit=4)
    assert first["total"] == 30 and first["offset"] == 0 and first["limit"] == 4
    assert [run["state"] for run in first["runs"]] == ["FAILED"] * 3 + ["SCHEDULED"]
    assert first["runs"][0]["exception_message"] == f"boom in {p.incs[-3].id}"
    last = _get(served, path, function="pipe.inc", limit=4, offset=28)
    assert [run["id"] for run in last["runs"]] == [p.incs[23].id, p.incs[24].id]
    failed = _get(served, path, function="pipe.inc", status="failed")
    assert failed["total"] == 3
    by_creation = _get(served, path, order="created", limit=500)
    assert by_creation["total"] == 32
    assert by_creation["runs"][0]["id"] == p.incs[0].id
    assert by_creation["runs"][-1]["id"] == p.sub.id


def test_the_summary_counts_and_bins_durations(served: Served) -> None:
    p = served.pipeline
    summary = _get(served, f"/runs/{p.root.id}/children/summary", function="pipe.inc", bins=3)
    assert summary["count"] == 30
    assert summary["functions"] == {"pipe.inc": 30}
    durations = summary["durations"]
    assert durations["count"] == 28
    # 0.1 s to 2.5 s, then 2.8 s to 3.0 s (two still run); p95 by nearest rank is the 27th
    near = pytest.approx
    assert durations["min"] == near(0.1, abs=1e-3) and durations["max"] == near(3.0, abs=1e-3)
    assert durations["p50"] == near(1.4, abs=1e-3) and durations["p95"] == near(2.9, abs=1e-3)
    assert [b["count"] for b in durations["bins"]] == [10, 10, 8]
    assert durations["bins"][0]["start"] == near(0.1, abs=1e-3)
    everything = _get(served, f"/runs/{p.root.id}/children/summary")
    assert everything["functions"] == {"pipe.inc": 30, "pipe.total": 1, "pipe.sub": 1}
    leafless = _get(served, f"/runs/{p.one.id}/children/summary")
    assert leafless["count"] == 0 and leafless["durations"]["bins"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("graph", {"fold": "1"}, "fold"),
        ("graph", {"fold": "x"}, "fold"),
        ("graph", {"fold": "20", "depth": "-1"}, "depth"),
        ("graph", {"fold": "20", "parent": "nope"}, "parent"),
        ("children", {"order": "random"}, "order"),
        ("children", {"status": "sleepy"}, "status"),
        ("children", {"limit": "501"}, "limit"),
        ("children", {"offset": "-1"}, "offset"),
        ("children/summary", {"bins": "0"}, "bins"),
        ("children/summary", {"function": "a\0b"}, "function"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    served: Served, path: str, params: dict[str, str], field: str
) -> None:
    answer = served.api.get(f"/runs/{served.pipeline.root.id}/{path}", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(field)


def test_a_parent_outside_the_pipeline_or_an_unknown_run_is_404(served: Served) -> None:
    p = served.pipeline
    unknown = "f" * 32
    answer = served.api.get(f"/runs/{p.root.id}/graph", params={"fold": 20, "parent": unknown})
    assert answer.status_code == 404 and answer.json()["error"].startswith("parent")
    for path in ("graph", "children", "children/summary"):
        assert served.api.get(f"/runs/{unknown}/{path}").status_code == 404


def test_a_pipeline_recorded_by_the_local_resolver_folds(
    api: httpx.Client, recorded: Recorded
) -> None:
    """``mixed(2)``: two squares inline, two in worker processes, two worker_pid runs,
    then summarize; with fold=2 each pair is a group."""
    graph = api.get(f"/runs/{recorded.mixed_root}/graph", params={"fold": 2}).json()
    groups = {group["name"]: group for group in graph["groups"]}
    assert set(groups) == {"square", "remote_square", "worker_pid"}
    assert all(g["count"] == 2 and g["states"] == {"RESOLVED": 2} for g in groups.values())
    assert [run["name"] for run in graph["runs"]] == ["mixed", "summarize"]
    nodes = {run["id"] for run in graph["runs"]} | {g["id"] for g in groups.values()}
    ends = {e[end] for e in graph["edges"] for end in ("source_run_id", "destination_run_id")}
    assert ends - {None} <= nodes  # no edge names a run that is not shown
    # Each square takes x and witness from outside: one merged edge each per group.
    into_squares = [e for e in graph["edges"] if e["destination_run_id"] == groups["square"]["id"]]
    assert sorted((e["parameter"], e["count"]) for e in into_squares) == [("witness", 2), ("x", 2)]
