"""Folding a pipeline's run tree for display: large sibling sets become one node.

Pure: it works on a ``Sketch`` of the tree that a store reads without loading every run:
how many children each parent has of each function in each state, the runs outside the
large sibling sets, and where the parents hidden inside those sets hang. It says which
runs to show one by one, which siblings to show as one group, which shown runs hide their
children (a depth cut), and which node shows any run (``Folded.node_of``). The caller then
reads in full only the runs shown.

- **Groups.** The children of one parent that run the same function, when there are at
  least ``Sketch.fold`` of them (a fan-out), are one group; a group's members and
  everything under them are not shown.
- **Levels.** The tree is walked level by level from ``top``. A run at ``depth`` levels
  below ``top``, or on a level that would bring the runs shown past ``limit``, is shown
  with its children cut: its ``Nested`` counts say what is below it.
- **Edges** between hidden runs are drawn between the nodes that show them: a run inside a
  group is drawn as its group, a run under a cut run as that run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "EdgeSketch",
    "Folded",
    "Group",
    "Nested",
    "SiblingCount",
    "Sketch",
    "SkeletonRun",
    "Times",
    "fold_tree",
    "group_id",
    "large_sets",
    "sketch_of",
]

DEFAULT_LIMIT = 2000


class SkeletonRun(NamedTuple):
    """What folding needs of a run."""

    id: str
    parent_id: str | None
    function_path: str
    state: str


class SiblingCount(NamedTuple):
    """``number`` children of ``parent_id`` run ``function_path`` and are in ``state``."""

    parent_id: str
    function_path: str
    state: str
    number: int


# An edge's end: (run id, parent, function); the id None for a member of a large set.
End = tuple[str | None, str | None, str]
# When a sibling set was first created, first started and last ended (None: not yet).
Times = tuple[float | None, float | None, float | None]


class EdgeSketch(NamedTuple):
    """Edges with the same ends and parameter, counted (``artifact``: theirs if they all
    carry the same)."""

    source: End | None
    destination: End | None
    parameter: str | None
    artifact: str | None
    number: int


@dataclass(frozen=True)
class Sketch:
    """A pipeline's tree as a store reads it cheaply.

    ``counts``: every run but the root, counted by parent, function and state. ``runs``:
    the runs outside sibling sets of ``fold`` or more (the root among them). ``hidden``:
    for each parent of a run that is not in ``runs`` (a member of a large set, or under
    one), its own parent and function.
    """

    fold: int
    counts: Sequence[SiblingCount]
    runs: Sequence[SkeletonRun]
    hidden: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)
    # The earliest creation and start and the latest end of each large set, when known.
    times: Mapping[tuple[str, str], Times] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many runs the pipeline has (the root and every run ``counts`` counts)."""
        return 1 + sum(row.number for row in self.counts)

    def large_sets(self) -> set[tuple[str, str]]:
        """The (parent, function) sibling sets of ``fold`` or more runs."""
        return large_sets(self.counts, self.fold)


def sketch_of(skeleton: Iterable[SkeletonRun], fold: int) -> Sketch:
    """The ``Sketch`` of a tree given whole (what a store computes without reading it all)."""
    every = list(skeleton)
    tally: dict[tuple[str, str, str], int] = {}
    for run in every:
        if run.parent_id is not None:
            key = (run.parent_id, run.function_path, run.state)
            tally[key] = tally.get(key, 0) + 1
    counts = [SiblingCount(p, f, s, n) for (p, f, s), n in tally.items()]
    large = large_sets(counts, fold)
    listed = [
        r for r in every if r.parent_id is None or (r.parent_id, r.function_path) not in large
    ]
    known = {run.id for run in listed}
    where = {run.id: (run.parent_id, run.function_path) for run in every}
    hidden: dict[str, tuple[str | None, str]] = {}
    wanted = [row.parent_id for row in counts if row.parent_id not in known]
    while wanted:
        run_id = wanted.pop()
        if run_id in hidden or run_id not in where:
            continue
        hidden[run_id] = where[run_id]
        parent = where[run_id][0]
        if parent is not None and parent not in known:
            wanted.append(parent)
    return Sketch(fold, counts, listed, hidden)


def large_sets(counts: Sequence[SiblingCount], fold: int) -> set[tuple[str, str]]:
    """The (parent, function) sibling sets of ``counts`` holding ``fold`` or more runs."""
    sizes: dict[tuple[str, str], int] = {}
    for parent, function_path, _state, count in counts:
        key = (parent, function_path)
        sizes[key] = sizes.get(key, 0) + count
    return {key for key, size in sizes.items() if size >= fold}


@dataclass(frozen=True)
class Group:
    """Siblings of one function folded into one node."""

    id: str
    parent_id: str
    function_path: str
    count: int
    states: Mapping[str, int]
    nested_runs: int  # runs under the members, hidden with them
    times: Times = (None, None, None)


@dataclass(frozen=True)
class Nested:
    """The direct children of a shown run whose children are cut."""

    count: int
    states: Mapping[str, int]
    functions: Mapping[str, int]


