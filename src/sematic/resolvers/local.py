"""LocalResolver: runs on this machine, every run and artifact tracked."""

from __future__ import annotations

import os
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.resolvers import tracked
from sematic.resolvers.settings import LocalSettings, built_images
from sematic.resolvers.tracked import CacheNamespace, Placement, TrackedResolution, parallelism


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
        self.max_parallelism = parallelism(
            "LocalResolver", max_parallelism, default=os.cpu_count() or 1
        )
        self.cache_namespace = cache_namespace
        self.progress = progress
        self.settings = settings

    def resolve(self, future: Future) -> Any:
        """Resolve ``future``, recording everything; return its value."""
        tracked = self._tracked()
        reuse = None if self.rerun_from is None else tracked.reuse_after(self.rerun_from)
        return tracked.resolve(future, here, reuse)

    def resume(self, root_id: str) -> Any:
        """Finish the pipeline whose root run is ``root_id`` (e.g. after its process died).

        Steps recorded as resolved are not run again; their runs and artifacts are reused
        and only read (their rows, times and transitions stay as they are).
        """
        return self._tracked().resume(root_id, here)

    def _tracked(self) -> TrackedResolution:
        return TrackedResolution(
            self.settings or LocalSettings.from_environment(),
            self.max_parallelism,
            self.cache_namespace,
            self.progress,
        )

    def run(self, future: Future) -> Any:
        """Sematic 0.41's spelling of ``resolve``."""
        return self.resolve(future)

    def __repr__(self) -> str:
        return f"LocalResolver(max_parallelism={self.max_parallelism})"


def here(future: Future) -> Placement:
    """Worker processes on this machine; an image map from ``sematic run --build`` is
    only checked (a function whose base image tag it lacks is refused before any run)."""
    images = built_images()
    if images is not None:
        images.check_pipeline(future)
    return Placement()


def rebuild_pipeline(run_id: str, settings: LocalSettings | None = None) -> Future:
    """A new future of the pipeline ``run_id`` belongs to, called with its recorded inputs."""
    return tracked.rebuild_pipeline(run_id, settings or LocalSettings.from_environment())
