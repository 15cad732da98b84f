"""The reads behind a pipeline's folded graph (``sematic.server.graph``), in SQL.

A pipeline of 100,000 runs is never read whole: its tree is counted by parent, function
and state from the index ``ix_runs_root_parent_function_state`` (root, parent, function,
state, id); only the runs outside large sibling sets are listed; its edges are counted by
the sets their ends belong to (through ``ix_edges_destination_covering``); whole rows are
read only for the runs a page shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, case, func, or_, select, tuple_

from sematic.core.engine import TERMINAL, State
from sematic.core.folding import (
    EdgeSketch,
    SiblingCount,
    SkeletonRun,
    Sketch,
    Times,
    large_sets,
)
from sematic.core.records import RunRecord
from sematic.storage.sql import convert
from sematic.storage.sql.models import edges, runs

Guard = Callable[[str], AbstractContextManager[None]]
_CHUNK = 500
# Sibling sets named in a statement at most (two bound values each); past that, filtered here.
MAX_SETS_IN_SQL = 2000
# failed-first: what went wrong, then what is still going on, then the rest, by state.
FAILED_FIRST = [
    State.FAILED.value,
    State.NESTED_FAILED.value,
    *(state.value for state in State if state not in TERMINAL),
]


class SqlRunGraph:
    """The graph reads of the database of ``engine`` (already migrated)."""

    def __init__(self, engine: Engine, errors: Guard) -> None:
        self._engine = engine
        self._errors = errors

    def sketch(self, root_id: str, fold: int) -> Sketch:
        """The pipeline ``root_id``'s tree for folding siblings sets of ``fold`` or more:
        counts from the index, and only the runs outside the large sets read one by one."""
        counted = (
            select(
                runs.c.parent_id,
                runs.c.function_path,
                runs.c.state,
                func.count(),
                func.min(runs.c.created_at),
                func.min(runs.c.started_at),
                func.max(runs.c.ended_at),
            )
            .where(runs.c.root_id == root_id, runs.c.parent_id.is_not(None))
            .group_by(runs.c.parent_id, runs.c.function_path, runs.c.state)
        )
        with self._errors("read from"), self._engine.connect() as conn:
            rows: Any = conn.execute(counted)
            counts: list[SiblingCount] = []
            times: dict[tuple[str, str], Times] = {}
            for parent, function_path, state, number, created, started, ended in rows:
                counts.append(SiblingCount(parent, function_path, state, number))
                times[parent, function_path] = _earliest_latest(
                    times.get((parent, function_path)), (created, started, ended)
                )
            large = sorted(large_sets(counts, fold))
            listed = select(runs.c.id, runs.c.parent_id, runs.c.function_path, runs.c.state)
            listed = listed.where(runs.c.root_id == root_id)
            if large and len(large) <= MAX_SETS_IN_SQL:
                outside = tuple_(runs.c.parent_id, runs.c.function_path).not_in(large)
                listed = listed.where(or_(runs.c.parent_id.is_(None), outside))
            rows = conn.execute(listed)
            found = [SkeletonRun(*row) for row in rows]
            if large and len(large) > MAX_SETS_IN_SQL:
                members = set(large)
                found = [run for run in found if (run.parent_id, run.function_path) not in members]
            hidden = self._hidden_parents(conn, counts, {run.id for run in found})
        large_times = {key: times[key] for key in large}
        return Sketch(fold, counts, found, hidden, large_times)

    def _hidden_parents(
        self, conn: Connection, counts: list[SiblingCount], known: set[str]
    ) -> dict[str, tuple[str | None, str]]:
        """Where each parent in ``counts`` that is not ``known`` hangs, walked up until a
        known run."""
        hidden: dict[str, tuple[str | None, str]] = {}
        wanted = sorted({row.parent_id for row in counts} - known)
        while wanted:
            above: set[str] = set()
            for start in range(0, len(wanted), _CHUNK):
                query = select(runs.c.id, runs.c.parent_id, runs.c.function_path).where(
                    runs.c.id.in_(wanted[start : start + _CHUNK])
                )
                rows: Any = conn.execute(query)
                for run_id, parent, function_path in rows:
                    hidden[run_id] = (parent, function_path)
                    if parent is not None and parent not in known and parent not in hidden:
                        above.add(parent)
            wanted = sorted(above)
        return hidden

    def edge_sketch(self, root_id: str, large: set[tuple[str, str]]) -> list[EdgeSketch]:
        """The edges into a run of the pipeline ``root_id``, and those out of one to no run
        (its outputs), each end as (run id, parent, function); counted together when an
        end is a member of a ``large`` sibling set (its id then None)."""
        sets = sorted(large) if len(large) <= MAX_SETS_IN_SQL else []
        into = self._edge_counts(root_id, sets, into=True)
        out = self._edge_counts(root_id, sets, into=False)
        with self._errors("read from"), self._engine.connect() as conn:
            rows: Any = [*conn.execute(into), *conn.execute(out)]
        found: list[EdgeSketch] = []
        for parameter, sid, sp, sf, did, dp, df, count, low, high in rows:
            source = None if sp is None and sid is None else (sid, sp, sf)
            destination = None if dp is None and did is None else (did, dp, df)
            artifact = low if low == high else None
            found.append(EdgeSketch(source, destination, parameter or None, artifact, int(count)))
        return found

    @staticmethod
    def _edge_counts(root_id: str, sets: list[tuple[str, str]], *, into: bool) -> Select[Any]:
        source = runs.alias("source")
        destination = runs.alias("destination")

        def end_id(run: Any) -> Any:
            if not sets:
                return run.c.id
            member = tuple_(run.c.parent_id, run.c.function_path).in_(sets)
            return case((member, None), else_=run.c.id)

        if into:
            joined = destination.join(edges, edges.c.destination_run_id == destination.c.id)
            joined = joined.outerjoin(source, source.c.id == edges.c.source_run_id)
            where = [destination.c.root_id == root_id]
        else:
            joined = source.join(edges, edges.c.source_run_id == source.c.id)
            joined = joined.outerjoin(destination, destination.c.id == edges.c.destination_run_id)
            where = [source.c.root_id == root_id, edges.c.destination_run_id == ""]
        inner = (
            select(
                edges.c.parameter.label("parameter"),
                end_id(source).label("sid"),
                source.c.parent_id.label("sp"),
                source.c.function_path.label("sf"),
                end_id(destination).label("did"),
                destination.c.parent_id.label("dp"),
                destination.c.function_path.label("df"),
                edges.c.artifact_id.label("artifact"),
            )
            .select_from(joined)
            .where(*where)
            .subquery()
        )
        keys = [inner.c[name] for name in ("parameter", "sid", "sp", "sf", "did", "dp", "df")]
        return select(
            *keys, func.count(), func.min(inner.c.artifact), func.max(inner.c.artifact)
        ).group_by(*keys)

    def runs(self, ids: Sequence[str]) -> list[RunRecord]:
        """The runs among ``ids`` (unknown ids skipped), in no particular order."""
        found: list[RunRecord] = []
        with self._errors("read from"), self._engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = select(runs).where(runs.c.id.in_(ids[start : start + _CHUNK]))
                mapped: Any = conn.execute(query).mappings()
                found.extend(convert.run_record(row) for row in mapped)
        return found

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
    ) -> tuple[list[RunRecord], int]:
        """One page of ``parent_id``'s children, and how many match in all.

        ``failed_first``: failed runs, then unfinished ones, then the rest, each state's
        oldest first; else oldest first. A page is found by id through the index, each
        state's range apart, so a deep page of a large set costs no more than the first.
        """
        where = self._children_of(root_id, parent_id, function_path)
        if state is not None:
            where.append(runs.c.state == state)
        with self._errors("read from"), self._engine.connect() as conn:
            if failed_first and state is None:
                counted = select(runs.c.state, func.count()).where(*where).group_by(runs.c.state)
                tally: Any = conn.execute(counted)
                sizes = {str(each): int(number) for each, number in tally}
                total = sum(sizes.values())
                ids: list[str] = []
                skip, wanted = offset, limit
                for each in [*FAILED_FIRST, *sorted(set(sizes) - set(FAILED_FIRST))]:
                    size = sizes.get(each, 0)
                    if skip >= size:
                        skip -= size
                        continue
                    ids += self._page_ids(conn, [*where, runs.c.state == each], skip, wanted)
                    skip, wanted = 0, limit - len(ids)
                    if wanted <= 0:
                        break
            else:
                counted = select(func.count()).select_from(runs).where(*where)
                total = int(conn.execute(counted).scalar_one())
                ids = self._page_ids(conn, where, offset, limit)
            query = select(runs).where(runs.c.id.in_(ids))
            mapped: Any = conn.execute(query).mappings()
            by_id = {row["id"]: convert.run_record(row) for row in mapped}
        return [by_id[run_id] for run_id in ids if run_id in by_id], total

    @staticmethod
    def _page_ids(
        conn: Connection, where: list[ColumnElement[bool]], offset: int, limit: int
    ) -> list[str]:
        query = (
            select(runs.c.id)
            .where(*where)
            .order_by(runs.c.created_at, runs.c.id)
            .offset(offset)
            .limit(limit)
        )
        rows: Any = conn.execute(query)
        return [str(run_id) for (run_id,) in rows]

    def child_counts(
        self, root_id: str, parent_id: str, function_path: str | None
    ) -> list[tuple[str, str, int]]:
        """(function, state, count) of ``parent_id``'s children."""
        query = (
            select(runs.c.function_path, runs.c.state, func.count())
            .where(*self._children_of(root_id, parent_id, function_path))
            .group_by(runs.c.function_path, runs.c.state)
        )
        with self._errors("read from"), self._engine.connect() as conn:
            counted: Any = conn.execute(query)
            return [(str(f), str(s), int(n)) for f, s, n in counted]

    def durations(self, root_id: str, parent_id: str, function_path: str | None) -> list[float]:
        """How long each finished child of ``parent_id`` ran, in seconds."""
        query = select(runs.c.ended_at - runs.c.started_at).where(
            *self._children_of(root_id, parent_id, function_path),
            runs.c.started_at.is_not(None),
            runs.c.ended_at.is_not(None),
        )
        with self._errors("read from"), self._engine.connect() as conn:
            values: Any = conn.execute(query)
            return [float(value) for (value,) in values]

    @staticmethod
    def _children_of(
        root_id: str, parent_id: str, function_path: str | None
    ) -> list[ColumnElement[bool]]:
        where = [runs.c.root_id == root_id, runs.c.parent_id == parent_id]
        if function_path is not None:
            where.append(runs.c.function_path == function_path)
        return where


def _earliest_latest(seen: Times | None, row: Times) -> Times:
    """The earliest creation and start and the latest end of ``seen`` and ``row``."""
    if seen is None:
        return row
    created = min((t for t in (seen[0], row[0]) if t is not None), default=None)
    started = min((t for t in (seen[1], row[1]) if t is not None), default=None)
    ended = max((t for t in (seen[2], row[2]) if t is not None), default=None)
    return created, started, ended
