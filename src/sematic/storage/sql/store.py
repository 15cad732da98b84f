"""``MetadataStore`` on SQLite or PostgreSQL: bulk Core statements, one transaction a write."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import BindParameter

from sematic.core.engine import TERMINAL, State
from sematic.core.errors import (
    ConfigurationError,
    InfrastructureError,
    RunNotFoundError,
    StoreError,
)
from sematic.core.records import (
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)
from sematic.storage.sql import bulk, connect, convert, migrate
from sematic.storage.sql.bulk import BulkInsert
from sematic.storage.sql.graph import SqlRunGraph
from sematic.storage.sql.keys import SqlApiKeys
from sematic.storage.sql.mailbox import SqlMailbox
from sematic.storage.sql.models import artifacts, cancel_requests, edges, run_transitions, runs
from sematic.storage.sql.payloads import SqlSmallPayloads

# Ids per IN (...) clause: well below the bound-parameter limits of SQLite and PostgreSQL.
_CHUNK = 500


class SqlMetadataStore:
    """Runs, transitions, artifact descriptions and edges in a SQL database.

    ``url`` is ``sqlite:///path/to/db.sqlite`` (directory created if missing) or
    ``postgresql+psycopg://user:password@host:port/dbname``. Opening migrates the schema to
    the newest revision. Safe to share between threads and between processes.
    """

    def __init__(self, url: str) -> None:
        self.url = connect.parse(url)
        self._engine = connect.create(self.url)
        try:
            migrate.upgrade(self._engine)
        except BaseException as exc:
            self._engine.dispose()
            if isinstance(exc, DBAPIError):
                raise ConfigurationError(
                    f"Cannot open the database {self}: {_reason(exc)}. Check that the server "
                    "is running and reachable, the credentials and database name are right, "
                    "or that the SQLite path is writable."
                ) from exc
            raise
        dialect = self._engine.dialect
        self._postgres = dialect.name == "postgresql"
        dialect_insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        upsert = dialect_insert(runs)
        updated: dict[str, Any] = {
            c.name: upsert.excluded[c.name] for c in runs.c if c.name != "id"
        }
        # Who submitted a run is decided when it is first written; later writes (a worker's,
        # a driver's, with another key) keep it.
        updated["submitted_by"] = func.coalesce(runs.c.submitted_by, upsert.excluded.submitted_by)
        upsert = upsert.on_conflict_do_update(index_elements=[runs.c.id], set_=updated)
        self._upsert_runs = BulkInsert(upsert, convert.RUN_FIELDS, dialect)
        self._insert_artifacts = BulkInsert(
            dialect_insert(artifacts).on_conflict_do_nothing(index_elements=[artifacts.c.id]),
            convert.ARTIFACT_FIELDS,
            dialect,
        )
        self._insert_edges = BulkInsert(
            dialect_insert(edges).on_conflict_do_nothing(index_elements=convert.EDGE_FIELDS),
            convert.EDGE_FIELDS,
            dialect,
        )
        self._insert_transitions = BulkInsert(
            dialect_insert(run_transitions).on_conflict_do_nothing(
                index_elements=convert.TRANSITION_FIELDS
            ),
            convert.TRANSITION_FIELDS,
            dialect,
        )
        self._state_selects: dict[int, bulk.PreparedSelect] = {}  # by number of ids
        self._driver_errors = dialect.loaded_dbapi.Error
        self._driver_unavailable = (
            dialect.loaded_dbapi.OperationalError,
            dialect.loaded_dbapi.InterfaceError,
        )

    def __repr__(self) -> str:
        return f"SqlMetadataStore({connect.mask(self.url)!r})"

    def __str__(self) -> str:
        return repr(connect.mask(self.url))

    def __enter__(self) -> SqlMetadataStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    def api_keys(self) -> SqlApiKeys:
        """The API keys kept in this database (a team server's ``ApiKeyStore``)."""
        return SqlApiKeys(self._engine, self._errors)

    def small_payloads(self) -> SqlSmallPayloads:
        """The small payloads kept in this database (``sematic.storage.packed``)."""
        return SqlSmallPayloads(self._engine, self._errors)

    def mailbox(self) -> SqlMailbox:
        """The mailbox kept in this database (the server's ``Mailbox``): make one per
        process and keep it (it purges old messages at most once a minute)."""
        return SqlMailbox(self._engine, self._errors)

    def run_graph(self) -> SqlRunGraph:
        """The reads behind a pipeline's folded graph (the server's ``RunGraph``)."""
        return SqlRunGraph(self._engine, self._errors)

    def write(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        transitions: Sequence[TransitionRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        edges: Sequence[EdgeRecord] = (),
        reopened: Sequence[str] = (),
    ) -> None:
        """Writes everything in one transaction; durable when it returns.

        A run stored in a terminal state keeps it: a later write of that run in another
        state (a dying driver's, after the reaper or a cancel settled the run) is dropped,
        and so are the batch's transitions of runs already terminal, unless the run is in
        ``reopened`` (a resume runs it again). Each transition is
        recorded once (unique run, state and time): a write sent again adds nothing.

        Raises ``InfrastructureError`` when the database cannot be reached (or stays locked
        past the busy timeout) and ``StoreError`` when it refuses the rows (a constraint);
        either way nothing of the batch is written.
        """
        if not (runs or transitions or artifacts or edges):
            return

        def plan(query: bulk.Query) -> list[bulk.Batch]:
            touched = {run.id for run in runs} | {t.run_id for t in transitions}
            settled = self._settled(touched - set(reopened), query)
            # Referenced rows first: transitions need their run, edges their artifact.
            return [
                (self._insert_artifacts, [convert.artifact_params(a) for a in artifacts]),
                (
                    self._upsert_runs,
                    [convert.run_params(r) for r in runs if settled.get(r.id, r.state) == r.state],
                ),
                (
                    self._insert_transitions,
                    [convert.transition_params(t) for t in transitions if t.run_id not in settled],
                ),
                (self._insert_edges, [convert.edge_params(e) for e in edges]),
            ]

        try:
            bulk.execute(self._engine, plan)
        except self._driver_unavailable as exc:
            raise InfrastructureError(
                f"Cannot write to the metadata store {self}: {_reason(exc)}"
            ) from exc
        except self._driver_errors as exc:
            raise StoreError(f"Cannot write to the metadata store {self}: {_reason(exc)}") from exc
        except SQLAlchemyError as exc:  # no connection could be checked out
            raise InfrastructureError(
                f"Cannot write to the metadata store {self}: {_reason(exc)}"
            ) from exc

    def _states_of(self, count: int) -> bulk.PreparedSelect:
        """``SELECT id, state FROM runs WHERE id IN (:id0, ...)``, locking, for ``count`` ids."""
        prepared = self._state_selects.get(count)
        if prepared is None:
            ids: list[BindParameter[str]] = [bindparam(f"id{i}") for i in range(count)]
            statement = (
                select(runs.c.id, runs.c.state)
                .where(runs.c.id.in_(ids))
                .order_by(runs.c.id)
                .with_for_update()
            )
            prepared = bulk.PreparedSelect(statement, self._engine.dialect)
            self._state_selects[count] = prepared
        return prepared

    def _settled(self, run_ids: set[str], query: bulk.Query) -> dict[str, State]:
        """The stored terminal states of ``run_ids``; their rows locked until the write ends.

        All the rows are locked (PostgreSQL; SQLite's write lock is already held), in id
        order, so that two writers of one run take turns and the second sees the first's
        state.
        """
        ids = sorted(run_ids)
        settled: dict[str, State] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            values = {f"id{i}": run_id for i, run_id in enumerate(chunk)}
            for run_id, state in query(self._states_of(len(chunk)), values):
                if State(state) in TERMINAL:
                    settled[run_id] = State(state)
        return settled

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._rows(select(runs).where(runs.c.id == run_id))
        if not rows:
            raise RunNotFoundError(f"No run with id {run_id!r} in the metadata store {self}.")
        return convert.run_record(rows[0])

    def runs_of_root(self, root_id: str) -> list[RunRecord]:
        """The runs of the pipeline whose root run is ``root_id``, oldest first."""
        query = select(runs).where(runs.c.root_id == root_id).order_by(runs.c.created_at, runs.c.id)
        return [convert.run_record(row) for row in self._rows(query)]

    def list_runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        root_only: bool = False,
        submitted_by: str | None = None,
        root_id: str | None = None,
        in_pods: bool = False,
        after: tuple[float, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """One page of the matching runs, most recently created first (ties: greater id first).

        ``status`` (a state), ``name``, ``tag`` (one of the run's tags), ``submitted_by`` and
        ``root_id`` (the pipeline) keep only the runs that match; ``None`` means no
        condition. ``root_only`` keeps only root runs, ``in_pods`` only runs that ran in a
        pod (an ``execution`` recorded). ``after`` is the ``(created_at, id)`` of the last run
        of the previous page (keyset paging: as fast deep in the listing as on its first
        page); ``offset`` skips that many runs more, reading each one it skips. Every filter
        but ``tag`` (a scan of the rows the other filters leave) is served by an index that
        also gives the order.
        """
        conditions = self._run_conditions(
            status=status,
            name=name,
            tag=tag,
            root_only=root_only,
            submitted_by=submitted_by,
            root_id=root_id,
            in_pods=in_pods,
        )
        query = self._listing(conditions, after, limit, offset)
        return [convert.run_record(row) for row in self._rows(query)]

    def count_runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        root_only: bool = False,
        submitted_by: str | None = None,
        root_id: str | None = None,
        in_pods: bool = False,
        cap: int | None = None,
    ) -> int:
        """How many runs ``list_runs`` with the same filters would list without a limit;
        with ``cap``, at most ``cap`` (only that many rows are read: a million matching
        runs cost no more than ``cap``)."""
        conditions = self._run_conditions(
            status=status,
            name=name,
            tag=tag,
            root_only=root_only,
            submitted_by=submitted_by,
            root_id=root_id,
            in_pods=in_pods,
        )
        if cap is None:
            query = select(func.count().label("count")).select_from(runs).where(*conditions)
        else:
            matching = (
                select(literal(1).label("one"))
                .select_from(runs)
                .where(*conditions)
                .limit(max(0, cap))
            )
            query = select(func.count().label("count")).select_from(matching.subquery())
        return int(self._rows(query)[0]["count"])

    @staticmethod
    def _listing(
        conditions: list[ColumnElement[bool]],
        after: tuple[float, str] | None,
        limit: int,
        offset: int = 0,
    ) -> Select[Any]:
        """The matching runs after the position ``after``, newest first, ties by greater id:
        the order of the ``(…, created_at, id)`` indexes, scanned backwards (one direction:
        SQLite cannot scan an index with mixed directions).

        The page's ids are chosen first, from the index alone, then their rows are read:
        PostgreSQL otherwise prefers walking ``(created_at, id)`` and filtering the rows (it
        assumes the matches are spread evenly; a user whose runs are all old makes it read
        every newer run), while an index-only scan of the filter's own index is cheaper by
        its own estimate.
        """
        where = list(conditions)
        if after is not None:
            where.append(tuple_(runs.c.created_at, runs.c.id) < tuple_(*after))
        ids = (
            select(runs.c.id)
            .where(*where)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        page = runs.alias("page")
        return (
            select(page)
            .where(page.c.id.in_(ids))
            .order_by(page.c.created_at.desc(), page.c.id.desc())
        )

    def transitions_of(self, run_id: str) -> list[TransitionRecord]:
        """The states ``run_id`` went through, in the order they were written."""
        query = (
            select(run_transitions)
            .where(run_transitions.c.run_id == run_id)
            .order_by(run_transitions.c.id)
        )
        return [convert.transition_record(row) for row in self._rows(query)]

    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        rows = self._rows(select(artifacts).where(artifacts.c.id == artifact_id))
        if not rows:
            raise StoreError(f"No artifact with id {artifact_id!r} in the metadata store {self}.")
        return convert.artifact_record(rows[0])

    def get_artifacts(self, ids: Sequence[str]) -> list[ArtifactRecord]:
        """The artifacts among ``ids`` that are recorded, ordered by id (unknown ids skipped)."""
        wanted = sorted(set(ids))
        found: list[ArtifactRecord] = []
        with self._errors("read from"), self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(artifacts).where(artifacts.c.id.in_(wanted[start : start + _CHUNK]))
                rows: list[Any] = list(conn.execute(query).mappings())
                found.extend(convert.artifact_record(row) for row in rows)
        found.sort(key=lambda artifact: artifact.id)
        return found

    def edges_of_root(self, root_id: str) -> list[EdgeRecord]:
        """Edges from or into any run of the pipeline ``root_id``, in the order written."""
        ids = select(runs.c.id).where(runs.c.root_id == root_id)
        query = (
            select(edges)
            .where(or_(edges.c.source_run_id.in_(ids), edges.c.destination_run_id.in_(ids)))
            .order_by(edges.c.id)
        )
        return [convert.edge_record(row) for row in self._rows(query)]

    def find_cached_output(self, cache_key: str) -> str | None:
        """The output artifact of the latest RESOLVED run with this cache key, if any."""
        query = (
            select(runs.c.output)
            .where(
                runs.c.cache_key == cache_key,
                runs.c.state == State.RESOLVED.value,
                runs.c.output.is_not(None),
            )
            .order_by(
                func.coalesce(runs.c.ended_at, runs.c.updated_at).desc(),
                runs.c.created_at.desc(),
            )
            .limit(1)
        )
        rows = self._rows(query)
        return None if not rows else str(rows[0]["output"])

    def changed_runs(
        self,
        *,
        since: float,
        root_id: str | None = None,
        limit: int = 1000,
        after_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs updated after ``since``, oldest change first (ties by id): of one pipeline,
        or roots only. With ``after_id``, also those updated at ``since`` exactly whose id
        is above it (the next page after a page ending with that run)."""
        later = runs.c.updated_at > since
        if after_id is not None:
            later = or_(later, and_(runs.c.updated_at == since, runs.c.id > after_id))
        where = [later]
        where.append(runs.c.root_id == root_id if root_id else runs.c.id == runs.c.root_id)
        query = select(runs).where(*where).order_by(runs.c.updated_at, runs.c.id).limit(limit)
        return [convert.run_record(row) for row in self._rows(query)]

    def request_cancel(self, root_id: str, reason: str) -> None:
        """Ask the resolver of the pipeline ``root_id`` to cancel it (replaces an older ask)."""
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(cancel_requests)
        statement = statement.on_conflict_do_update(
            index_elements=[cancel_requests.c.root_id],
            set_={
                "reason": statement.excluded.reason,
                "requested_at": statement.excluded.requested_at,
            },
        )
        row = {"root_id": root_id, "reason": reason, "requested_at": time.time()}
        with self._errors("write to"), self._engine.begin() as conn:
            conn.execute(statement, [row])

    def cancel_request(self, root_id: str) -> CancelRecord | None:
        """The latest request to cancel the pipeline ``root_id``, if any was made."""
        query = select(cancel_requests).where(cancel_requests.c.root_id == root_id)
        rows = self._rows(query)
        if not rows:
            return None
        row = rows[0]
        return CancelRecord(str(row["root_id"]), str(row["reason"]), float(row["requested_at"]))

    def _run_conditions(
        self,
        *,
        status: str | None,
        name: str | None,
        tag: str | None,
        root_only: bool,
        submitted_by: str | None = None,
        root_id: str | None = None,
        in_pods: bool = False,
    ) -> list[ColumnElement[bool]]:
        # The tests are written as the partial indexes of the models state them
        # (``id = root_id``, ``execution IS NOT NULL``): both planners then use those indexes.
        conditions: list[ColumnElement[bool]] = []
        if root_id is not None:
            conditions.append(runs.c.root_id == root_id)
        if in_pods:
            conditions.append(runs.c.execution.is_not(None))
        if submitted_by is not None:
            conditions.append(runs.c.submitted_by == submitted_by)
        if status is not None:
            conditions.append(runs.c.state == status)
        if name is not None:
            conditions.append(runs.c.name == name)
        if root_only:
            conditions.append(runs.c.id == runs.c.root_id)
        if tag is not None:
            conditions.append(self._has_tag(tag))
        return conditions

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self._postgres:
            return cast(runs.c.tags, JSONB).contains([tag])
        elements = func.json_each(runs.c.tags).table_valued("value")
        return exists(select(literal(1)).select_from(elements).where(elements.c.value == tag))

    def _rows(self, query: Executable) -> list[Any]:
        with self._errors("read from"), self._engine.connect() as conn:
            return list(conn.execute(query).mappings())

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise InfrastructureError(
                f"Cannot {doing} the metadata store {self}: {_reason(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot {doing} the metadata store {self}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The driver's message on one line, without SQLAlchemy's statement dump and links."""
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig if orig is not None else exc).split())
