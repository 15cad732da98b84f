"""The records of a pipeline with a fan-out and a nested pipeline, written straight to a
metadata store (graph tests need exact states and times, some failed, some running).

    main (root)
    ├── inc x ``fan`` (``failed`` FAILED, ``running`` SCHEDULED, the rest RESOLVED)
    │     each takes ``x`` from outside and gives its output to total's ``xs``
    ├── total (RESOLVED)
    └── sub (RESOLVED)
          ├── leaf x 5
          └── one
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sematic.core.engine import State
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord

START = 1_700_000_000.0


@dataclass
class NestedPipeline:
    prefix: int
    fan: int = 30
    failed: int = 3
    running: int = 2
    runs: list[RunRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    edges: list[EdgeRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._count = 0
        self.root = self._run(None, "main", State.RESOLVED, inputs={"n": self._artifact(-1)})
        self.edges.append(EdgeRecord(None, self.root.id, "n", self.root.inputs["n"]))
        self.incs: list[RunRecord] = []
        for i in range(self.fan):
            state = (
                State.FAILED
                if i >= self.fan - self.failed
                else State.SCHEDULED
                if i >= self.fan - self.failed - self.running
                else State.RESOLVED
            )
            run = self._run(self.root.id, "inc", state, duration=0.1 * (i + 1))
            self.incs.append(run)
        outputs = [run.output for run in self.incs if run.output is not None]
        self.total = self._run(self.root.id, "total", State.RESOLVED)
        for run in self.incs:
            if run.output is not None:
                self.edges.append(EdgeRecord(run.id, self.total.id, "xs", run.output))
        assert outputs
        self.sub = self._run(self.root.id, "sub", State.RESOLVED)
        self.leaves = [self._run(self.sub.id, "leaf", State.RESOLVED) for _ in range(5)]
        self.one = self._run(self.sub.id, "one", State.RESOLVED)

    def _id(self) -> str:
        self._count += 1
        return f"{self.prefix:08x}{self._count:024x}"

    def _artifact(self, value: int) -> str:
        artifact_id = f"{self.prefix:08x}{len(self.artifacts):056x}"
        self.artifacts.append(
            ArtifactRecord(
                id=artifact_id,
                type_description={"type_key": "builtins.int", "kind": "json"},
                summary=value,
                size=2,
                created_at=START,
            )
        )
        return artifact_id

    def _run(
        self,
        parent: str | None,
        name: str,
        state: State,
        *,
        duration: float = 1.0,
        inputs: dict[str, str] | None = None,
    ) -> RunRecord:
        run_id = self._id()
        created = START + self._count
        finished = state in (State.RESOLVED, State.FAILED)
        run = RunRecord(
            id=run_id,
            root_id=run_id if parent is None else self.root.id,
            parent_id=parent,
            name=name,
            function_path=f"pipe.{name}",
            state=state,
            created_at=created,
            updated_at=created + duration,
            inputs=inputs if inputs is not None else {"x": self._artifact(self._count)},
            output=self._artifact(self._count) if state == State.RESOLVED else None,
            exception_type="ValueError" if state == State.FAILED else None,
            exception_message=f"boom in {run_id}" if state == State.FAILED else None,
            started_at=created,
            ended_at=created + duration if finished else None,
        )
        self.runs.append(run)
        return run
