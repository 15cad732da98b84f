"""Type checking of values and of futures against annotations.

Values are checked with pydantic in strict mode (imported on first use so that
``import sematic`` stays fast); the common atomic cases take a fast path. The declared type
of a future is checked against a parameter's annotation statically, before anything runs.

A parameter or return value that is a number of another type than its ``int`` or ``float``
annotation is converted when nothing is lost, as Sematic 0.41 did (:func:`convert_number`);
items inside containers are checked as they are.
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from sematic.core.errors import TypeCheckError
from sematic.core.memo import per_hint

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
    if not get_args(hint):  # typing.List bare, or tuple[()]
        bare = hint is typing.Tuple  # noqa: UP006 - the bare typing alias, not tuple[()]
        return "tuple[()]" if origin is tuple and not bare else describe(origin)
    args = ", ".join(_describe_argument(a) for a in get_args(hint))
    return f"{describe(origin)}[{args}]"


def _describe_argument(argument: Any) -> str:
    if argument is Ellipsis:
        return "..."
    if isinstance(argument, list):  # the parameters of Callable[[int, str], bool]
        return f"[{', '.join(describe(a) for a in argument)}]"
    return describe(argument)


def describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__qualname__} ({text})"


def numeric_target(hint: Any) -> type | None:
    """``int`` or ``float`` when a real number of another type converts for ``hint``.

    That is for ``int`` and ``float`` themselves, and for a union holding exactly one of
    them and not ``bool`` (``float | None``, ``int | str``); else None.
    """
    if hint is int:
        return int
    if hint is float:
        return float
    if get_origin(hint) in (Union, types.UnionType):
        members = set(get_args(hint))
        if bool in members or (int in members) is (float in members):
            return None
        return int if int in members else float
    return None


def _pydantic_config() -> Any:
    from pydantic import ConfigDict

    return ConfigDict(strict=True, arbitrary_types_allowed=True, revalidate_instances="always")


class _Validator:
    """Validates values against one annotation with pydantic (strict, deep)."""

    __slots__ = ("_validate",)

    def __init__(self, hint: Any) -> None:
        from pydantic import create_model

        try:
            model = create_model(
                "Value", __config__=_pydantic_config(), value=(_for_pydantic(hint), ...)
            )
        except Exception:  # noqa: BLE001 - pydantic cannot express this hint: fall back
            self._validate = _fallback_validator(hint)
            return
        if not model.__pydantic_complete__:  # names a type it cannot resolve (TYPE_CHECKING)
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


def _for_pydantic(hint: Any) -> Any:
    """``hint`` as handed to pydantic: plain dataclasses and Literals checked our way.

    Pydantic revalidates a dataclass instance by building a copy of it: that runs
    ``__post_init__`` again and refuses every dataclass with an ``InitVar``. Here the class
    is checked with isinstance and the fields' current values are validated. Pydantic's
    Literal check takes ``True`` for ``Literal[1]`` and ``1`` for ``Literal[True]``.
    """
    from pydantic import BeforeValidator, PlainValidator

    origin = get_origin(hint)
    if _is_plain_dataclass(origin or hint):
        return Annotated[Any, PlainValidator(_dataclass_check(hint))]
    if origin is Literal:
        return Annotated[hint, BeforeValidator(_literal_check(get_args(hint)))]
    args = get_args(hint)
    if origin is None or origin is Annotated or any(isinstance(a, list) for a in args):
        return hint
    new_args = tuple(a if a is Ellipsis else _for_pydantic(a) for a in args)
    if all(new is old for new, old in zip(new_args, args, strict=True)):
        return hint
    if origin is Union or origin is types.UnionType:
        return Union[new_args]  # noqa: UP007 - built at run time from a tuple
    if isinstance(hint, types.GenericAlias):
        return types.GenericAlias(origin, new_args)
    copy_with = getattr(hint, "copy_with", None)
    return hint if copy_with is None else copy_with(new_args)


def _is_plain_dataclass(cls: Any) -> bool:
    """A stdlib dataclass (pydantic dataclasses validate themselves)."""
    return (
        isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and not hasattr(cls, "__pydantic_validator__")
    )


def _literal_check(values: tuple[Any, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, int):  # 1 == True: tell them apart
            equal = [v for v in values if isinstance(v, int) and v == value]
            if equal and not any(isinstance(v, bool) is isinstance(value, bool) for v in equal):
                from pydantic_core import PydanticCustomError

                expected = " or ".join(repr(v) for v in values)
                raise PydanticCustomError(
                    "literal_error", "Input should be {expected}", {"expected": expected}
                )
        return value

    return check


class _DataclassCheck:
    """Validates a dataclass instance: its class, then the current values of its fields."""

    __slots__ = ("_class", "_fields", "_hint")

    def __init__(self, hint: Any) -> None:
        self._hint = hint
        self._class: type = get_origin(hint) or hint
        # Built on first use, so that recursive dataclasses do not recurse forever.
        self._fields: tuple[tuple[str, ...], Callable[[Any], Any] | None] | None = None

    @property
    def __name__(self) -> str:  # how pydantic labels this check among a union's members
        return describe(self._hint)

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, self._class):
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError(
                "is_instance_of",
                "Input should be an instance of {class_name}",
                {"class_name": self._class.__qualname__},
            )
        if self._fields is None:
            self._fields = self._build()
        names, validate = self._fields
        if validate is not None:
            missing = object()
            current = {name: getattr(value, name, missing) for name in names}
            validate({name: item for name, item in current.items() if item is not missing})
        return value

    def _build(self) -> tuple[tuple[str, ...], Callable[[Any], Any] | None]:
        from pydantic import Field, create_model

        try:
            hints = field_types(self._hint)
            fields = dataclasses.fields(self._class)
            definitions: dict[str, Any] = {
                # Internal names: a field may be called like a BaseModel attribute, or _x.
                f"f{index}": (
                    _for_pydantic(hints[field.name] if hints else Any),
                    Field(alias=field.name) if field.init else Field(None, alias=field.name),
                )
                for index, field in enumerate(fields)
            }
            model = create_model(self._class.__name__, __config__=_pydantic_config(), **definitions)
        except Exception:  # noqa: BLE001 - unresolvable annotations: check the class only
            return (), None
        if not model.__pydantic_complete__:
            return (), None
        return tuple(field.name for field in fields), model.__pydantic_validator__.validate_python


_dataclass_check = per_hint(_DataclassCheck)


def _fallback_validator(hint: Any) -> Callable[[Any], str | None]:
    origin = get_origin(hint) or hint
    if isinstance(origin, type):
        return lambda value: None if isinstance(value, origin) else "wrong type"
    return lambda value: None


_validator = per_hint(_Validator)


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


def check_value(value: Any, hint: Any, where: str, *, convert: bool = True) -> Any:
    """Return ``value``, converted to ``hint`` where that loses nothing, or raise.

    ``where`` names the checked thing, e.g. ``"add() parameter 'a'"``. With ``convert``
    (the default), a real number of another type is converted for an ``int`` or ``float``
    annotation (see :func:`convert_number`); else only an int is cast for a float.
    """
    if _fast_accepts(value, hint):
        return value
    if type(value) is int and numeric_target(hint) is float:
        return float(value)
    if convert:
        converted = convert_number(value, hint, where)
        if converted is not NOT_CONVERTED:
            return converted
    problem = _validator(hint).problem(value)
    if problem is not None:
        raise TypeCheckError(
            f"{where} expects {describe(hint)}, got {describe_value(value)}: {problem}"
        )
    return value


class _NotConverted:
    """The marker :func:`convert_number` returns when no conversion applies."""

    def __repr__(self) -> str:
        return "NOT_CONVERTED"


NOT_CONVERTED: Any = _NotConverted()


def convert_number(value: Any, hint: Any, where: str) -> Any:
    """``value`` converted for an ``int`` or ``float`` annotation, as Sematic 0.41 did.

    A real number (``numbers.Real``: bool, float, Fraction, numpy numbers...) that is not
    already of the annotated type converts when nothing is lost: to ``int`` when it is a
    whole number (``True``, ``2.0``), to ``float`` when it is within a float's range
    (rounded to the nearest float, as an int always is). A number that would lose its value
    (``1.5`` for an ``int``) raises :class:`TypeCheckError`. Anything else gives
    ``NOT_CONVERTED``: the value is left to the ordinary check.
    """
    target = numeric_target(hint)
    if target is None or not isinstance(value, numbers.Real):
        return NOT_CONVERTED
    if target is float:
        return NOT_CONVERTED if isinstance(value, float) else _to_float(value, hint, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return NOT_CONVERTED  # an int subclass (an IntEnum) is checked as it is
    return _to_int(value, hint, where)


def _to_float(value: Any, hint: Any, where: str) -> float:
    try:
        return float(value)
    except (OverflowError, ValueError):
        raise _lossy(value, hint, where, "it is out of a float's range") from None


def _to_int(value: Any, hint: Any, where: str) -> int:
    converted: int | None
    try:
        converted = int(value)
    except (OverflowError, ValueError):
        converted = None  # infinity or NaN
    if converted is None or not bool(converted == value):
        raise _lossy(value, hint, where, "it is not a whole number")
    return converted


def _lossy(value: Any, hint: Any, where: str, reason: str) -> TypeCheckError:
    return TypeCheckError(
        f"{where} expects {describe(hint)}, got {describe_value(value)}: {reason}, so it "
        "cannot be converted without losing its value; pass a value of the annotated type"
    )


def is_convertible(produced: Any, expected: Any) -> bool:
    """Whether a future declared to return ``produced`` may be a value ``expected``.

    As :func:`is_compatible`, and also True where :func:`convert_number` may convert the
    value when it exists (a ``float`` or ``bool`` output for an ``int`` parameter): the
    value itself is checked then. This applies to a parameter or return value itself, not
    to items inside containers, which are checked as they are.
    """
    if is_compatible(produced, expected):
        return True
    origin = get_origin(produced)
    if origin is Union or origin is types.UnionType:
        return all(is_convertible(member, expected) for member in get_args(produced))
    if origin is Literal:
        return all(is_convertible(type(value), expected) for value in get_args(produced))
    return (
        isinstance(produced, type)
        and issubclass(produced, numbers.Real)
        and numeric_target(expected) is not None
    )


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
    if produced_origin is Literal:
        return all(is_compatible(type(v), expected) for v in get_args(produced))
    if expected_origin in (Union, types.UnionType):
        return any(is_compatible(produced, member) for member in get_args(expected))
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
    if expected_class is datetime.date and issubclass(produced_class, datetime.datetime):
        return False  # values are checked strictly: a datetime is not accepted as a date
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
    return {name: _substitute(hints.get(name, Any), substitution) for name in names}


def _substitute(hint: Any, substitution: dict[Any, Any]) -> Any:
    """``hint`` with its type variables replaced, also inside (``list[T]`` -> ``list[int]``)."""
    if not substitution:
        return hint
    if isinstance(hint, typing.TypeVar):
        return substitution.get(hint, hint)
    parameters = getattr(hint, "__parameters__", ()) if get_origin(hint) is not None else ()
    if not parameters:
        return hint
    try:
        return hint[tuple(substitution.get(p, p) for p in parameters)]
    except TypeError:
        return hint


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
