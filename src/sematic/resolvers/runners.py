"""Sematic 0.41's "runner" spellings of the resolvers: ``LocalRunner().run(future)``.

- :class:`Runner`: anything with ``run(future)`` (``SilentRunner``, ``LocalRunner``,
  ``CloudRunner``).
- :class:`LocalRunner`: a :class:`LocalResolver` that also takes 0.41's ``rerun_mode``.
- :class:`CloudRunner`: a :class:`CloudResolver` that takes 0.41's ``resources`` for its
  driver pod.
- :func:`has_container_image`: whether a cloud run has images to run on.
"""

from __future__ import annotations

from enum import Enum, unique
from typing import Any, Protocol, runtime_checkable

from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.core.records import EdgeRecord, RunRecord
from sematic.core.resources import ResourceRequirements
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.local import LocalResolver, here
from sematic.resolvers.reuse import Reuse
from sematic.resolvers.settings import LocalSettings, built_images
from sematic.resolvers.stores import open_stores
from sematic.resolvers.tracked import CacheNamespace


@runtime_checkable
class Runner(Protocol):
    """Anything that runs a pipeline: ``runner.run(future)`` returns its value."""

    def run(self, future: Future) -> Any: ...


@unique
class RerunMode(Enum):
    """What ``LocalRunner(rerun_from=RUN_ID, rerun_mode=...)`` executes again.

    - ``SPECIFIC_RUN`` (the default): the run ``RUN_ID``, what it nests and everything
      downstream of it; every other recorded output of its pipeline is reused.
    - ``CONTINUE``: ``RUN_ID`` is the root run of a pipeline; a new pipeline run reuses
      every output that one resolved and executes only what it did not.
    - ``REENTER``: ``RUN_ID`` is the root run of a pipeline; that same run is finished
      (``LocalResolver.resume``), its resolved steps kept.
    """

    SPECIFIC_RUN = "SPECIFIC_RUN"
    CONTINUE = "CONTINUE"
    REENTER = "REENTER"


def has_container_image() -> bool:
    """Whether container images were built for this program (``sematic run --build``, the
    Bazel rule or ``$SEMATIC_IMAGES``), so that a ``CloudRunner`` can run it."""
    return built_images() is not None


class LocalRunner(LocalResolver):
    """Sematic 0.41's ``LocalRunner``: a :class:`LocalResolver` with ``run(future)``.

    ``cache_namespace``, ``rerun_from`` and ``rerun_mode`` (a :class:`RerunMode`) may be
    given by position, as in 0.41; the other settings of ``LocalResolver`` by keyword.
    """

    def __init__(
        self,
        cache_namespace: CacheNamespace = None,
        rerun_from: str | None = None,
        rerun_mode: RerunMode | None = None,
        *,
        max_parallelism: int | None = None,
        progress: bool | None = None,
        settings: LocalSettings | None = None,
    ) -> None:
        super().__init__(
            max_parallelism=max_parallelism,
            cache_namespace=cache_namespace,
            rerun_from=rerun_from,
            progress=progress,
            settings=settings,
        )
        if rerun_mode is not None and not isinstance(rerun_mode, RerunMode):
            raise ConfigurationError(
                f"LocalRunner(rerun_mode=...) takes a sematic.RerunMode, got {rerun_mode!r}"
            )
        self.rerun_mode = rerun_mode

    def resolve(self, future: Future) -> Any:
        mode = self.rerun_mode or RerunMode.SPECIFIC_RUN
        if self.rerun_from is None or mode is RerunMode.SPECIFIC_RUN:
            return super().resolve(future)
        tracked = self._tracked()
        if not isinstance(future, Future):
            raise ConfigurationError(
                f"run() takes the Future returned by calling a @sematic.func, got {future!r}"
            )
        root, runs, edges = _recorded_pipeline(tracked.settings, self.rerun_from, mode)
        if root.function_path != future.function.dotted_path:
            raise ConfigurationError(
                f"RerunMode.{mode.name}: run {root.id} is a pipeline of {root.function_path}, "
                f"not of {future.function.dotted_path}"
            )
        if mode is RerunMode.REENTER:
            return self.resume(root.id)
        # CONTINUE: no run is invalidated, so every resolved output is reused by function
        # and inputs.
        return tracked.resolve(future, here, Reuse.rerun_from("", runs, edges))

    def __repr__(self) -> str:
        return f"LocalRunner(max_parallelism={self.max_parallelism})"


def _recorded_pipeline(
    settings: LocalSettings, root_id: str, mode: RerunMode
) -> tuple[RunRecord, list[RunRecord], list[EdgeRecord]]:
    """The root run ``root_id`` and its pipeline's runs and edges."""
    metadata, _ = open_stores(settings)
    try:
        root = metadata.get_run(root_id)
        if root.root_id != root.id:
            raise ConfigurationError(
                f"RerunMode.{mode.name} reruns a whole pipeline: rerun_from takes the id of "
                f"its root run ({root.root_id}), not of one of its steps ({root_id})"
            )
        return root, metadata.runs_of_root(root_id), metadata.edges_of_root(root_id)
    finally:
        metadata.close()


class CloudRunner(CloudResolver):
    """Sematic 0.41's ``CloudRunner``: a :class:`CloudResolver` with ``run(future)``.

    ``detach``, ``max_parallelism`` and ``resources`` (a :class:`ResourceRequirements` for
    the driver pod) may be given by position, as in 0.41; the other settings of
    ``CloudResolver`` by keyword. 0.41's ``cache_namespace``, ``rerun_from`` and
    ``rerun_mode`` are refused: rerun a cloud pipeline from the UI or ``sematic rerun``.
    """

    def __init__(
        self,
        detach: bool = True,
        max_parallelism: int | None = None,
        resources: ResourceRequirements | None = None,
        *,
        cache_namespace: CacheNamespace = None,
        rerun_from: str | None = None,
        rerun_mode: RerunMode | None = None,
        **settings: Any,
    ) -> None:
        given = [
            name
            for name, value in (
                ("cache_namespace", cache_namespace),
                ("rerun_from", rerun_from),
                ("rerun_mode", rerun_mode),
            )
            if value is not None
        ]
        if given:
            raise ConfigurationError(
                f"CloudRunner does not take {', '.join(given)} here; run the pipeline with "
                "LocalRunner for those, or rerun a cloud pipeline from the UI"
            )
        if resources is not None:
            if not isinstance(resources, ResourceRequirements):
                raise ConfigurationError(
                    f"CloudRunner(resources=...) takes a ResourceRequirements, got {resources!r}"
                )
            settings.setdefault("driver_requirements", resources.kubernetes)
        super().__init__(detach=detach, max_parallelism=max_parallelism, **settings)

    def __repr__(self) -> str:
        return f"CloudRunner(detach={self.detach}, max_parallelism={self.max_parallelism})"
