"""Steps the graph builder generates: indexing, field access, and collecting containers.

A step is built with the classes of the future it reads (``type(future)``,
``type(future.function)``), so this module imports neither: futures build their own steps
without an import cycle."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sematic.core.errors import FutureUsageError
from sematic.core.props import FunctionProps
from sematic.core.types import container_item_hint, describe, tuple_items

if TYPE_CHECKING:
    from sematic.core.function import Function
    from sematic.core.future import Future


def _getitem(container: Any, key: Any) -> Any:
    return container[key]


def _getattr(instance: Any, name: str) -> Any:
    return getattr(instance, name)


def _collect(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=1024)
def _step_function(
    function_class: Callable[..., Function], kind: str, source_type: Any, result_type: Any
) -> Function:
    implementations: dict[str, Callable[..., Any]] = {
        "getitem": _getitem,
        "getattr": _getattr,
        "collect": _collect,
    }
    implementation = implementations[kind]
    names = {"getitem": ("container", "key"), "getattr": ("instance", "name")}.get(kind, ("value",))
    input_types = dict(zip(names, (source_type, Any), strict=False))
    return function_class(
        implementation,
        FunctionProps(name=kind),
        input_types=input_types,
        output_type=result_type,
    )


def _function(
    function_class: Callable[..., Function], kind: str, source_type: Any, result_type: Any
) -> Function:
    try:
        return _step_function(function_class, kind, source_type, result_type)
    except TypeError:  # unhashable annotation
        return _step_function.__wrapped__(function_class, kind, source_type, result_type)


def getitem_step(future: Future, key: Any) -> Future:
    """``future[key]`` as a step of the graph."""
    output = future.function.output_type
    items = tuple_items(output)
    if items is not None and not (isinstance(key, int) and -len(items) <= key < len(items)):
        raise FutureUsageError(
            f"index {key!r} is out of range for the output of {future.function.qualname}(), "
            f"declared as {describe(output)}"
        )
    hint = container_item_hint(output, key)
    function = _function(type(future.function), "getitem", output, hint)
    step = type(future)(function, {"container": future, "key": key}, ("container",))
    return step.set(name=f"{future.props.name}[{key!r}]")


def getattr_step(future: Future, name: str, field_type: Any) -> Future:
    """``future.name`` (a dataclass field) as a step of the graph."""
    function = _function(type(future.function), "getattr", future.function.output_type, field_type)
    step = type(future)(function, {"instance": future, "name": name}, ("instance",))
    return step.set(name=f"{future.props.name}.{name}")


def is_access_step(future: Future) -> bool:
    """Whether ``future`` reads part of another future's output (``f()[0]``, ``f().x``).

    Such a future is only a view of the call it reads from: leaving it unused (``_, b = f()``)
    is no mistake, the call itself is.
    """
    return future.function.fn is _getitem or future.function.fn is _getattr


def collect_step(
    function_class: Callable[..., Function], value: Any, output_type: Any, name: str
) -> Future:
    """A step whose value is ``value`` (a list, tuple or dict holding futures)."""
    return _function(function_class, "collect", output_type, output_type)(value).set(name=name)
