"""LocalResolver: runs on this machine, every run and artifact tracked."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


class LocalResolver:
    """The default resolver: this machine, tracked in the database and artifact store.

    - ``max_parallelism``: worker processes at once for ``inline=False`` functions
      (default: the number of cores).
    - ``cache_namespace``: scopes ``cache=True`` reuse (a str, or a callable given the
      root future).
    - ``rerun_from``: a run id of an earlier resolution; that run and everything it
      influenced execute again (``cache=True`` or not), every other recorded output is
      reused.
    - ``progress``: a live display on the terminal (default: when stderr is a terminal).
    - ``settings``: where runs are kept (default: from the environment; see LocalSettings).
    """

    def __init__(
        self,
        *,
        max_parallelism: int | None = None,
        cache_namespace: CacheNamespace = None,
        rerun_from: str | None = None,
        progress: bool | None = None,
        settings: LocalSettings | None = None,
    ) -> None:
        if max_parallelism is not None and (
            isinstance(max_parallelism, bool)
            or not isinstance(max_parallelism, int)
            or max_parallelism < 1
        ):
            raise ConfigurationError(
                f"LocalResolver(max_parallelism=...) takes an int >= 1, got {max_parallelism!r}"
            )
        if cache_namespace is not None and not (
            isinstance(cache_namespace, str) or callable(cache_namespace)
        ):
            raise ConfigurationError(
                "LocalResolver(cache_namespace=...) takes a str or a callable returning one, "
                f"got {cache_namespace!r}"
            )
        if rerun_from is not None and not isinstance(rerun_from, str):
            raise ConfigurationError(
                f"LocalResolver(rerun_from=...) takes a run id (str), got {rerun_from!r}"
            )
        self.rerun_from = rerun_from
        self.max_parallelism = max_parallelism or os.cpu_count() or 1
        self.cache_namespace = cache_namespace
        self.progress = progress
        self.settings = settings

    def resolve(self, future: Future) -> Any:
        """Resolve ``future``, recording everything; return its value."""
        if self.rerun_from is None:
            return self._resolve(future, Reuse())
        settings = self.settings or LocalSettings.from_environment()
        metadata, _ = open_stores(settings)
        try:
            start = metadata.get_run(self.rerun_from)
            reuse = Reuse.rerun_from(
                start.id,
                metadata.runs_of_root(start.root_id),
                metadata.edges_of_root(start.root_id),
            )
        finally:
            metadata.close()
        return self._resolve(future, reuse)

    def resume(self, root_id: str) -> Any:
        """Finish the pipeline whose root run is ``root_id`` (e.g. after its process died).

        Steps recorded as resolved are not run again; their runs and artifacts are reused
        and only read (their rows, times and transitions stay as they are).
        """
        settings = self.settings or LocalSettings.from_environment()
        metadata, artifacts = open_stores(settings)
        try:
            root = metadata.get_run(root_id)
            earlier = metadata.runs_of_root(root_id)
            reuse = Reuse.resume(earlier)
            recorder = RunRecorder(metadata, artifacts)
            future = _rebuild(root, metadata, recorder, self._main_path())
            if root.state == State.RESOLVED and root.output:
                output = metadata.get_artifact(root.output)
                hint = future.function.output_type
                return recorder.load(root.output, output.type_description, hint)
        finally:
            metadata.close()
        future.id = root_id  # children derive their ids from it: the same runs again
        return self._resolve(future, reuse, earlier=earlier)

    def _resolve(self, future: Future, reuse: Reuse, *, earlier: Sequence[RunRecord] = ()) -> Any:
        if not isinstance(future, Future):
            raise ConfigurationError(
                f"resolve() takes the Future returned by calling a @sematic.func, got {future!r}"
            )
        settings = self.settings or LocalSettings.from_environment()
        workers, images_used = self._placement(future, settings)
        metadata, artifacts = open_stores(settings)
        recorder = RunRecorder(metadata, artifacts, images=images_used, earlier=earlier)
        namespace = self.cache_namespace
        executor = Scheduler(
            recorder,
            settings,
            max_parallelism=self.max_parallelism,
            cache_namespace=namespace(future) if callable(namespace) else namespace,
            reuse=reuse,
            workers=workers,
        )
        observers: list[RunObserver] = [recorder]
        display = None
        if self.progress if self.progress is not None else wants_progress():
            display = ProgressDisplay()
            display.start(future.id, future.props.name)
            observers.append(display)
        outcome = "failed"
        try:
            with resolving(settings, future.id):
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

    def _placement(
        self, future: Future, settings: LocalSettings
    ) -> tuple[Workers | None, ImageMap | None]:
        """Where ``inline=False`` functions run (None: worker processes here), and the
        images runs execute in (None: none, they run on this machine)."""
        images = ImageMap.from_environment()
        if images is not None:  # from `sematic run --build`: refuse missing tags up front
            images.check_pipeline(future)
        return None, None

    def _main_path(self) -> str | None:
        """Where the script that defined ``__main__`` functions is (None: this process's)."""
        return None

    def __repr__(self) -> str:
        return f"LocalResolver(max_parallelism={self.max_parallelism})"


def rebuild_pipeline(run_id: str, settings: LocalSettings | None = None) -> Future:
    """A new future of the pipeline ``run_id`` belongs to, called with its recorded inputs."""
    settings = settings or LocalSettings.from_environment()
    metadata, artifacts = open_stores(settings)
    try:
        root = metadata.get_run(metadata.get_run(run_id).root_id)
        return _rebuild(root, metadata, RunRecorder(metadata, artifacts))
    finally:
        metadata.close()


def _rebuild(
    root: RunRecord, metadata: MetadataStore, recorder: RunRecorder, main_path: str | None = None
) -> Future:
    function = load_function(root.function_path, main_path)
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
