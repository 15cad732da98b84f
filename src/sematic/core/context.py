"""What a running function can learn about its run, and the futures it creates."""

from __future__ import annotations

import hashlib
import os
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sematic.core.errors import NotInRunError

if TYPE_CHECKING:
    from sematic.core.future import Future


@dataclass(frozen=True)
class RunContext:
    """The run a function is executing as: ``sematic.context().run_id``."""

    run_id: str
    root_id: str


_current_run: ContextVar[RunContext | None] = ContextVar("sematic_run", default=None)
# Futures created while a function body runs; None outside a function body.
_created_futures: ContextVar[list[Future] | None] = ContextVar("sematic_created", default=None)


def context() -> RunContext:
    """The context of the running Sematic function.

    Works from any thread that runs a function (it is a ContextVar, not a global).
    """
    current = _current_run.get()
    if current is None:
        raise NotInRunError(
            "sematic.context() was called outside a running Sematic function; call it from "
            "the body of a function decorated with @sematic.func while a resolver runs it"
        )
    return current


def future_id() -> str:
    """The id of a future being created.

    Inside a running function it is derived from the run's id and the creation order, so
    executing the same run again (on resume, or in a worker) names its futures the same way.
    Elsewhere it is random.
    """
    created = _created_futures.get()
    current = _current_run.get()
    if created is None or current is None:
        return os.urandom(16).hex()
    seed = f"{current.run_id}/{len(created)}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def note_created(future: Future) -> None:
    """Record ``future`` as created by the function body running now, if any."""
    created = _created_futures.get()
    if created is not None:
        created.append(future)
