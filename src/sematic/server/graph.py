"""A pipeline's graph: whole for small pipelines, folded and paged for large ones.

- ``GET /runs/ID/graph``: every run, edge and artifact description of the pipeline of
  run ID (what the CLI and older clients read; fine up to a few thousand runs).
- ``GET /runs/ID/graph?fold=N``: the same pipeline folded (``sematic.core.folding``): the
  children of one parent that run the same function, N or more of them, are one group
  (counts by state, earliest start, latest end); edges into or out of a group are merged
  (``count``); deeper levels are cut once more than ``folding.DEFAULT_LIMIT`` runs would be
  listed (``depth=D`` cuts at D levels), a cut run's children counted in ``nested``;
  ``parent=P`` gives only the subtree of P (to open a cut run); ``fold_above=M`` folds only
  a pipeline of more than M runs (a smaller one comes whole, in the same shape). ``folded``
  says whether anything was folded or cut. The answer carries an ``ETag``: a client
  sending it back in ``If-None-Match`` gets a 304 while nothing changed.
- ``GET /runs/ID/children``: run ID's direct children, a page at a time (``offset``,
  ``limit``), only one function's (``function``, a group) or one state's (``status``),
  failed first by default (then unfinished, then the rest; each state's runs oldest first;
  ``order=created``: oldest first), with their total.
- ``GET /runs/ID/children/summary``: counts of run ID's children by state and function,
  and the durations of the finished ones: min, max, p50, p95 and a histogram (``bins``).

Every count and list comes from the run graph's index (``RunGraph``): a pipeline of
100,000 runs answers in a fraction of a second and a few kilobytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sematic.core import folding, wire
from sematic.core.engine import TERMINAL
from sematic.core.folding import EdgeSketch, Sketch
from sematic.core.ports import MetadataStore
from sematic.core.records import RunRecord
from sematic.server import bodies
from sematic.server.bodies import JSONResponse
from sematic.server.params import integer, run_state, stored_run, text
from sematic.server.params import run_id as run_id_param

MAX_FOLD = 1_000_000
MAX_DEPTH = 1000
MAX_CHILDREN_LIMIT = 500
DEFAULT_CHILDREN_LIMIT = 50
MAX_BINS = 100
DEFAULT_BINS = 20
# Folded graphs kept (by pipeline, view and skeleton): viewers polling a large pipeline.
CACHED_GRAPHS = 16
ORDERS = ("failed-first", "created")
_TERMINAL = frozenset(state.value for state in TERMINAL)


class RunGraph(Protocol):
    """The reads behind a folded graph (``sematic.storage.sql.graph.SqlRunGraph``)."""

    def sketch(self, root_id: str, fold: int) -> Sketch: ...

    def runs(self, ids: Sequence[str]) -> list[RunRecord]: ...

    def edge_sketch(self, root_id: str, large: set[tuple[str, str]]) -> list[EdgeSketch]: ...

    def children(
        self,
        root_id: str,
        parent_id: str,
        *,
        function_path: str | None,
        state: str | None,
        failed_first: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[RunRecord], int]: ...

    def child_counts(
        self, root_id: str, parent_id: str, function_path: str | None
    ) -> list[tuple[str, str, int]]: ...

    def durations(self, root_id: str, parent_id: str, function_path: str | None) -> list[float]: ...


def routes(prefix: str, metadata: MetadataStore, graph: RunGraph | None) -> list[Route]:
    """The graph routes; without ``graph``, only the whole graph (folding and children
    answer 404: this server keeps no index to fold with)."""
    handlers = _Graph(metadata, graph)
    return [
        Route(f"{prefix}/runs/{{run_id}}/graph", handlers.graph, methods=["GET"]),
        Route(f"{prefix}/runs/{{run_id}}/children", handlers.children, methods=["GET"]),
        Route(f"{prefix}/runs/{{run_id}}/children/summary", handlers.summary, methods=["GET"]),
    ]


class _Graph:
    def __init__(self, metadata: MetadataStore, graph: RunGraph | None) -> None:
        self.metadata = metadata
        self._graph = graph
        self._cache: OrderedDict[tuple[Any, ...], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def graph(self, request: Request) -> Response:
        run = stored_run(self.metadata, request.path_params["run_id"])
        params = request.query_params
        if "fold" not in params:
            return JSONResponse(self._whole(run.root_id))
        fold = integer(params, "fold", 20, 2, MAX_FOLD)
        fold_above = integer(params, "fold_above", 0, 0, MAX_FOLD)
        depth = integer(params, "depth", -1, 0, MAX_DEPTH) if params.get("depth") else None
        parent = params.get("parent") or None
        top = run.root_id if parent is None else run_id_param(parent, "parent")
        body, etag = self._folded_body(run.root_id, top, fold, depth, fold_above)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in _etags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    def children(self, request: Request) -> Response:
        run = stored_run(self.metadata, request.path_params["run_id"])
        params = request.query_params
        order = params.get("order") or ORDERS[0]
        if order not in ORDERS:
            raise HTTPException(400, f"order must be one of {', '.join(ORDERS)}, not {order!r}.")
        offset = integer(params, "offset", 0, 0)
        limit = integer(params, "limit", DEFAULT_CHILDREN_LIMIT, 1, MAX_CHILDREN_LIMIT)
        found, total = self._index().children(
            run.root_id,
            run.id,
            function_path=text(params, "function"),
            state=run_state(params),
            failed_first=order == "failed-first",
            offset=offset,
            limit=limit,
        )
        return JSONResponse(
            {
                "runs": [wire.run_json(child) for child in found],
                "total": total,
                "offset": offset,
                "limit": limit,
            }
        )

    def summary(self, request: Request) -> Response:
        run = stored_run(self.metadata, request.path_params["run_id"])
        params = request.query_params
        function_path = text(params, "function")
        bins = integer(params, "bins", DEFAULT_BINS, 1, MAX_BINS)
        index = self._index()
        states: dict[str, int] = {}
        functions: dict[str, int] = {}
        for path, state, count in index.child_counts(run.root_id, run.id, function_path):
            states[state] = states.get(state, 0) + count
            functions[path] = functions.get(path, 0) + count
        durations = index.durations(run.root_id, run.id, function_path)
        return JSONResponse(
            {
                "count": sum(states.values()),
                "states": states,
                "functions": functions,
                "durations": histogram(durations, bins),
            }
        )

    def _whole(self, root_id: str) -> dict[str, Any]:
        runs = self.metadata.runs_of_root(root_id)
        edges = self.metadata.edges_of_root(root_id)
        ids = {edge.artifact_id for edge in edges}
        for run in runs:
            ids.update(run.inputs.values())
            if run.output is not None:
                ids.add(run.output)
        return {
            "root_id": root_id,
            "runs": [wire.run_json(run) for run in runs],
            "artifacts": [wire.artifact_json(a) for a in self.metadata.get_artifacts(sorted(ids))],
            "edges": [wire.edge_json(edge) for edge in edges],
        }

    def _folded_body(
        self, root_id: str, top: str, fold: int, depth: int | None, fold_above: int = 0
    ) -> tuple[str, str]:
        """The folded graph as JSON, and its ETag. Kept for the pipeline's skeleton as read
        now: until a run is added or changes state, the same answer is served again."""
        sketch = self._index().sketch(root_id, fold)
        if sketch.large_sets() and sketch.size <= fold_above:
            sketch = self._index().sketch(root_id, MAX_FOLD + 1)  # small enough: whole
        key = (root_id, top, fold, depth, hash((tuple(sketch.counts), tuple(sketch.runs))))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        body = bodies.dumps(self._folded(root_id, sketch, top, depth))
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        with self._lock:
            self._cache[key] = (body, etag)
            while len(self._cache) > CACHED_GRAPHS:
                self._cache.popitem(last=False)
        return body, etag

    def _folded(self, root_id: str, sketch: Sketch, top: str, depth: int | None) -> dict[str, Any]:
        index = self._index()
        try:
            folded = folding.fold_tree(sketch, top, depth=depth)
        except KeyError:
            raise HTTPException(
                404,
                f"parent: no run {top!r} outside a folded group in the pipeline of root run "
                f"{root_id}.",
            ) from None
        shown = sorted(index.runs(folded.runs), key=lambda run: (run.created_at, run.id))
        groups = [self._group(group) for group in folded.groups]
        edges = merge_edges(index.edge_sketch(root_id, sketch.large_sets()), folded)
        ids = {edge["artifact_id"] for edge in edges if edge["artifact_id"] is not None}
        for run in shown:
            ids.update(run.inputs.values())
            if run.output is not None:
                ids.add(run.output)
        return {
            "root_id": root_id,
            "folded": bool(folded.groups or folded.nested),
            "total_runs": sketch.size,
            "runs": [wire.run_json(run) for run in shown],
            "groups": groups,
            "nested": {
                run_id: {"count": n.count, "states": n.states, "functions": n.functions}
                for run_id, n in folded.nested.items()
            },
            "artifacts": [wire.artifact_json(a) for a in self.metadata.get_artifacts(sorted(ids))],
            "edges": edges,
        }

    @staticmethod
    def _group(group: folding.Group) -> dict[str, Any]:
        created, started, ended = group.times
        finished = all(state in _TERMINAL for state in group.states)
        return {
            "id": group.id,
            "parent_id": group.parent_id,
            "function_path": group.function_path,
            "name": group.function_path.rsplit(".", 1)[-1],
            "count": group.count,
            "states": group.states,
            "created_at": created,
            "started_at": started,
            "ended_at": ended if finished else None,
            "nested_runs": group.nested_runs,
        }

    def _index(self) -> RunGraph:
        if self._graph is None:
            raise HTTPException(404, "This server keeps no run index: ask without fold.")
        return self._graph


def merge_edges(edges: Sequence[EdgeSketch], folded: folding.Folded) -> list[dict[str, Any]]:
    """``edges`` drawn between the nodes that show their ends, merged: only edges of the
    folded subtree (an end outside it becomes None), none inside one node, and edges with
    the same ends and parameter once, with how many they are (``count``) and their
    artifact when all share it (else None)."""
    merged: dict[tuple[str | None, str | None, str | None], dict[str, Any]] = {}
    for edge in edges:
        source = None if edge.source is None else folded.node_of(*edge.source)
        destination = None if edge.destination is None else folded.node_of(*edge.destination)
        if source == destination:  # inside one node, or wholly outside the subtree
            continue
        key = (source, destination, edge.parameter)
        found = merged.get(key)
        if found is None:
            merged[key] = {
                "source_run_id": source,
                "destination_run_id": destination,
                "parameter": edge.parameter,
                "artifact_id": edge.artifact,
                "count": edge.number,
            }
            continue
        found["count"] += edge.number
        if found["artifact_id"] != edge.artifact:
            found["artifact_id"] = None
    return list(merged.values())


def histogram(durations: list[float], bins: int) -> dict[str, Any]:
    """min, max, p50, p95 (nearest rank) and ``bins`` equal bins of ``durations``."""
    if not durations:
        return {"count": 0, "min": None, "max": None, "p50": None, "p95": None, "bins": []}
    values = sorted(durations)
    low, high = values[0], values[-1]
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        slot = 0 if width == 0 else min(int((value - low) / width), bins - 1)
        counts[slot] += 1
    return {
        "count": len(values),
        "min": low,
        "max": high,
        "p50": _rank(values, 0.50),
        "p95": _rank(values, 0.95),
        "bins": [
            {"start": low + i * width, "end": low + (i + 1) * width, "count": counts[i]}
            for i in range(bins)
        ],
    }


def _rank(values: list[float], fraction: float) -> float:
    return values[max(0, min(len(values) - 1, round(fraction * len(values)) - 1))]


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
