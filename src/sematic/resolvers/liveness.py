"""Whether the local process resolving a pipeline is still alive.

LocalResolver leaves ``$SEMATIC_HOME/resolvers/ROOT_ID.pid`` while it resolves: its PID and
the process's start time (so a recycled PID is not mistaken for it). A killed resolver
leaves the file behind, which is how ``sematic logs --follow`` and ``sematic cancel`` know
that nobody will finish or cancel the pipeline's runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from sematic.core.files import write_private
from sematic.resolvers.settings import LocalSettings


class ResolverProcess(Enum):
    """What became of the local process that resolves a pipeline."""

    ALIVE = "alive"
    GONE = "gone"  # it left its file behind: it was killed
    UNKNOWN = "unknown"  # no file: finished, or resolved elsewhere (another machine)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22: start time in clock ticks


def _path(settings: LocalSettings, root_id: str) -> Path:
    return settings.home / "resolvers" / f"{root_id}.pid"


@contextlib.contextmanager
def resolving(settings: LocalSettings, root_id: str) -> Iterator[None]:
    """Mark the pipeline ``root_id`` as being resolved by this process, until the end."""
    path = _path(settings, root_id)
    pid = os.getpid()
    write_private(path, f"{pid} {_start_time(pid) or '-'}\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def resolver_of(settings: LocalSettings, root_id: str) -> ResolverProcess:
    try:
        pid_text, _, started = _path(settings, root_id).read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return ResolverProcess.UNKNOWN
    now = _start_time(pid)
    if now is None or started not in ("-", now):
        return ResolverProcess.GONE
    return ResolverProcess.ALIVE
