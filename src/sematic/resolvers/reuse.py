"""Which recorded outputs a resolution may reuse instead of executing: resume and rerun."""

from __future__ import annotations

from collections.abc import Iterable

from sematic.core.engine import Run, State
from sematic.core.jobs import InputRef
from sematic.core.records import EdgeRecord, RunRecord


def is_final(run: RunRecord) -> bool:
    """Whether a resume reuses ``run`` as recorded: resolved, with its output. Its rows are
    then only read, never written again."""
    return run.state == State.RESOLVED and bool(run.output)


def _key(function_path: str, inputs: Iterable[tuple[str, str]]) -> str:
    return function_path + "|" + ",".join(f"{n}={a}" for n, a in sorted(inputs))


class Reuse:
    """Finds a recorded output for a run about to execute, or None; and, in a rerun, which
    runs must execute whatever is recorded or cached (``must_execute``)."""

    def __init__(
        self,
        by_id: dict[str, RunRecord] | None = None,
        by_key: dict[str, str] | None = None,
        *,
        fresh: dict[str, bool] | None = None,
    ) -> None:
        self._by_id = by_id or {}
        self._by_key = by_key or {}
        # Keys of the runs a rerun re-executes -> whether what they nest re-executes too.
        self._fresh = fresh or {}
        self._fresh_runs: dict[str, bool] = {}  # the same, by run id of this resolution

    @classmethod
    def resume(cls, runs: Iterable[RunRecord]) -> Reuse:
        """Resuming a root: runs are re-created with the same ids; resolved ones are kept."""
        return cls(by_id={run.id: run for run in runs if is_final(run)})

    @classmethod
    def rerun_from(
        cls, start: str, runs: Iterable[RunRecord], edges: Iterable[EdgeRecord]
    ) -> Reuse:
        """Re-executing from ``start``: every output it cannot have influenced is reused.

        Not reused: ``start``, the runs nested in it, everything downstream of it through
        edges, and the ancestors of all of those (their outputs contain theirs).
        """
        records = {run.id: run for run in runs}
        children: dict[str, list[str]] = {}
        for run in records.values():
            if run.parent_id:
                children.setdefault(run.parent_id, []).append(run.id)
        consumers: dict[str, list[str]] = {}
        for edge in edges:
            if edge.source_run_id and edge.destination_run_id:
                consumers.setdefault(edge.source_run_id, []).append(edge.destination_run_id)
        # A run re-executes whole (with what it nests) when it or its inputs may change;
        # an ancestor only because its output may change: its other children are kept.
        invalid: set[str] = set()
        whole: set[str] = set()
        todo = [(start, True)]
        while todo:
            run_id, with_children = todo.pop()
            if (
                run_id not in records
                or run_id in whole
                or (run_id in invalid and not with_children)
            ):
                continue
            invalid.add(run_id)
            if with_children:
                whole.add(run_id)
                todo.extend((child, True) for child in children.get(run_id, ()))
            todo.extend((consumer, True) for consumer in consumers.get(run_id, ()))
            parent = records[run_id].parent_id
            if parent:
                todo.append((parent, False))
        by_key = {
            _key(run.function_path, run.inputs.items()): run.output
            for run in records.values()
            if run.id not in invalid and run.state == State.RESOLVED and run.output
        }
        fresh: dict[str, bool] = {}
        for run_id in invalid:
            key = _key(records[run_id].function_path, records[run_id].inputs.items())
            fresh[key] = fresh.get(key, False) or run_id in whole
        return cls(by_key=by_key, fresh=fresh)

    def resumed_output(self, run_id: str) -> str | None:
        """The output ``run_id`` resolved with before a resume, if it did."""
        earlier = self._by_id.get(run_id)
        return None if earlier is None else earlier.output

    def must_execute(self, run: Run, refs: dict[str, InputRef]) -> bool:
        """Whether ``run`` executes even if an output is recorded or cached (``cache=True``).

        In a rerun: the start run, what it nests, what consumes their outputs, and the
        ancestors of those, found by function and inputs, and, as the graph grows, every
        run nested in or fed by one of them (its inputs may differ from the recorded ones).
        """
        if not self._fresh:
            return False
        whole = self._fresh_runs.get(run.id)
        if whole is None:
            inputs = ((name, ref.artifact_id) for name, ref in refs.items())
            whole = self._fresh.get(_key(run.future.function.dotted_path, inputs))
            fed = any(dep.id in self._fresh_runs for dep in run.future.dependencies)
            if fed or (run.parent_id is not None and self._fresh_runs.get(run.parent_id)):
                whole = True
            if whole is None:
                return False
            self._fresh_runs[run.id] = whole
        return True

    def output_for(self, run: Run, refs: dict[str, InputRef]) -> str | None:
        """The artifact id of a recorded output ``run`` may take, if any."""
        earlier = self._by_id.get(run.id)
        if earlier is not None:
            return earlier.output
        if self._by_key and not self.must_execute(run, refs):
            inputs = ((name, ref.artifact_id) for name, ref in refs.items())
            return self._by_key.get(_key(run.future.function.dotted_path, inputs))
        return None
