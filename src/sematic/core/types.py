"""Type checking of values and of futures against annotations.

Values are checked with pydantic in strict mode (imported on first use so that
``import sematic`` stays fast); the common atomic cases take a fast path. The declared type
of a future is checked against a parameter's annotation statically, before anything runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from sematic.core.errors import TypeCheckError

NoneType = type(None)
_ATOMIC: frozenset[type] = frozenset({int, float, str, bool, bytes, NoneType})
# Modules whose classes pydantic validates more strictly than isinstance (date vs datetime).
_PYDANTIC_MODULES = frozenset({"builtins", "datetime", "decimal", "uuid", "pathlib", "ipaddress"})


def describe(hint: Any) -> str:
    """A short, readable name for a type annotation."""
    if hint is NoneType or hint is None:
        return "None"
    if hint is Any:
        return "Any"
    origin = get_origin(hint)
    if origin is None:
        return getattr(hint, "__qualname__", None) or repr(hint)
    if origin is Union or origin is types.UnionType:
        return " | ".join(describe(a) for a in get_args(hint))
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in get_args(hint))}]"
    args = ", ".join("..." if a is Ellipsis else describe(a) for a in get_args(hint))
    return f"{describe(origin)}[{args}]"


def describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__qualname__} ({text})"


def is_float_hint(hint: Any) -> bool:
    """True for ``float`` and ``float | None``: where an int is accepted and cast."""
    if hint is float:
        return True
    if get_origin(hint) in (Union, types.UnionType):
        return float in get_args(hint) and not {int, bool} & set(get_args(hint))
    return False


class _Validator:
    """Validates values against one annotation with pydantic (strict, deep)."""

    __slots__ = ("_validate",)

    def __init__(self, hint: Any) -> None:
        from pydantic import ConfigDict, create_model

        config = ConfigDict(
            strict=True, arbitrary_types_allowed=True, revalidate_instances="always"
        )
        try:
            model = create_model("Value", __config__=config, value=(hint, ...))
        except Exception:  # noqa: BLE001 - pydantic cannot express this hint: fall back
            self._validate = _fallback_validator(hint)
            return
        validate_python = model.__pydantic_validator__.validate_python

        def validate(value: Any) -> str | None:
            from pydantic import ValidationError

            try:
                validate_python({"value": value})
            except ValidationError as error:
                first = error.errors()[0]
                location = "".join(
                    f"[{part}]" if isinstance(part, int) else f".{part}"
                    for part in first["loc"][1:]
                )
                where = f" at {location.lstrip('.')}" if location else ""
                return f"{first['msg']}{where} ({error.error_count()} error(s))"
            return None

        self._validate = validate

    def problem(self, value: Any) -> str | None:
        result: str | None = self._validate(value)
        return result


def _fallback_validator(hint: Any) -> Callable[[Any], str | None]:
    origin = get_origin(hint) or hint
    if isinstance(origin, type):
        return lambda value: None if isinstance(value, origin) else "wrong type"
    return lambda value: None


_validators: dict[Any, _Validator] = {}


def _validator(hint: Any) -> _Validator:
    try:
        return _validators[hint]
    except KeyError:
        validator = _validators[hint] = _Validator(hint)
        return validator
    except TypeError:  # unhashable annotation: do not cache
        return _Validator(hint)


def _fast_accepts(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    kind = type(value)
    if kind is hint and kind in _ATOMIC:
        return True
    return (
        isinstance(hint, type)
        and hint.__module__ not in _PYDANTIC_MODULES
        and not dataclasses.is_dataclass(hint)
        and not hasattr(hint, "__pydantic_validator__")
        and isinstance(value, hint)
    )


def check_value(value: Any, hint: Any, where: str) -> Any:
    """Return ``value`` (an int cast to float where a float is expected) or raise.

    ``where`` names the checked thing, e.g. ``"add() parameter 'a'"``.
    """
    if _fast_accepts(value, hint):
        return value
    if type(value) is int and is_float_hint(hint):
        return float(value)
    problem = _validator(hint).problem(value)
    if problem is not None:
        raise TypeCheckError(
            f"{where} expects {describe(hint)}, got {describe_value(value)}: {problem}"
        )
    return value


def is_compatible(produced: Any, expected: Any) -> bool:
    """Whether a future declared to return ``produced`` may feed an ``expected`` parameter.

    False only when no value of ``produced`` can be an ``expected``; where it cannot tell
    (type variables, protocols, exotic annotations) it answers True and the value is
    checked when the function runs.
    """
    if produced is expected or expected is Any or produced is Any:
        return True
    if isinstance(produced, typing.TypeVar) or isinstance(expected, typing.TypeVar):
        return True
    produced_origin, expected_origin = get_origin(produced), get_origin(expected)
    if produced_origin in (Union, types.UnionType):
        return all(is_compatible(member, expected) for member in get_args(produced))
    if expected_origin in (Union, types.UnionType):
        return any(is_compatible(produced, member) for member in get_args(expected))
    if produced_origin is Literal:
        return all(is_compatible(type(v), expected) for v in get_args(produced))
    if expected_origin is Literal:
        return any(is_compatible(produced, type(v)) for v in get_args(expected))
    produced_class = produced_origin or produced
    expected_class = expected_origin or expected
    if produced_class is None:
        produced_class = NoneType
    if expected_class is None:
        expected_class = NoneType
    if not (isinstance(produced_class, type) and isinstance(expected_class, type)):
        return True
    if produced_class is int and expected_class is float:
        return True
    if produced_class is bool and expected_class is int:
        return False
    try:
        if not issubclass(produced_class, expected_class):
            return False
    except TypeError:
        return True
    return _compatible_arguments(produced, expected, produced_class)


def _compatible_arguments(produced: Any, expected: Any, produced_class: type) -> bool:
    produced_args, expected_args = get_args(produced), get_args(expected)
    if not produced_args or not expected_args:
        return True
    if produced_class is tuple:
        if len(expected_args) == 2 and expected_args[1] is Ellipsis:
            items = produced_args[:1] if produced_args[-1] is Ellipsis else produced_args
            return all(is_compatible(item, expected_args[0]) for item in items)
        if produced_args[-1] is Ellipsis:
            return True
        return len(produced_args) == len(expected_args) and all(
            is_compatible(p, e) for p, e in zip(produced_args, expected_args, strict=True)
        )
    if len(produced_args) != len(expected_args):
        return True
    return all(is_compatible(p, e) for p, e in zip(produced_args, expected_args, strict=True))


def tuple_items(hint: Any) -> tuple[Any, ...] | None:
    """The item types of a fixed-length tuple annotation, else None."""
    if get_origin(hint) is tuple:
        args = get_args(hint)
        if args and args[-1] is not Ellipsis:
            return () if args == ((),) else args
    return None


def field_types(hint: Any) -> dict[str, Any] | None:
    """The field annotations of a dataclass annotation (generic ones resolved), else None."""
    origin = get_origin(hint) or hint
    if not (isinstance(origin, type) and dataclasses.is_dataclass(origin)):
        return None
    hints = typing.get_type_hints(origin)
    names = [f.name for f in dataclasses.fields(origin)]
    parameters = getattr(origin, "__parameters__", ())
    substitution = dict(zip(parameters, get_args(hint), strict=False))
    return {name: substitution.get(hints.get(name, Any), hints.get(name, Any)) for name in names}


def container_item_hint(hint: Any, key: Any) -> Any:
    """The annotation of ``container[key]`` for a container annotation, or Any."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (list, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        if isinstance(key, int) and 0 <= key < len(args):
            return args[key]
    return Any
