"""The ``Resolver`` protocol, and the resolver ``future.resolve()`` uses when given none."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sematic.core.errors import ConfigurationError

if TYPE_CHECKING:
    from sematic.core.future import Future


class Resolver(Protocol):
    """Anything that can resolve a future: ``SilentResolver()``, ``LocalResolver()``..."""

    def resolve(self, future: Future) -> Any: ...


_default_factory: list[Callable[[], Resolver]] = []


def set_default_resolver(factory: Callable[[], Resolver]) -> None:
    """Wire the resolver ``future.resolve()`` uses when given none (done by ``sematic``)."""
    _default_factory[:] = [factory]


def default_resolver() -> Resolver:
    if not _default_factory:
        raise ConfigurationError(
            "no default resolver is configured; pass one, e.g. future.resolve(SilentResolver())"
        )
    return _default_factory[0]()
