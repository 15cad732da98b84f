"""``@sematic.func``: a plain function whose calls build a graph of futures."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, overload

from sematic.core.errors import FunctionCallError, FunctionDefinitionError, TypeCheckError
from sematic.core.future import Future, collect_futures
from sematic.core.props import FunctionProps, checked_overrides, resolve_inline
from sematic.core.resources import ResourceRequirements
from sematic.core.retry import RetrySettings
from sematic.core.types import (
    check_value,
    container_item_hint,
    describe,
    is_compatible,
    is_convertible,
)

_NO_DEFAULT: Any = inspect.Parameter.empty


class Function:
    """A function decorated with ``@sematic.func``. Calling it returns a :class:`Future`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        props: FunctionProps,
        *,
        input_types: dict[str, Any] | None = None,
        output_type: Any = None,
    ) -> None:
        self.fn = fn
        self.props = props
        # A user script loaded by a worker runs as __mp_main__; it is __main__ to the user.
        self.module: str = "__main__" if fn.__module__ == "__mp_main__" else fn.__module__
        self.qualname: str = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.qualname)
        self.__qualname__ = self.qualname
        self.__module__ = self.module
        self.__wrapped__ = fn
        parameters = inspect.signature(fn).parameters.values()
        self._names = tuple(p.name for p in parameters)
        self._positional = tuple(
            p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        self._positional_only = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_ONLY)
        self._defaults = {p.name: p.default for p in parameters if p.default is not _NO_DEFAULT}
        self._input_types = input_types
        self._output_type = output_type
        self._checked_defaults: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The name runs of this function show."""
        return self.props.name

    @property
    def dotted_path(self) -> str:
        """``module.qualname``: how a worker process imports this function."""
        return f"{self.module}.{self.qualname}"

    @property
    def input_types(self) -> dict[str, Any]:
        if self._input_types is None:
            self._resolve_annotations()
        assert self._input_types is not None
        return self._input_types

    @property
    def output_type(self) -> Any:
        if self._input_types is None:
            self._resolve_annotations()
        return self._output_type

    def _resolve_annotations(self) -> None:
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception as error:
            raise FunctionDefinitionError(
                f"cannot resolve the annotations of {self.qualname}(): {error}; every name "
                "used in an annotation must be importable from the function's module"
            ) from error
        # No return annotation means ``-> None``, as in Sematic 0.41.
        output = hints.pop("return", None)
        self._output_type = type(None) if output is None else output
        self._input_types = {name: hints[name] for name in self._names}

    def __call__(self, *args: Any, **kwargs: Any) -> Future:
        bound = self._bind(args, kwargs)
        input_types = self.input_types
        deferred: list[str] = []
        for name, value in bound.items():
            where = f"{self.qualname}() parameter {name!r}"
            if isinstance(value, Future) or collect_futures(value):
                check_deferred(value, input_types[name], where)
                deferred.append(name)
            else:
                bound[name] = check_value(value, input_types[name], where)
        return Future(self, bound, tuple(deferred))

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(self._positional):
            raise FunctionCallError(
                f"{self.qualname}() takes {len(self._positional)} positional argument(s) "
                f"but {len(args)} were given"
            )
        bound = dict(zip(self._positional, args, strict=False))
        for key, value in kwargs.items():
            if key in bound or key in self._positional_only or key not in self._names:
                problem = (
                    "got multiple values for argument"
                    if key in bound
                    else "got an unexpected keyword argument"
                )
                raise FunctionCallError(f"{self.qualname}() {problem} {key!r}")
            bound[key] = value
        if len(bound) < len(self._names):
            missing = [n for n in self._names if n not in bound and n not in self._defaults]
            if missing:
                raise FunctionCallError(
                    f"{self.qualname}() missing required argument(s): "
                    + ", ".join(repr(m) for m in missing)
                )
            for name in self._names:
                if name not in bound:
                    bound[name] = self._defaults[name]
        return {name: bound[name] for name in self._names}

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Run the underlying Python function with bound arguments."""
        if self._positional_only:
            positional = [kwargs[name] for name in self._positional_only]
            rest = {k: v for k, v in kwargs.items() if k not in self._positional_only}
            return self.fn(*positional, **rest)
        return self.fn(**kwargs)

    def check_inputs(self, kwargs: dict[str, Any], names: tuple[str, ...]) -> None:
        """Check (and cast) the named arguments in place, once their futures have values."""
        input_types = self.input_types
        for name in names:
            kwargs[name] = check_value(
                kwargs[name], input_types[name], f"{self.qualname}() parameter {name!r}"
            )

    def check_output(self, value: Any) -> Any:
        return check_value(value, self.output_type, f"{self.qualname}() return value")

    def __repr__(self) -> str:
        return f"<sematic.func {self.dotted_path}>"


def check_deferred(value: Any, expected: Any, where: str) -> None:
    """Check a future, or a list/tuple/dict holding futures, against ``expected`` now.

    A future itself may be of a number type its value converts from (a ``float`` output
    for an ``int`` parameter: its value is checked when it exists); futures and values
    inside a container must match as they are.
    """
    if isinstance(value, Future):
        _check_future(value, expected, where, convertible=True)
    else:
        _check_structure(value, expected, where)


def _check_future(future: Future, expected: Any, where: str, *, convertible: bool) -> None:
    produced = future.function.output_type
    accepts = is_convertible if convertible else is_compatible
    if not accepts(produced, expected):
        raise TypeCheckError(
            f"{where} expects {describe(expected)}, but receives the output of "
            f"{future.function.qualname}(), declared to return {describe(produced)}"
        )


