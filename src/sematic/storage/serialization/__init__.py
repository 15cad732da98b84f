"""Turning values into artifact payloads and back.

``serialize(value, hint)`` picks the first codec that accepts the value:

1. a serializer registered with ``register_serializer`` for its class or nearest base;
2. ``numpy``: a plain ndarray without Python objects, as .npy;
3. ``pandas.dataframe`` / ``pandas.series``: parquet via pyarrow, when it keeps the types;
4. ``torch``: tensors and modules via ``torch.save`` (only if torch is already imported);
5. ``json``: None, bool, int, float (nan and inf too), str, bytes, date/time values, enums,
   dataclasses, list, tuple, dict, set and frozenset, nested in any way;
6. ``pickle``: cloudpickle, for anything else.

The artifact id is the sha256 of the type key, a zero byte and the payload. The type key
names the format version, the codec and the declared type (classes by module and qualified
name): the same value declared with the same type has the same id in every process, except
for pickled values, whose bytes pickle does not promise to be stable.
"""

from __future__ import annotations

import hashlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from sematic.core.errors import ArtifactCorruptedError, ConfigurationError, TypeCheckError
from sematic.core.memo import per_hint
from sematic.core.records import ArtifactRecord
from sematic.core.types import describe
from sematic.storage.serialization import _arrays, _json
from sematic.storage.serialization._registry import (
    CustomSerializer,
    Serializer,
    find_serializer,
    register_serializer,
    serializer_by_path,
    unregister_serializer,
)
from sematic.storage.serialization._summary import summarize

__all__ = [
    "CustomSerializer",
    "Serialized",
    "Serializer",
    "deserialize",
    "hint_key",
    "register_serializer",
    "serialize",
    "unregister_serializer",
    "verify",
]

FORMAT = "sematic-artifact/1"
KINDS = ("user", "numpy", "pandas.dataframe", "pandas.series", "torch", "json", "pickle")


@dataclass(frozen=True, slots=True)
class Serialized:
    """A value ready to store: its id, its bytes and how to describe and read it."""

    artifact_id: str
    payload: bytes
    type_description: dict[str, Any]
    summary: Any

    def to_record(self, created_at: float) -> ArtifactRecord:
        return ArtifactRecord(
            id=self.artifact_id,
            type_description=self.type_description,
            summary=self.summary,
            size=len(self.payload),
            created_at=created_at,
        )


def serialize(value: Any, hint: Any) -> Serialized:
    """Encode ``value``, declared as ``hint``, into an artifact."""
    user = find_serializer(type(value))
    if user is None:
        kind, payload = _encode(value)
        summary = summarize(value)
    else:
        kind, payload, summary = "user", user.dumps(value), _user_summary(user, value)
    serializer = None if user is None else user.path
    key = _type_key(kind, hint, serializer)
    description = {"kind": kind, "type": _display_type(value, hint), "type_key": key}
    if serializer is not None:
        description["serializer"] = serializer
    return Serialized(_artifact_id(key, payload), payload, description, summary)


def _encode(value: Any) -> tuple[str, bytes]:
    payload = _arrays.numpy_payload(value)
    if payload is not None:
        return "numpy", payload
    frame = _arrays.pandas_payload(value)
    if frame is not None:
        return frame
    if _arrays.is_torch(value):
        return "torch", _arrays.torch_payload(value)
    try:
        return "json", _json.dumps(value)
    except _json.NotJSONError:
        pass
    import cloudpickle

    try:
        return "pickle", bytes(cloudpickle.dumps(value))
    except Exception as error:
        raise TypeCheckError(
            f"cannot store a value of type {type(value).__qualname__}: {error}. "
            "Register a serializer for its type with register_serializer() "
            "(sematic.storage.serialization)."
        ) from error


