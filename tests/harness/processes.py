"""Starting the servers the harnesses run, or failing the test clearly; stopping them by
their PID, never by name."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TypeVar

import pytest

T = TypeVar("T")


@contextmanager
def required(server: AbstractContextManager[T], unavailable: type[Exception]) -> Iterator[T]:
    """Enters ``server``; when it raises ``unavailable`` (cannot run on this machine), the
    test fails with that message alone: it says what to install, a traceback would not."""
    with ExitStack() as stack:
        try:
            value = stack.enter_context(server)
        except unavailable as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        yield value


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``process``, then SIGKILL if it lingers past 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
