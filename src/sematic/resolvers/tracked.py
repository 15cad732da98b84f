"""The machinery every recording resolver shares: LocalResolver, CloudResolver and the
driver in the cluster each compose a ``TrackedResolution`` with a ``Placement`` (where
``inline=False`` functions run) instead of overriding one another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sematic.core.engine import State
from sematic.core.errors import (
    ArtifactCorruptedError,
    ArtifactMissingError,
    ConfigurationError,
    PipelineCanceledError,
)
from sematic.core.future import Future
from sematic.core.images import ImageMap
from sematic.core.loading import load_function
from sematic.core.ports import MetadataStore, RunObserver, Workers
from sematic.core.records import RunRecord
from sematic.core.resolution import run_pipeline
from sematic.resolvers.liveness import resolving
from sematic.resolvers.progress import ProgressDisplay, wants_progress
from sematic.resolvers.recording import RunRecorder
from sematic.resolvers.reuse import Reuse
from sematic.resolvers.scheduler import Scheduler
from sematic.resolvers.settings import LocalSettings
from sematic.resolvers.stores import open_stores

CacheNamespace = str | Callable[[Future], str] | None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a pipeline's ``inline=False`` functions run: ``workers`` (None: worker
    processes on this machine), and the ``images`` its runs are recorded with (None: they
    run on no image)."""

    workers: Workers | None = None
    images: ImageMap | None = None


def parallelism(resolver: str, value: object, *, default: int) -> int:
    """``value`` (None: ``default``) as a resolver's ``max_parallelism``, or a clear error."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{resolver}(max_parallelism=...) takes an int >= 1, got {value!r}"
        )
    return value


# Decides the placement of a pipeline once its root future is known (and may refuse it).
Place = Callable[[Future], Placement]


@dataclass(frozen=True, slots=True)
class TrackedResolution:
    """Resolves pipelines while recording every run and artifact in ``settings``' stores.

    ``script``: where the script that defined ``__main__`` functions is, for rebuilding a
    recorded pipeline (None: this process's own script).
    """

    settings: LocalSettings
    max_parallelism: int
    cache_namespace: CacheNamespace = None
    progress: bool | None = None
    script: str | None = None

    def resolve(
        self,
        future: Future,
        place: Place,
        reuse: Reuse | None = None,
        *,
        earlier: Sequence[RunRecord] = (),
    ) -> Any:
        """Resolve ``future``, recording everything; return its value."""
        if not isinstance(future, Future):
            raise ConfigurationError(
                f"resolve() takes the Future returned by calling a @sematic.func, got {future!r}"
            )
        placement = place(future)
        metadata, artifacts = open_stores(self.settings)
        recorder = RunRecorder(metadata, artifacts, images=placement.images, earlier=earlier)
        namespace = self.cache_namespace
        executor = Scheduler(
            recorder,
            self.settings,
            max_parallelism=self.max_parallelism,
            cache_namespace=namespace(future) if callable(namespace) else namespace,
            reuse=reuse or Reuse(),
            workers=placement.workers,
        )
        observers: list[RunObserver] = [recorder]
        display = None
        if self.progress if self.progress is not None else wants_progress():
            display = ProgressDisplay()
            display.start(future.id, future.props.name)
            observers.append(display)
        outcome = "failed"
        try:
            with resolving(self.settings, future.id):
                value = run_pipeline(future, executor, observers)
            outcome = "resolved"
            return value
        except (PipelineCanceledError, KeyboardInterrupt):
            outcome = "canceled"
            raise
        finally:
            try:
                recorder.close()  # may raise too (the store is unreachable): still close
            finally:
                metadata.close()
                if display is not None:
                    display.stop(outcome)

    def resume(self, root_id: str, place: Place) -> Any:
        """Finish the pipeline whose root run is ``root_id`` (e.g. after its process died).

        Steps recorded as resolved are not run again; their runs and artifacts are reused
        and only read (their rows, times and transitions stay as they are).
        """
        metadata, artifacts = open_stores(self.settings)
        try:
            root = metadata.get_run(root_id)
            earlier = metadata.runs_of_root(root_id)
            recorder = RunRecorder(metadata, artifacts)
            future = rebuild(root, metadata, recorder, self.script)
            if root.state == State.RESOLVED and root.output:
                output = metadata.get_artifact(root.output)
                hint = future.function.output_type
                return recorder.load(root.output, output.type_description, hint)
        finally:
            metadata.close()
        future.id = root_id  # children derive their ids from it: the same runs again
        return self.resolve(future, place, Reuse.resume(earlier), earlier=earlier)

    def rerun(self, root_id: str, rerun_of: str, start: str | None, place: Place) -> Any:
        """Resolve the recorded root run ``root_id``, a rerun of the pipeline ``rerun_of``
        (a driver started by the server): ``start`` and what it influenced execute again,
        every other output ``rerun_of`` recorded is reused (``start`` None: none is)."""
        reuse = Reuse() if start is None else self.reuse_after(start, rerun_of)
        future = rebuild_pipeline(root_id, self.settings, self.script)
        future.id = root_id  # the recorded root run, CREATED by the server
        return self.resolve(future, place, reuse)

    def reuse_after(self, start: str, root_id: str | None = None) -> Reuse:
        """What a rerun from the run ``start`` reuses of its pipeline (``root_id``: that
        pipeline's root run, when known)."""
        metadata, _ = open_stores(self.settings)
        try:
            if root_id is None:
                root_id = metadata.get_run(start).root_id
            runs, edges = metadata.runs_of_root(root_id), metadata.edges_of_root(root_id)
            return Reuse.rerun_from(start, runs, edges)
        finally:
            metadata.close()


def rebuild_pipeline(run_id: str, settings: LocalSettings, script: str | None = None) -> Future:
    """A new future of the pipeline ``run_id`` belongs to, called with its recorded inputs."""
    metadata, artifacts = open_stores(settings)
    try:
        root = metadata.get_run(metadata.get_run(run_id).root_id)
        return rebuild(root, metadata, RunRecorder(metadata, artifacts), script)
    finally:
        metadata.close()


def rebuild(
    root: RunRecord, metadata: MetadataStore, recorder: RunRecorder, script: str | None = None
) -> Future:
    """The future of the recorded root run ``root``, called with its recorded inputs."""
    function = load_function(root.function_path, script)
    hints = function.input_types
    kwargs = {}
    for name, artifact_id in root.inputs.items():
        description = metadata.get_artifact(artifact_id).type_description
        try:
            kwargs[name] = recorder.load(artifact_id, description, hints[name])
        except (ArtifactMissingError, ArtifactCorruptedError) as error:
            # No step computed it: nothing can recompute it, unlike a damaged output.
            raise type(error)(
                f"cannot run {root.name} (run {root.id}) again: its input {name!r} is "
                f"artifact {artifact_id}, whose only copy cannot be read back ({error}). "
                f"Call {root.name}() again with that input's value instead: storing the "
                "value again also repairs the artifact."
            ) from error
    return function(**kwargs)