def deserialize(payload: bytes, type_description: dict[str, Any], hint: Any = None) -> Any:
    """Read back a value written by ``serialize``.

    ``hint``, the annotation the caller expects, is only used in error messages: the
    payload and its description say everything needed to rebuild the value.
    """
    kind = type_description.get("kind")
    if kind == "json":
        return _json.loads(payload)
    if kind == "numpy":
        return _arrays.numpy_value(payload)
    if kind in ("pandas.dataframe", "pandas.series"):
        return _arrays.pandas_value(payload, kind)
    if kind == "pickle":
        return _unpickle(payload)
    if kind == "user":
        return serializer_by_path(str(type_description.get("serializer"))).deserialize(payload)
    if kind == "torch":
        return _arrays.torch_value(payload)
    expected = "" if hint is None else f" (expected {describe(hint)})"
    raise ConfigurationError(
        f"cannot read an artifact of kind {kind!r}{expected}: this version of Sematic knows "
        f"{', '.join(KINDS)}. It was probably written by a newer version of Sematic."
    )


def _unpickle(payload: bytes) -> Any:
    import cloudpickle

    try:
        return cloudpickle.loads(payload)
    except (ImportError, AttributeError) as error:  # a class this process cannot find
        raise ConfigurationError(
            f"cannot read a pickled artifact back: {error}. Make the modules of its classes "
            "importable in this process."
        ) from error


def verify(artifact_id: str, type_description: dict[str, Any], payload: bytes) -> None:
    """Raise ArtifactCorruptedError unless ``payload`` hashes to ``artifact_id``."""
    key = type_description.get("type_key")
    if not isinstance(key, str):
        raise ArtifactCorruptedError(
            f"artifact {artifact_id}: its type description has no type key, so its payload "
            "cannot be checked"
        )
    actual = _artifact_id(key, payload)
    if actual != artifact_id:
        raise ArtifactCorruptedError(
            f"artifact {artifact_id}: the stored payload ({len(payload)} bytes) hashes to "
            f"{actual}; it was altered or truncated. Running the pipeline again recomputes "
            "it and replaces the stored bytes (an input of the pipeline: call the pipeline "
            "again with that value)."
        )


def _artifact_id(type_key: str, payload: bytes) -> str:
    digest = hashlib.sha256(type_key.encode())
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


def _type_key(kind: str, hint: Any, serializer: str | None) -> str:
    parts = [FORMAT, kind, hint_key(hint)]
    if serializer is not None:
        parts.append(serializer)
    return "\n".join(parts)


def _display_type(value: Any, hint: Any) -> str:
    return describe(type(value)) if hint is Any else _described(hint)


def _user_summary(user: Serializer[Any], value: Any) -> Any:
    if user.summary is None:
        return summarize(value)
    try:
        return summarize(user.summary(value))
    except Exception:  # noqa: BLE001 - a summary must never fail a run
        return summarize(value)


def hint_key(hint: Any) -> str:
    """A canonical, process-independent name for an annotation (classes fully qualified)."""
    return _hint_keys(hint)


def _hint_key(hint: Any) -> str:
    if hint is None or hint is types.NoneType:
        return "None"
    if hint is Any:
        return "Any"
    if hint is Ellipsis:
        return "..."
    if isinstance(hint, list | tuple):  # Callable's parameter list
        return f"[{', '.join(hint_key(item) for item in hint)}]"
    origin = get_origin(hint)
    if origin is None:
        if isinstance(hint, TypeVar):
            return f"~{hint.__name__}"
        if isinstance(hint, type):
            name = hint.__qualname__
            return name if hint.__module__ == "builtins" else f"{hint.__module__}.{name}"
        return _strip_addresses(repr(hint))
    args = get_args(hint)
    if origin is Union or origin is types.UnionType:
        return " | ".join(sorted(hint_key(arg) for arg in args))  # unions are unordered
    if origin is Literal:
        return f"Literal[{', '.join(_strip_addresses(repr(arg)) for arg in args)}]"
    if origin is typing.Annotated:
        return hint_key(args[0])
    if not args:  # typing.List and other bare aliases
        return hint_key(origin)
    return f"{hint_key(origin)}[{', '.join(hint_key(arg) for arg in args)}]"


def _strip_addresses(text: str) -> str:
    import re

    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


_hint_keys = per_hint(_hint_key)
_described = per_hint(describe)
