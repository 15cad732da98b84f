"""``mock_sematic_funcs``: replaces the code of Sematic functions with mocks.

::

    with mock_sematic_funcs([train, evaluate]) as mocks:
        mocks[train].mock.return_value = Model(...)
        mocks[evaluate].mock.side_effect = mocks[evaluate].original  # real code, calls recorded
        assert SilentRunner().run(pipeline()) == ...
        mocks[train].mock.assert_called_once()

A mocked function still behaves as a Sematic function: calling it returns a future, its
inputs and its (mocked) output are type-checked, and it takes its place in the graph. Only
the body of the decorated Python function is replaced, until the block ends.

The mocks live in this process. So that they apply under ``LocalResolver`` (or
``LocalRunner``) too, a mocked function runs inline while mocked, in the resolver's process,
as every function did under Sematic 0.41's ``LocalRunner``; and it is never cached (a mocked
output is not stored as, nor replaced by, an output of the real code). Functions that are not
mocked keep their settings: an ``inline=False`` one still runs in a worker process, where
mocks of the functions it calls do not apply. Settings are taken when a function is called,
so call mocked functions inside the block: under ``LocalResolver`` a future made before it,
or given ``.set(inline=False)`` or ``.set(cache=True)`` inside it, keeps those settings.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest.mock import MagicMock

from sematic.core.errors import ConfigurationError
from sematic.core.function import Function

__all__ = ["SematicFuncMock", "mock_sematic_funcs"]


@dataclass
class SematicFuncMock:
    """The handles on one mocked function.

    - ``mock``: the :class:`unittest.mock.MagicMock` called in place of the function's
      code, with the arguments the function receives. Set ``return_value`` or
      ``side_effect``; assert on its calls.
    - ``original``: the function's own code (the function before ``@sematic.func``);
      ``mock.side_effect = original`` keeps its behaviour while recording the calls.
    - ``signature``: the function's signature.
    """

    mock: MagicMock
    original: Callable[..., Any]
    signature: inspect.Signature


@contextmanager
def mock_sematic_funcs(
    funcs: Iterable[Function],
) -> Iterator[dict[Function, SematicFuncMock]]:
    """Replace the code of each Sematic function in ``funcs`` with a mock, for the block.

    Yields a dict from each function to its :class:`SematicFuncMock`. A mock's default
    return value is a ``MagicMock``, which fails the function's output type check: give
    each mock a ``return_value`` or a ``side_effect``. Everything is restored when the block
    ends, however it ends.
    """
    functions = list(dict.fromkeys(funcs))
    for function in functions:
        if not isinstance(function, Function):
            raise ConfigurationError(
                "mock_sematic_funcs() takes a list of functions decorated with "
                f"@sematic.func, got {function!r}"
            )
    saved: list[tuple[Function, Callable[..., Any], Any]] = []
    handles: dict[Function, SematicFuncMock] = {}
    try:
        for function in functions:
            original = function.fn
            function.input_types  # noqa: B018 - read the annotations while the code is real
            signature = inspect.signature(original)
            stand_in = MagicMock(name=function.qualname)
            stand_in.__signature__ = signature
            saved.append((function, original, function.props))
            function.fn = _calling(stand_in, original)
            # Inline: the mock is in this process. Not cached: its output is not the code's.
            function.props = dataclasses.replace(function.props, inline=True, cache=False)
            handles[function] = SematicFuncMock(stand_in, original, signature)
        yield handles
    finally:
        for function, original, props in reversed(saved):
            function.fn = original
            function.props = props


def _calling(stand_in: MagicMock, original: Callable[..., Any]) -> Callable[..., Any]:
    """A function that calls ``stand_in``, and looks like ``original`` to whoever inspects it
    (its name, module, source and annotations)."""

    @functools.wraps(original)
    def mocked(*args: Any, **kwargs: Any) -> Any:
        return stand_in(*args, **kwargs)

    return mocked
