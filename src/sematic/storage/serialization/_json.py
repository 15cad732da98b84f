"""JSON encoding of plain Python values that rebuilds the same types when read back.

JSON-native values (None, bool, int, finite float, str, list, dict with str keys) are
written as themselves; everything else is an object tagged ``{"__sematic__": <tag>, ...}``.
Dicts are written with sorted keys and sets in a canonical order, so equal values give equal
bytes in every process. Reading back, dicts come back in key order, not insertion order.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import math
from collections.abc import Callable
from enum import Enum
from typing import Any

from sematic.core.errors import ArtifactCorruptedError
from sematic.storage.serialization._classes import class_path, import_class, is_importable
from sematic.storage.serialization._registry import find_serializer, serializer_by_path

TAG = "__sematic__"


class NotJSONError(Exception):
    """The value holds something this codec cannot write (the caller falls back)."""


def dumps(value: Any) -> bytes:
    """Canonical JSON bytes for ``value``; NotJSONError if it holds unsupported objects."""
    try:
        return canonical(encode(value)).encode("ascii")
    except (RecursionError, ValueError) as error:  # cycles, ints too long for str()
        raise NotJSONError(str(error)) from error


def loads(payload: bytes) -> Any:
    try:
        tree = json.loads(payload)
    except ValueError as error:
        raise ArtifactCorruptedError(f"the payload is not valid JSON: {error}") from error
    return decode(tree)


def canonical(tree: Any) -> str:
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), allow_nan=False)


def encode(value: Any) -> Any:
    kind = type(value)
    if find_serializer(kind) is not None:
        return _encode_custom(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else {TAG: "float", "value": repr(value)}
    if kind is list:
        return [encode(item) for item in value]
    if kind is dict:
        return _encode_dict(value)
    if kind is tuple:
        return {TAG: "tuple", "items": [encode(item) for item in value]}
    if kind is set or kind is frozenset:
        return {TAG: kind.__name__, "items": _encode_set_items(value)}
    if kind is bytes:
        return {TAG: "bytes", "base64": base64.b64encode(value).decode("ascii")}
    if kind in _SCALARS:
        return _encode_scalar(value)
    if isinstance(value, Enum) and is_importable(kind):
        return {TAG: "enum", "class": class_path(kind), "value": encode(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value)
    raise NotJSONError(f"cannot write {kind.__qualname__} as JSON")


def _encode_custom(value: Any) -> Any:
    entry = find_serializer(type(value))
    assert entry is not None
    payload = base64.b64encode(entry.dumps(value)).decode("ascii")
    return {TAG: "custom", "serializer": entry.path, "base64": payload}


def _encode_dict(value: dict[Any, Any]) -> Any:
    if TAG not in value and all(type(key) is str for key in value):
        return {key: encode(item) for key, item in value.items()}
    pairs = [[encode(key), encode(item)] for key, item in value.items()]
    pairs.sort(key=lambda pair: canonical(pair[0]))
    return {TAG: "dict", "items": pairs}


def _encode_set_items(value: set[Any] | frozenset[Any]) -> list[Any]:
    kinds = {type(item) for item in value}
    numbers = kinds <= {int, float} and not any(
        type(item) is float and math.isnan(item) for item in value
    )
    if kinds == {str} or numbers:
        return [encode(item) for item in sorted(value)]
    items = [encode(item) for item in value]
    items.sort(key=canonical)
    return items


def _encode_dataclass(value: Any) -> Any:
    cls = type(value)
    names = [field.name for field in dataclasses.fields(value)]
    state = getattr(value, "__dict__", None)
    if not is_importable(cls) or (state is not None and not set(state) <= set(names)):
        raise NotJSONError(f"cannot write {cls.__qualname__} as JSON")
    try:
        fields = {name: encode(getattr(value, name)) for name in names}
    except AttributeError as error:  # a field that was never set
        raise NotJSONError(str(error)) from error
    return {TAG: "dataclass", "class": class_path(cls), "fields": fields}


def _encode_scalar(value: Any) -> Any:
    if type(value) is datetime.timedelta:
        parts = [value.days, value.seconds, value.microseconds]
        return {TAG: "timedelta", "value": parts}
    tzinfo = getattr(value, "tzinfo", None)
    tree = {TAG: type(value).__name__, "value": value.isoformat()}
    if tzinfo is None or type(tzinfo) is datetime.timezone:
        return tree
    zone = getattr(tzinfo, "key", None)  # zoneinfo.ZoneInfo
    if type(value) is datetime.datetime and type(tzinfo).__module__ == "zoneinfo" and zone:
        return {**tree, "zone": zone}
    raise NotJSONError(f"cannot write time zone {tzinfo!r} as JSON")


_SCALARS = frozenset({datetime.datetime, datetime.date, datetime.time, datetime.timedelta})


def decode(tree: Any) -> Any:
    kind = type(tree)
    if kind is list:
        return [decode(item) for item in tree]
    if kind is not dict:
        return tree
    tag = tree.get(TAG)
    if tag is None:
        return {key: decode(item) for key, item in tree.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ArtifactCorruptedError(f"unknown JSON tag {tag!r} in the payload")
    try:
        return decoder(tree)
    except (KeyError, TypeError, binascii.Error) as error:
        raise ArtifactCorruptedError(f"malformed {tag!r} object in the payload") from error


def _decode_dataclass(tree: dict[str, Any]) -> Any:
    cls: Any = import_class(tree["class"])
    instance = cls.__new__(cls)
    for name, item in tree["fields"].items():
        object.__setattr__(instance, name, decode(item))
    return instance


def _decode_datetime(tree: dict[str, Any]) -> datetime.datetime:
    value = datetime.datetime.fromisoformat(tree["value"])
    if "zone" in tree:
        from zoneinfo import ZoneInfo

        value = value.astimezone(ZoneInfo(tree["zone"]))
    return value


def _decode_custom(tree: dict[str, Any]) -> Any:
    return serializer_by_path(tree["serializer"]).deserialize(base64.b64decode(tree["base64"]))


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "float": lambda tree: float(tree["value"]),
    "tuple": lambda tree: tuple(decode(item) for item in tree["items"]),
    "set": lambda tree: {decode(item) for item in tree["items"]},
    "frozenset": lambda tree: frozenset(decode(item) for item in tree["items"]),
    "dict": lambda tree: {decode(key): decode(item) for key, item in tree["items"]},
    "bytes": lambda tree: base64.b64decode(tree["base64"], validate=True),
    "datetime": _decode_datetime,
    "date": lambda tree: datetime.date.fromisoformat(tree["value"]),
    "time": lambda tree: datetime.time.fromisoformat(tree["value"]),
    "timedelta": lambda tree: datetime.timedelta(*tree["value"]),
    "enum": lambda tree: import_class(tree["class"])(decode(tree["value"])),
    "dataclass": _decode_dataclass,
    "custom": _decode_custom,
}
