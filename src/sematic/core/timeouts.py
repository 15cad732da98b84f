"""Running a function with a time limit, from any thread (no signals)."""

from __future__ import annotations

import contextvars
import ctypes
import threading
from collections.abc import Callable
from typing import Any

from sematic.core.errors import FunctionTimeoutError


def interrupt_thread(ident: int, error: type[BaseException]) -> None:
    """Ask thread ``ident`` to raise ``error`` at its next Python instruction (best effort:
    a blocking C call finishes first)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(error))


def clear_interrupt(ident: int) -> None:
    """Withdraw an ``interrupt_thread`` that thread ``ident`` has not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


def call_with_timeout(call: Callable[[], Any], seconds: float, name: str) -> Any:
    """Return ``call()``, or raise FunctionTimeoutError after ``seconds``.

    The call runs in a helper thread with the caller's context variables; on timeout the
    caller gets the error at once and the helper thread is interrupted at its next Python
    instruction (a blocking C call finishes first, its result ignored).
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(call)
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"sematic-{name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if thread.ident is not None:
            interrupt_thread(thread.ident, FunctionTimeoutError)
        minutes = seconds / 60
        raise FunctionTimeoutError(
            f"{name}() ran longer than its timeout_mins={minutes:g} and was stopped; "
            "raise timeout_mins or make the function faster"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
