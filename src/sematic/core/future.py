"""Futures: the deferred result of calling a Sematic function."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from sematic.core.context import future_id, note_created
from sematic.core.errors import ConfigurationError, FutureUsageError, UnknownSettingError
from sematic.core.props import checked_overrides, resolve_inline, with_overrides
from sematic.core.resolver import default_resolver
from sematic.core.resources import ResourceRequirements
from sematic.core.retry import RetrySettings
from sematic.core.steps import getattr_step, getitem_step
from sematic.core.types import describe, field_types, tuple_items

if TYPE_CHECKING:
    from sematic.core.function import Function
    from sematic.core.props import FunctionProps
    from sematic.core.resolver import Resolver

_SCALARS = frozenset({int, float, str, bool, bytes, type(None)})


class Future:
    """The pending result of one call of a Sematic function. Nothing runs until resolved.

    A future can be passed to other Sematic functions (also inside lists, tuples and dicts),
    indexed (``f()[0]``, ``a, b = f()``) and, for dataclass outputs, read by field
    (``f().accuracy``). Whatever needs the concrete value (``if``, arithmetic, iteration of
    a list) must happen inside another Sematic function.
    """

    __slots__ = ("deferred", "function", "id", "kwargs", "props")

    def __init__(self, function: Function, kwargs: dict[str, Any], deferred: tuple[str, ...]):
        self.id = future_id()
        self.function = function
        self.kwargs = kwargs
        # Parameters whose values hold futures: type-checked once those have values.
        self.deferred = deferred
        self.props: FunctionProps = function.props
        note_created(self)

    @property
    def dependencies(self) -> list[Future]:
        """The futures this call waits for, in argument order (duplicates kept)."""
        found: list[Future] = []
        for name in self.deferred:
            _collect(self.kwargs[name], found)
        return found

    def set(
        self,
        *,
        name: str | None = None,
        inline: bool | None = None,
        standalone: bool | None = None,
        resource_requirements: ResourceRequirements | None = None,
        base_image_tag: str | None = None,
        cache: bool | None = None,
        retry: RetrySettings | None = None,
        timeout_mins: float | None = None,
        tags: list[str] | None = None,
        own_pod: bool | None = None,
        **unknown: Any,
    ) -> Future:
        """Override settings for this call only; returns the same future.

        A name that is not a setting raises :class:`UnknownSettingError` (a ``ValueError``,
        as in Sematic 0.41, and a ``TypeError``).
        """
        where = f"{self.function.qualname}(...).set()"
        if unknown:
            _refuse_unknown(where, unknown)
        overrides = checked_overrides(
            where,
            name=name,
            resource_requirements=resource_requirements,
            base_image_tag=base_image_tag,
            cache=cache,
            retry=retry,
            timeout_mins=timeout_mins,
            tags=tags,
            own_pod=own_pod,
        )
        resolved = resolve_inline(inline, standalone, resource_requirements, base_image_tag, where)
        if resolved is not None:
            overrides["inline"] = resolved
        self.props = with_overrides(self.props, overrides)
        return self

    def resolve(self, resolver: Resolver | None = None) -> Any:
        """Run the pipeline this future ends and return its value.

        With no resolver this uses the default one (``LocalResolver``).
        """
        chosen = resolver if resolver is not None else default_resolver()
        if not hasattr(chosen, "resolve"):
            raise ConfigurationError(
                f"resolve() takes a resolver such as sematic.SilentResolver(), got {chosen!r}"
            )
        return chosen.resolve(self)

    def __repr__(self) -> str:
        return f"Future({self.props.name}, id={self.id[:12]})"

    # Deferred access -------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Future:
        if isinstance(key, Future):
            raise FutureUsageError(
                f"cannot index the output of {self.function.qualname}() with another future; "
                "do the indexing inside a Sematic function that takes both"
            )
        return getitem_step(self, key)

    def __iter__(self) -> Iterator[Future]:
        items = tuple_items(self.function.output_type)
        if items is None:
            self._refuse(
                "iterate over",
                "only a future of a fixed-length tuple (e.g. -> tuple[int, str]) can be "
                "unpacked; to loop over a list, do it inside a Sematic function",
            )
        return iter([self[index] for index in range(len(items))])

    def __getattr__(self, name: str) -> Future:
        if name.startswith("_"):
            raise AttributeError(name)
        output = self.function.output_type
        fields = field_types(output)
        if fields is None or name not in fields:
            reason = (
                f"it is declared to return {describe(output)}, which is not a dataclass"
                if fields is None
                else f"its dataclass {describe(output)} has no field {name!r}"
            )
            raise AttributeError(
                f"the output of {self.function.qualname}() has no attribute {name!r}: {reason}"
            )
        return getattr_step(self, name, fields[name])

    # Operations that need the concrete value -------------------------------------------

    def _refuse(self, operation: str, advice: str | None = None) -> NoReturn:
        raise FutureUsageError(
            f"cannot {operation} the output of {self.function.qualname}(): it is a Future, "
            "whose value does not exist until the pipeline runs. "
            + (
                advice
                or "Move this code into a Sematic function that takes the value as a parameter."
            )
        )

    def __bool__(self) -> bool:
        self._refuse("use as a condition (bool())")

    def __len__(self) -> int:  # noqa: PLE0303 - always raises
        self._refuse("take len() of")

    def __contains__(self, item: Any) -> bool:
        self._refuse("test membership in")

    def __eq__(self, other: object) -> bool:
        self._refuse("compare (==)")

    def __ne__(self, other: object) -> bool:
        self._refuse("compare (!=)")

    __hash__ = object.__hash__

    def __lt__(self, other: Any) -> bool:
        self._refuse("compare (<)")

    def __le__(self, other: Any) -> bool:
        self._refuse("compare (<=)")

    def __gt__(self, other: Any) -> bool:
        self._refuse("compare (>)")

    def __ge__(self, other: Any) -> bool:
        self._refuse("compare (>=)")

    def __int__(self) -> int:
        self._refuse("convert to int")

    def __float__(self) -> float:
        self._refuse("convert to float")

    def __index__(self) -> int:  # noqa: PLE0305 - always raises
        self._refuse("use as an index")


def _refuse_unknown(where: str, unknown: dict[str, Any]) -> NoReturn:
    names = ", ".join(repr(name) for name in sorted(unknown))
    known = [
        parameter.name
        for parameter in inspect.signature(Future.set).parameters.values()
        if parameter.kind is parameter.KEYWORD_ONLY
    ]
    raise UnknownSettingError(
        f"{where}: unknown setting(s) {names}; a call can override {', '.join(known)}"
    )


def _arithmetic(symbol: str) -> Any:
    def refuse(self: Future, *args: Any) -> NoReturn:
        self._refuse(f"apply {symbol} to")

    return refuse


for _dunder, _symbol in {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "matmul": "@",
    "truediv": "/",
    "floordiv": "//",
    "mod": "%",
    "pow": "**",
    "and": "&",
    "or": "|",
    "xor": "^",
    "lshift": "<<",
    "rshift": ">>",
}.items():
    for _name in (f"__{_dunder}__", f"__r{_dunder}__", f"__i{_dunder}__"):
        setattr(Future, _name, _arithmetic(_symbol))
for _name, _symbol in {"__neg__": "unary -", "__pos__": "unary +", "__abs__": "abs()"}.items():
    setattr(Future, _name, _arithmetic(_symbol))


def _collect(value: Any, found: list[Future]) -> None:
    kind = type(value)
    if kind is Future:
        found.append(value)
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) not in _SCALARS:
                _collect(item, found)
    elif kind is dict:
        for item in value.values():
            if type(item) not in _SCALARS:
                _collect(item, found)


def collect_futures(value: Any) -> list[Future]:
    """The futures inside ``value`` (itself, or items of lists, tuples and dicts)."""
    found: list[Future] = []
    if type(value) not in _SCALARS:
        _collect(value, found)
    return found


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with each future replaced by its value from ``values`` (keyed by id)."""
    kind = type(value)
    if kind is Future:
        return values[value.id]
    if kind is list:
        return [substitute(item, values) for item in value]
    if kind is tuple:
        return tuple(substitute(item, values) for item in value)
    if kind is dict:
        return {key: substitute(item, values) for key, item in value.items()}
    return value
