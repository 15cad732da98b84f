"""The reads behind a folded graph, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from sematic.core.folding import EdgeSketch, SiblingCount, SkeletonRun, sketch_of
from sematic.storage.sql import SqlMetadataStore
from tests.harness.nested_pipeline import NestedPipeline


@pytest.fixture
def pipeline(store: SqlMetadataStore) -> NestedPipeline:
    recorded = NestedPipeline(prefix=1)
    other = NestedPipeline(prefix=2)  # another pipeline in the same tables
    for each in (recorded, other):
        store.write(runs=each.runs, artifacts=each.artifacts, edges=each.edges)
    return recorded


@pytest.mark.parametrize("fold", [2, 5, 20, 100])
def test_the_sketch_is_the_one_of_the_whole_tree(
    store: SqlMetadataStore, pipeline: NestedPipeline, fold: int
) -> None:
    whole = [SkeletonRun(r.id, r.parent_id, r.function_path, r.state.value) for r in pipeline.runs]
    expected = sketch_of(whole, fold)
    sketch = store.run_graph().sketch(pipeline.root.id, fold)
    assert sorted(sketch.counts) == sorted(expected.counts)
    assert sorted(sketch.runs) == sorted(expected.runs)
    assert sketch.hidden == expected.hidden
    assert sketch.fold == fold


def test_a_fan_out_is_counted_not_listed(store: SqlMetadataStore, pipeline: NestedPipeline) -> None:
    sketch = store.run_graph().sketch(pipeline.root.id, 20)
    assert {run.id for run in sketch.runs}.isdisjoint(run.id for run in pipeline.incs)
    failed = [row for row in sketch.counts if row.state == "FAILED"]
    assert failed == [SiblingCount(pipeline.root.id, "pipe.inc", "FAILED", 3)]


def test_edges_are_counted_by_the_sets_their_ends_belong_to(
    store: SqlMetadataStore, pipeline: NestedPipeline
) -> None:
    p = pipeline
    large = {(p.root.id, "pipe.inc")}
    edges = store.run_graph().edge_sketch(p.root.id, large)
    from_incs = [e for e in edges if e.source is not None and e.source[0] is None]
    assert from_incs == [
        EdgeSketch(
            (None, p.root.id, "pipe.inc"), (p.total.id, p.root.id, "pipe.total"), "xs", None, 25
        )
    ]
    into_root = [e for e in edges if e.destination is not None and e.destination[0] == p.root.id]
    assert into_root == [
        EdgeSketch(None, (p.root.id, None, "pipe.main"), "n", p.root.inputs["n"], 1)
    ]
    assert sum(e.number for e in edges) == len(p.edges)
    # Without large sets, every edge is its own.
    each = store.run_graph().edge_sketch(p.root.id, set())
    assert len(each) == len(p.edges) and all(e.number == 1 for e in each)


def test_children_page_failed_first_then_unfinished_then_by_creation(
    store: SqlMetadataStore, pipeline: NestedPipeline
) -> None:
    graph = store.run_graph()
    page, total = graph.children(
        pipeline.root.id,
        pipeline.root.id,
        function_path="pipe.inc",
        state=None,
        failed_first=True,
        offset=0,
        limit=6,
    )
    assert total == 30
    assert [run.state.value for run in page] == ["FAILED"] * 3 + ["SCHEDULED"] * 2 + ["RESOLVED"]
    assert page[0].created_at < page[1].created_at
    assert page[5].id == pipeline.incs[0].id
    later, _ = graph.children(
        pipeline.root.id,
        pipeline.root.id,
        function_path="pipe.inc",
        state=None,
        failed_first=True,
        offset=6,
        limit=100,
    )
    assert len(later) == 24
    assert {run.id for run in page} | {run.id for run in later} == {r.id for r in pipeline.incs}


def test_children_by_state_and_by_creation(
    store: SqlMetadataStore, pipeline: NestedPipeline
) -> None:
    graph = store.run_graph()
    failed, total = graph.children(
        pipeline.root.id,
        pipeline.root.id,
        function_path=None,
        state="FAILED",
        failed_first=True,
        offset=0,
        limit=50,
    )
    assert total == 3 and {run.exception_message for run in failed} == {
        f"boom in {run.id}" for run in pipeline.incs[-3:]
    }
    everything, total = graph.children(
        pipeline.root.id,
        pipeline.root.id,
        function_path=None,
        state=None,
        failed_first=False,
        offset=0,
        limit=500,
    )
    assert total == 32  # 30 inc, total, sub
    assert [run.id for run in everything] == [
        r.id for r in pipeline.runs if r.parent_id == pipeline.root.id
    ]


def test_counts_durations_and_the_times_of_large_sets(
    store: SqlMetadataStore, pipeline: NestedPipeline
) -> None:
    graph = store.run_graph()
    counts = graph.child_counts(pipeline.root.id, pipeline.root.id, None)
    assert sorted(counts) == [
        ("pipe.inc", "FAILED", 3),
        ("pipe.inc", "RESOLVED", 25),
        ("pipe.inc", "SCHEDULED", 2),
        ("pipe.sub", "RESOLVED", 1),
        ("pipe.total", "RESOLVED", 1),
    ]
    durations = graph.durations(pipeline.root.id, pipeline.root.id, "pipe.inc")
    assert len(durations) == 28  # the running ones have no end
    assert min(durations) == pytest.approx(0.1) and max(durations) == pytest.approx(3.0)
    sketch = graph.sketch(pipeline.root.id, 20)
    created, started, ended = sketch.times[pipeline.root.id, "pipe.inc"]
    assert created == pipeline.incs[0].created_at == started
    assert ended == pipeline.incs[-1].ended_at