@dataclass
class Folded:
    """What to show: ``runs`` one by one (top first, then level by level), ``groups`` and
    ``nested`` (shown runs whose children are cut)."""

    runs: list[str]
    groups: list[Group]
    nested: dict[str, Nested]
    _nodes: dict[str, str | None]
    _parents: Mapping[str, tuple[str | None, str]]
    _large: set[tuple[str, str]]

    def node_of(self, run_id: str | None, parent_id: str | None, function_path: str) -> str | None:
        """The node that shows a run of the pipeline: the run, its group, or the shown run
        it is under; None outside the folded subtree. ``run_id`` None: any member of the
        sibling set of (``parent_id``, ``function_path``) (a set of ``fold`` or more)."""
        if run_id is not None and run_id in self._nodes:
            return self._nodes[run_id]
        if parent_id is not None and (parent_id, function_path) in self._large:
            node = group_id(parent_id, function_path)
            found: str | None = node if node in self._nodes else self._node(parent_id)
        else:
            found = None if parent_id is None else self._node(parent_id)
        if run_id is not None:
            self._nodes[run_id] = found
        return found

    def _node(self, run_id: str) -> str | None:
        """``node_of`` a run known by id alone (a parent): walked up, remembered."""
        path: list[str] = []
        current: str | None = run_id
        found: str | None = None
        while current is not None:
            if current in self._nodes:
                found = self._nodes[current]
                break
            where = self._parents.get(current)
            if where is None or current in path:  # outside the pipeline, or damaged data
                break
            path.append(current)
            parent, function_path = where
            if parent is not None and (parent, function_path) in self._large:
                node = group_id(parent, function_path)
                if node in self._nodes:
                    found = node
                    break
            current = parent
        for walked in path:
            self._nodes[walked] = found
        return found


def group_id(parent_id: str, function_path: str) -> str:
    """The node id of the group of ``function_path``'s children of ``parent_id``."""
    return f"group:{parent_id}:{function_path}"


def fold_tree(
    sketch: Sketch, top: str, *, depth: int | None = None, limit: int = DEFAULT_LIMIT
) -> Folded:
    """Fold the subtree of ``top`` (a run of ``sketch.runs``; KeyError if it is not).

    ``depth`` None: no depth cut; ``limit``: the most runs shown, except that ``top``'s own
    children are always shown (folded).
    """
    large = sketch.large_sets()
    parents: dict[str, tuple[str | None, str]] = dict(sketch.hidden)
    listed_children: dict[str, list[str]] = {}
    for run in sketch.runs:
        parents[run.id] = (run.parent_id, run.function_path)
        if run.parent_id is not None and run.parent_id != run.id:
            listed_children.setdefault(run.parent_id, []).append(run.id)
    if top not in parents or top in sketch.hidden:
        raise KeyError(top)
    counts_of: dict[str, list[SiblingCount]] = {}
    for row in sketch.counts:
        counts_of.setdefault(row.parent_id, []).append(row)
    folded = Folded([top], [], {}, {top: top}, parents, large)
    level = [top]
    level_depth = 0
    while level:
        cut = depth is not None and level_depth >= depth
        if not cut and level_depth > 0:
            shown_next = sum(len(listed_children.get(parent, ())) for parent in level)
            cut = len(folded.runs) + shown_next > limit
        if cut:
            for parent in level:
                rows = counts_of.get(parent)
                if rows:
                    folded.nested[parent] = _nested(rows)
            break
        next_level: list[str] = []
        for parent in level:
            for kid in listed_children.get(parent, ()):
                folded.runs.append(kid)
                folded._nodes[kid] = kid
                next_level.append(kid)
            sets: dict[str, dict[str, int]] = {}
            for row in counts_of.get(parent, ()):
                if (parent, row.function_path) in large:
                    states = sets.setdefault(row.function_path, {})
                    states[row.state] = states.get(row.state, 0) + row.number
            for function_path, states in sets.items():
                node = group_id(parent, function_path)
                folded._nodes[node] = node
                times = sketch.times.get((parent, function_path), (None, None, None))
                count = sum(states.values())
                folded.groups.append(Group(node, parent, function_path, count, states, 0, times))
        level = next_level
        level_depth += 1
    _count_hidden(folded, sketch, counts_of)
    return folded


def _nested(rows: list[SiblingCount]) -> Nested:
    states: dict[str, int] = {}
    functions: dict[str, int] = {}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + row.number
        functions[row.function_path] = functions.get(row.function_path, 0) + row.number
    return Nested(sum(states.values()), states, functions)


def _count_hidden(
    folded: Folded, sketch: Sketch, counts_of: Mapping[str, list[SiblingCount]]
) -> None:
    """Set each group's ``nested_runs``: the runs under its members (the children of the
    hidden parents that the group shows)."""
    hidden: dict[str, int] = {}
    for parent in sketch.hidden:
        node = folded._node(parent)
        if node is not None and node.startswith("group:"):
            under = sum(row.number for row in counts_of.get(parent, ()))
            hidden[node] = hidden.get(node, 0) + under
    folded.groups = [
        Group(g.id, g.parent_id, g.function_path, g.count, g.states, hidden.get(g.id, 0), g.times)
        for g in folded.groups
    ]
