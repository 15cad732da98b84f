"""Stopping a running function from another thread, and running one with a time limit.

CPython can raise an exception in another thread (``PyThreadState_SetAsyncExc``): the thread
raises it at its next Python instruction, or once the blocking C call it is in returns. On
CPython 3.11 sending one also sets a flag for the whole interpreter, cleared only when some
thread takes an exception sent to it; while it is set, a thread with a trace or profile function
(pdb, cProfile, coverage.py, IDE debuggers) spins at its next call. Withdrawing an exception
(``SetAsyncExc(thread, NULL)``) sets the flag too, with nothing left to take: traced threads
then spin forever. That was LocalResolver's hang under debuggers and profilers.

So nothing is ever withdrawn here. An :class:`Interruptible` sends its exception only when
``interrupt`` is really called, at most once, only while its call is running; the thread
running the call takes it (raises and catches it) before ``run`` returns, so no exception is
left waiting for resolver code and none reaches it late. On 3.11 a helper thread also keeps the
flag from staying set while the interrupted thread is blocked in a C call: after a short window
it takes an exception it sends to itself, which clears the flag; the interrupted thread still
takes its own at its next switch of the GIL.
"""

from __future__ import annotations

import contextvars
import ctypes
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sematic.core.errors import FunctionTimeoutError

T = TypeVar("T")

_WAIT_SLICE = 0.1  # seconds a waiting caller stays in one blocking call, so it can be stopped
_FLAG_STALLS_TRACERS = sys.version_info < (3, 12)  # see the module's docstring
_WINDOW = 0.05  # seconds the flag stays set after a send, for a thread running Python to take it
_WAKE_EVERY = 0.25  # seconds: a waking thread asks for the GIL, so a Python loop switches


class _Signal(BaseException):
    """The exception sent to a thread; each Interruptible sends a subclass of its own."""


class _Flush(_Signal):
    """Sent by a thread to itself and taken at once, which clears CPython 3.11's flag."""


class _Abandoned(BaseException):
    """Stops a timed call whose caller was itself stopped while it waited."""


class Interruptible:
    """One call that any thread may stop: ``run(call)`` in the thread running it,
    ``interrupt(error)`` from any thread, which makes ``run`` raise ``error``.

    The call is stopped at its next Python instruction (a blocking C call finishes first). An
    interrupt before ``run`` starts makes ``run`` raise without calling; one after it returned
    does nothing. Use each instance for one call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None  # the thread running the call, while it runs
        self._started = False
        self._finished = False
        self._sent = False
        self._error: BaseException | None = None
        self._done = threading.Event()  # run() returned or raised
        # A class of its own: a nested Interruptible never catches this one's signal.
        self._signal: type[_Signal] = type("Interrupted", (_Signal,), {})

    def run(self, call: Callable[[], T]) -> T:
        """Return ``call()``, or raise the error passed to :meth:`interrupt`."""
        me = threading.get_ident()
        with self._lock:
            if self._started:
                raise RuntimeError("an Interruptible runs one call only")
            self._started = True
            if self._error is not None:
                self._finished = True
                raise self._error
            self._thread = me
        result: list[T] = []
        try:
            try:
                try:
                    result.append(call())
                finally:
                    with self._lock:
                        self._thread = None
                        self._finished = True
                        sent = self._sent
                    if sent:
                        _take(me, self._signal)  # unless it was raised already
            except self._signal:
                pass  # raised by the call or above, and so taken: only one is ever sent
        finally:
            self._done.set()
        if self._error is not None:
            raise self._error
        return result[0]

    def interrupt(self, error: BaseException) -> bool:
        """Make ``run`` raise ``error``, stopping the call if it is running (from any thread).

        Returns False, and does nothing, if the call had already finished or was interrupted.
        """
        with self._lock:
            if self._finished or self._error is not None:
                return False
            self._error = error
            if self._thread is None:
                return True  # run() raises it as it starts
        if _FLAG_STALLS_TRACERS:
            ready = threading.Event()
            threading.Thread(
                target=_clear_flag, args=(ready, self._done), name="sematic-interrupt", daemon=True
            ).start()
            ready.wait()
        with self._lock:
            if self._thread is not None and not self._finished:
                _send(self._thread, self._signal)
                self._sent = True
        return True


def call_with_timeout(call: Callable[[], Any], seconds: float, name: str) -> Any:
    """Return ``call()``, or raise FunctionTimeoutError after ``seconds``.

    The call runs in a helper thread with the caller's context variables; on timeout the
    caller gets the error at once and the helper thread is stopped at its next Python
    instruction (a blocking C call finishes first, its result ignored). A caller stopped while
    it waits (an :class:`Interruptible` around it) stops the helper too.
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()
    scope = Interruptible()

    def target() -> None:
        try:
            outcome["value"] = scope.run(lambda: context.run(call))
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"sematic-{name}", daemon=True)
    deadline = time.monotonic() + seconds
    try:
        thread.start()
        while thread.is_alive() and (left := deadline - time.monotonic()) > 0:
            thread.join(min(left, _WAIT_SLICE))
    except BaseException:
        scope.interrupt(_Abandoned(f"{name}() was abandoned: its caller was stopped"))
        raise
    if thread.is_alive():
        message = (
            f"{name}() ran longer than its timeout_mins={seconds / 60:g} and was stopped; "
            "raise timeout_mins or make the function faster"
        )
        if scope.interrupt(FunctionTimeoutError(message)):
            raise FunctionTimeoutError(message)
        thread.join()  # it finished in the meantime: its outcome stands
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _clear_flag(ready: threading.Event, done: threading.Event) -> None:
    """CPython 3.11: clear the flag ``_WINDOW`` seconds after an exception was sent, then wake
    every ``_WAKE_EVERY`` seconds until ``done``.

    Between ``ready`` and the flag being clear, this thread calls no Python function: with a
    trace function (coverage.py traces every thread) it would spin there.
    """
    me = ctypes.c_ulong(threading.get_ident())
    flush = ctypes.py_object(_Flush)
    ready.set()
    try:
        time.sleep(_WINDOW)
        _set_async_exc(me, flush)
        while True:  # raised by now on 3.11; otherwise at the next call
            _checkpoint()
    except _Flush:
        pass
    while not done.wait(_WAKE_EVERY):
        pass


def _send(ident: int, signal: type[BaseException]) -> None:
    _set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(signal))


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc


def _take(me: int, signal: type[_Signal]) -> None:
    """Raise and catch ``signal`` in this thread, so none is left waiting for it.

    Sending it again replaces one still waiting (the slot holds one exception per thread);
    calling a Python function checks for it. It is sent again until it arrives: on 3.11 a
    flag cleared by another thread taking its own exception can hide it from one check.
    """
    try:
        while True:
            _send(me, signal)
            _checkpoint()
    except signal:
        return


def _checkpoint() -> None:
    """A Python call: entering it makes CPython raise an exception waiting for this thread."""
