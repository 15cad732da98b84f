"""Folding a run tree: groups of siblings, depth and size cuts, which node shows a run."""

from __future__ import annotations

import pytest

from sematic.core.folding import SkeletonRun, fold_tree, group_id, sketch_of


def _tree() -> list[SkeletonRun]:
    """root -> 25 x a (each with 2 x deep), b, c -> 3 x leaf."""
    runs = [SkeletonRun("root", None, "m.root", "RESOLVED")]
    for i in range(25):
        runs.append(SkeletonRun(f"a{i}", "root", "m.a", "FAILED" if i < 2 else "RESOLVED"))
        runs += [SkeletonRun(f"a{i}d{j}", f"a{i}", "m.deep", "RESOLVED") for j in range(2)]
    runs.append(SkeletonRun("b", "root", "m.b", "SCHEDULED"))
    runs.append(SkeletonRun("c", "root", "m.c", "RESOLVED"))
    runs += [SkeletonRun(f"leaf{j}", "c", "m.leaf", "RESOLVED") for j in range(3)]
    return runs


def test_the_sketch_lists_runs_outside_large_sets_and_where_hidden_parents_hang() -> None:
    sketch = sketch_of(_tree(), fold=20)
    assert sketch.large_sets() == {("root", "m.a")}
    listed = {run.id for run in sketch.runs}
    assert "a3" not in listed and "a3d1" in listed  # a member's children: a small set
    assert sketch.hidden["a3"] == ("root", "m.a")
    assert sum(row.number for row in sketch.counts) == len(_tree()) - 1


def test_siblings_of_one_function_fold_into_a_group_with_counts() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=20), "root")
    assert folded.runs == ["root", "b", "c", "leaf0", "leaf1", "leaf2"]
    (group,) = folded.groups
    assert group.id == group_id("root", "m.a") == "group:root:m.a"
    assert group.count == 25
    assert group.states == {"FAILED": 2, "RESOLVED": 23}
    assert group.nested_runs == 50  # the members' children are hidden with them
    assert folded.node_of("a3", "root", "m.a") == group.id
    assert folded.node_of(None, "root", "m.a") == group.id  # any member
    assert folded.node_of("a3d1", "a3", "m.deep") == group.id
    assert folded.node_of("leaf2", "c", "m.leaf") == "leaf2"
    assert folded.nested == {}


def test_below_the_threshold_nothing_folds() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=26), "root")
    assert folded.groups == []
    assert len(folded.runs) == len(_tree())


def test_a_small_threshold_folds_at_every_level() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=2), "root")
    assert folded.runs == ["root", "b", "c"]
    ids = {group.id for group in folded.groups}
    assert ids == {"group:root:m.a", "group:c:m.leaf"}
    # a's children are a large set too, but under hidden members: shown as a's group.
    assert folded.node_of(None, "a4", "m.deep") == "group:root:m.a"


def test_a_depth_cut_counts_what_is_below() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=20), "root", depth=1)
    assert folded.runs == ["root", "b", "c"]
    assert folded.nested["c"].count == 3
    assert folded.nested["c"].functions == {"m.leaf": 3}
    assert folded.node_of("leaf1", "c", "m.leaf") == "c"
    assert "b" not in folded.nested  # nothing below it


def test_depth_zero_shows_the_top_alone() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=20), "root", depth=0)
    assert folded.runs == ["root"]
    assert folded.nested["root"].count == 27
    assert folded.nested["root"].states == {"FAILED": 2, "RESOLVED": 24, "SCHEDULED": 1}
    assert folded.node_of(None, "root", "m.a") == "root"
    assert folded.groups == []


def test_the_size_limit_cuts_deeper_levels_but_never_the_first() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=30), "root", limit=10)
    # root's 27 children pass the limit, yet are shown; their children are cut.
    assert len(folded.runs) == 28
    assert folded.nested["a0"].count == 2
    assert folded.nested["c"].count == 3


def test_a_subtree_is_folded_from_its_top() -> None:
    folded = fold_tree(sketch_of(_tree(), fold=20), "c")
    assert folded.runs == ["c", "leaf0", "leaf1", "leaf2"]
    assert folded.node_of("b", "root", "m.b") is None  # outside the subtree
    assert folded.node_of("root", None, "m.root") is None


def test_a_top_that_is_unknown_or_inside_a_group_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        fold_tree(sketch_of(_tree(), fold=20), "nope")
    with pytest.raises(KeyError):
        fold_tree(sketch_of(_tree(), fold=20), "a3")


def test_a_cycle_in_damaged_data_does_not_loop() -> None:
    runs = [
        SkeletonRun("root", None, "m.root", "RESOLVED"),
        *(SkeletonRun(f"x{i}", "root", "m.x", "RESOLVED") for i in range(3)),
        SkeletonRun("y", "x0", "m.y", "RESOLVED"),
        SkeletonRun("z", "y", "m.z", "RESOLVED"),
        SkeletonRun("y", "z", "m.y", "RESOLVED"),  # y again, now under z: y -> z -> y
    ]
    folded = fold_tree(sketch_of(runs, fold=2), "root")
    assert len(folded.groups) == 1
    assert folded.node_of("q", "y", "m.q") in (None, "group:root:m.x")
