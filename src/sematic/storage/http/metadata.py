"""``MetadataStore`` over the HTTP API of a Sematic server (for teams, and for pods)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from sematic.core import cursor, wire
from sematic.core.errors import PipelineFinishedError, RunNotFoundError, StoreError
from sematic.core.records import (
    ArtifactRecord,
    CancelRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
)
from sematic.storage.http._connection import ErrorFactory, HttpConnection

if TYPE_CHECKING:
    from sematic.core.ports import MetadataStore

PAGE = 500  # the most runs the server lists per request
SERVER_COUNT_CAP = 10_000  # a server counts this many matching runs unless asked for all
LOOKUP_CHUNK = 5_000  # artifact ids per lookup request

_JSON = {"Content-Type": "application/json"}


def _segment(value: str) -> str:
    """``value`` as one path segment (ids are hex; anything else is escaped, '/' too)."""
    return quote(value, safe="")


class _Filters(NamedTuple):
    status: str | None
    name: str | None
    tag: str | None
    root_only: bool
    submitted_by: str | None
    root_id: str | None
    in_pods: bool


class HttpMetadataStore:
    """Runs, transitions, artifact descriptions and edges kept by a Sematic server.

    ``write`` is one request (``POST /api/v1/write``), applied by the server in one
    transaction. Reads use the read API where it fits. With an API key every request
    carries ``Authorization: Bearer KEY``. Safe to share between threads.
    """

    def __init__(
        self, url: str, api_key: str | None = None, *, connection: HttpConnection | None = None
    ) -> None:
        self._http = connection or HttpConnection(url, api_key)
        self.url = self._http.url

    def __repr__(self) -> str:
        return f"HttpMetadataStore({self.url!r})"

    def __enter__(self) -> HttpMetadataStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def write(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        transitions: Sequence[TransitionRecord] = (),
        artifacts: Sequence[ArtifactRecord] = (),
        edges: Sequence[EdgeRecord] = (),
        reopened: Sequence[str] = (),
    ) -> None:
        """Everything in one request; durable on the server when it returns."""
        if not (runs or transitions or artifacts or edges):
            return
        self._http.request(
            "POST",
            "/write",
            doing="write runs to the metadata store",
            idempotent=True,  # runs upserted, the rest recorded once: safe to send again
            content=wire.batch(runs, transitions, artifacts, edges, reopened),
            headers=_JSON,
            errors={404: self._no_write_api},
        )

    def get_run(self, run_id: str) -> RunRecord:
        return wire.run_record(self._run_detail(run_id))

    def runs_of_root(self, root_id: str) -> list[RunRecord]:
        """The runs of the pipeline whose root run is ``root_id``, oldest first."""
        graph = self._graph(root_id)
        return [] if graph is None else [wire.run_record(run) for run in graph["runs"]]

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
        """Pages of at most ``PAGE`` runs, each following the last by its cursor (a server
        takes an ``offset`` up to 10,000)."""
        found: list[RunRecord] = []
        filters = _Filters(status, name, tag, root_only, submitted_by, root_id, in_pods)
        position, skip = after, offset
        while len(found) < limit:
            page = min(PAGE, limit - len(found))
            data = self._runs_page(filters, page, skip, position)
            if "next_cursor" not in data and (root_id is not None or in_pods):
                raise StoreError(
                    f"The server at {self.url} is of an older version: it cannot list the "
                    "runs of one pipeline; upgrade it."
                )
            batch = [wire.run_record(run) for run in data["runs"]]
            found.extend(batch)
            if len(batch) < page or ("next_cursor" in data and data["next_cursor"] is None):
                break
            if "next_cursor" in data:
                position, skip = (batch[-1].created_at, batch[-1].id), 0
            else:  # a server of an older version: offsets only
                skip += len(batch)
        return found

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
        """The server's count; exact (a scan of every match) unless ``cap`` is within what
        the server counts anyway."""
        filters = _Filters(status, name, tag, root_only, submitted_by, root_id, in_pods)
        capped = cap is not None and cap <= SERVER_COUNT_CAP
        data = self._runs_page(filters, 1, 0, None, exact_total=not capped)
        total = int(data["total"])
        return total if cap is None else min(total, cap)

    def transitions_of(self, run_id: str) -> list[TransitionRecord]:
        try:
            detail = self._run_detail(run_id)
        except RunNotFoundError:
            return []
        return wire.detail_transitions(run_id, detail)

    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        def missing(_detail: str) -> StoreError:
            return StoreError(f"No artifact with id {artifact_id!r} in the metadata store {self}.")

        response = self._http.request(
            "GET",
            f"/artifacts/{_segment(artifact_id)}",
            doing=f"read artifact {artifact_id}",
            idempotent=True,
            errors={400: missing, 404: missing},
        )
        return wire.artifact_record(response.json())

    def get_artifacts(self, ids: Sequence[str]) -> list[ArtifactRecord]:
        """The artifacts among ``ids`` that are recorded, ordered by id (unknown ids skipped)."""
        wanted = sorted(set(ids))
        found: list[ArtifactRecord] = []
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            response = self._http.request(
                "POST",
                "/artifacts/lookup",
                doing="read artifacts",
                idempotent=True,
                json={"ids": wanted[start : start + LOOKUP_CHUNK]},
            )
            found.extend(wire.artifact_record(a) for a in response.json()["artifacts"])
        found.sort(key=lambda artifact: artifact.id)
        return found

    def edges_of_root(self, root_id: str) -> list[EdgeRecord]:
        graph = self._graph(root_id)
        return [] if graph is None else [wire.edge_record(edge) for edge in graph["edges"]]

    def find_cached_output(self, cache_key: str) -> str | None:
        response = self._http.request(
            "GET",
            f"/cached-outputs/{_segment(cache_key)}",
            doing="look up a cached output",
            idempotent=True,
        )
        found: str | None = response.json()["artifact_id"]
        return found

    def changed_runs(
        self,
        *,
        since: float,
        root_id: str | None = None,
        limit: int = 1000,
        after_id: str | None = None,
    ) -> list[RunRecord]:
        params: dict[str, Any] = {"since": repr(since), "limit": limit}
        if root_id is not None:
            params["root_id"] = root_id
        if after_id is not None:
            params["after_id"] = after_id
        response = self._http.request(
            "GET", "/changed-runs", doing="read changed runs", idempotent=True, params=params
        )
        return [wire.run_record(run) for run in response.json()["runs"]]

    def request_cancel(self, root_id: str, reason: str) -> None:
        self._http.request(
            "POST",
            f"/runs/{_segment(root_id)}/cancel",
            doing=f"ask to cancel pipeline {root_id}",
            idempotent=True,  # asking twice replaces the first ask
            json={"reason": reason},
            errors={404: self._run_missing(root_id), 409: PipelineFinishedError},
        )

    def cancel_request(self, root_id: str) -> CancelRecord | None:
        response = self._http.request(
            "GET",
            f"/runs/{_segment(root_id)}/cancel",
            doing=f"read the cancel request of pipeline {root_id}",
            idempotent=True,
        )
        found = response.json()["cancel"]
        if found is None:
            return None
        return wire.cancel_record(found)

    # Internals --------------------------------------------------------------------------

    def _run_detail(self, run_id: str) -> dict[str, Any]:
        response = self._http.request(
            "GET",
            f"/runs/{_segment(run_id)}",
            doing=f"read run {run_id}",
            idempotent=True,
            errors={404: self._run_missing(run_id)},
        )
        data: dict[str, Any] = response.json()
        return data

    def _graph(self, root_id: str) -> dict[str, Any] | None:
        """The graph of the pipeline whose root run is ``root_id``; None if there is none."""
        try:
            response = self._http.request(
                "GET",
                f"/runs/{_segment(root_id)}/graph",
                doing=f"read pipeline {root_id}",
                idempotent=True,
                errors={404: self._run_missing(root_id)},
            )
        except RunNotFoundError:
            return None
        graph: dict[str, Any] = response.json()
        # The graph is that of the run's pipeline: ``root_id`` must be the root itself.
        return graph if graph["root_id"] == root_id else None

    def _runs_page(
        self,
        filters: _Filters,
        limit: int,
        offset: int,
        after: tuple[float, str] | None,
        *,
        exact_total: bool = False,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if offset:
            params["offset"] = offset
        if after is not None:
            params["cursor"] = cursor.encode(after)
        if exact_total:
            params["exact_total"] = "true"
        if filters.root_id:
            params["root_id"] = filters.root_id
        if filters.in_pods:
            params["in_pods"] = "true"
        params.update(
            {
                k: v
                for k, v in (
                    ("status", filters.status),
                    ("name", filters.name),
                    ("tag", filters.tag),
                    ("submitted_by", filters.submitted_by),
                )
                if v
            }
        )
        if filters.root_only:
            params["root_only"] = "true"
        response = self._http.request(
            "GET", "/runs", doing="list runs", idempotent=True, params=params
        )
        data: dict[str, Any] = response.json()
        return data

    def _run_missing(self, run_id: str) -> ErrorFactory:
        def missing(_detail: str) -> RunNotFoundError:
            return RunNotFoundError(f"No run with id {run_id!r} in the metadata store {self}.")

        return missing

    def _no_write_api(self, _detail: str) -> StoreError:
        return StoreError(
            f"The server at {self.url} does not accept writes (no /api/v1/write): is it a "
            "Sematic server of this version?"
        )


if TYPE_CHECKING:

    def _implements_the_port(store: HttpMetadataStore) -> MetadataStore:
        return store