def _check_structure(value: Any, expected: Any, where: str) -> None:
    """Check a list/tuple/dict holding futures: concrete parts now, futures statically."""
    if expected is Any or isinstance(expected, typing.TypeVar):
        return
    origin = typing.get_origin(expected)
    if origin is typing.Union or origin is types.UnionType:
        members = [m for m in typing.get_args(expected) if _container_accepts(m, value)]
        if not members:
            raise TypeCheckError(
                f"{where} expects {describe(expected)}, got a {type(value).__qualname__} "
                "of futures"
            )
        problems: list[TypeCheckError] = []
        for member in members:
            try:
                _check_structure(value, member, where)
                return
            except TypeCheckError as problem:
                problems.append(problem)
        raise problems[0]
    if not _container_accepts(expected, value):
        raise TypeCheckError(
            f"{where} expects {describe(expected)}, got a {type(value).__qualname__} of futures"
        )
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        item_where = f"{where} item [{key!r}]"
        item_hint = container_item_hint(expected, key)
        if isinstance(item, Future):
            _check_future(item, item_hint, item_where, convertible=False)
        elif collect_futures(item):
            _check_structure(item, item_hint, item_where)
        else:
            check_value(item, item_hint, item_where, convert=False)


def _container_accepts(hint: Any, value: Any) -> bool:
    """Whether ``hint`` can describe the container ``value`` (a list, tuple or dict)."""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    origin = typing.get_origin(hint) or hint
    return not isinstance(origin, type) or isinstance(value, origin)


def _refuse_shape(fn: Any) -> None:
    if isinstance(fn, Function):
        raise FunctionDefinitionError(f"{fn.qualname}() is already decorated with @sematic.func")
    if isinstance(fn, staticmethod | classmethod):
        raise FunctionDefinitionError(
            "@sematic.func cannot decorate a staticmethod or classmethod; "
            "define a module-level function instead"
        )
    if not inspect.isfunction(fn):
        raise FunctionDefinitionError(
            f"@sematic.func decorates plain Python functions, got {fn!r}; "
            "define it with def at module level"
        )
    name = fn.__qualname__
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise FunctionDefinitionError(
            f"{name}() is async; Sematic functions are plain functions (the resolver runs them "
            "in parallel for you): remove async and await inside with asyncio.run(...)"
        )
    if inspect.isgeneratorfunction(fn):
        raise FunctionDefinitionError(
            f"{name}() is a generator (it uses yield); return a list instead"
        )
    scope = name.rsplit(".", 1)[0] if "." in name else ""
    if scope and not scope.endswith("<locals>"):
        raise FunctionDefinitionError(
            f"{name}() is defined in class {scope}; Sematic functions cannot be methods: "
            "move it to module level"
        )
    parameters = inspect.signature(fn).parameters.values()
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            star = "*" if parameter.kind is parameter.VAR_POSITIONAL else "**"
            raise FunctionDefinitionError(
                f"{name}() takes {star}{parameter.name}; Sematic functions need named, "
                "annotated parameters (pass a list or a dict instead)"
            )
    annotations = getattr(fn, "__annotations__", {})
    missing = [p.name for p in parameters if p.name not in annotations]
    if missing:
        raise FunctionDefinitionError(
            f"{name}() has no type annotation for parameter(s) "
            + ", ".join(repr(m) for m in missing)
            + "; annotate every parameter, e.g. def f(x: int) -> int"
        )


@overload
def func(fn: Callable[..., Any], /) -> Function: ...


@overload
def func(
    fn: None = None,
    /,
    *,
    inline: bool | None = None,
    standalone: bool | None = None,
    resource_requirements: ResourceRequirements | None = None,
    base_image_tag: str | None = None,
    cache: bool = False,
    retry: RetrySettings | None = None,
    timeout_mins: float | None = None,
    own_pod: bool = False,
) -> Callable[[Callable[..., Any]], Function]: ...


def func(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    inline: bool | None = None,
    standalone: bool | None = None,
    resource_requirements: ResourceRequirements | None = None,
    base_image_tag: str | None = None,
    cache: bool = False,
    retry: RetrySettings | None = None,
    timeout_mins: float | None = None,
    own_pod: bool = False,
) -> Function | Callable[[Callable[..., Any]], Function]:
    """Make a Sematic function: ``@sematic.func`` or ``@sematic.func(inline=False, ...)``.

    Every parameter must be annotated; without a return annotation the function is taken
    to return None (as in Sematic 0.41), and returning anything else fails its run.

    - ``inline`` (default True): run inside the resolver (or driver) process. ``False`` runs
      it in a worker of its own (a process locally, a Kubernetes job in the cloud).
      ``standalone`` is accepted as its opposite. Giving ``resource_requirements`` or
      ``base_image_tag`` implies ``inline=False``.
    - ``cache``: reuse an earlier output for the same function source and inputs.
    - ``retry``: :class:`RetrySettings` for the exceptions worth retrying.
    - ``timeout_mins``: fail the run when it runs longer.
    - ``own_pod``: on Kubernetes, run each call in a pod of its own (a Job), never in a
      warm pod shared, one step after another, with the pipeline's other steps.
    """

    def decorate(function: Callable[..., Any]) -> Function:
        _refuse_shape(function)
        where = f"@sematic.func on {function.__qualname__}()"
        settings = checked_overrides(
            where,
            resource_requirements=resource_requirements,
            base_image_tag=base_image_tag,
            cache=cache,
            retry=retry,
            timeout_mins=timeout_mins,
            own_pod=own_pod or None,
        )
        resolved = resolve_inline(inline, standalone, resource_requirements, base_image_tag, where)
        props = FunctionProps(
            name=function.__qualname__,
            inline=True if resolved is None else resolved,
            **settings,
        )
        return Function(function, props)

    if fn is not None:
        return decorate(fn)
    return decorate
