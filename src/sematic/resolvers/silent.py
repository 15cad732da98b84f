"""SilentResolver: everything in this process, nothing written anywhere."""

from __future__ import annotations

from typing import Any

from sematic.core.future import Future
from sematic.core.resolution import run_pipeline
from sematic.executors.inprocess import InProcessExecutor


class SilentResolver:
    """Run a pipeline in this process without tracking it: for tests and debugging.

    >>> pipeline(...).resolve(SilentResolver())   # doctest: +SKIP
    """

    def resolve(self, future: Future) -> Any:
        """Resolve ``future`` and return its value."""
        return run_pipeline(future, InProcessExecutor())

    def run(self, future: Future) -> Any:
        """Sematic 0.41's spelling of ``resolve``."""
        return self.resolve(future)

    def __repr__(self) -> str:
        return "SilentResolver()"


class SilentRunner:
    """Sematic's later spelling: ``SilentRunner().run(future)``."""

    def run(self, future: Future) -> Any:
        return SilentResolver().resolve(future)

    def resolve(self, future: Future) -> Any:
        return SilentResolver().resolve(future)
