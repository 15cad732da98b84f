"""Serializers registered by users for their own types.

The registry is module-level state of this process: register serializers explicitly (for
example in the module that defines the type) before values of that type are stored or read
back. Nothing in Sematic registers anything at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from sematic.core.errors import ConfigurationError, TypeCheckError
from sematic.storage.serialization._classes import class_path, import_class

T = TypeVar("T")


class CustomSerializer(Protocol[T]):
    """What a class decorated with ``@register_serializer(SomeType)`` provides.

    It may also define ``summary(self, value) -> Any`` returning JSON for display.
    """

    def serialize(self, value: T, /) -> bytes: ...

    def deserialize(self, payload: bytes, /) -> T: ...


S = TypeVar("S", bound=CustomSerializer[Any])


@dataclass(frozen=True, slots=True)
class Serializer(Generic[T]):
    """How values of ``type_`` (and its subclasses) become bytes and come back."""

    type_: type[T]
    serialize: Callable[[T], bytes]
    deserialize: Callable[[bytes], T]
    summary: Callable[[T], Any] | None = None

    @property
    def path(self) -> str:
        return class_path(self.type_)

    def dumps(self, value: T) -> bytes:
        payload = self.serialize(value)
        if isinstance(payload, bytes):
            return payload
        if isinstance(payload, bytearray | memoryview):
            return bytes(payload)
        raise TypeCheckError(
            f"the serializer registered for {self.path} returned "
            f"{type(payload).__qualname__}, expected bytes"
        )


_lock = threading.Lock()
_by_type: dict[type, Serializer[Any]] = {}
_by_path: dict[str, Serializer[Any]] = {}
_resolved: dict[type, Serializer[Any] | None] = {}  # MRO lookups, replaced on every change


@overload
def register_serializer(
    type_: type[T],
    *,
    serialize: Callable[[T], bytes],
    deserialize: Callable[[bytes], T],
    summary: Callable[[T], Any] | None = None,
) -> Serializer[T]: ...


@overload
def register_serializer(type_: type[T]) -> Callable[[type[S]], type[S]]: ...


def register_serializer(
    type_: type[T],
    *,
    serialize: Callable[[T], bytes] | None = None,
    deserialize: Callable[[bytes], T] | None = None,
    summary: Callable[[T], Any] | None = None,
) -> Serializer[T] | Callable[[type[S]], type[S]]:
    """Store values of ``type_`` (and subclasses) with your own functions.

    Either pass ``serialize`` and ``deserialize`` (and optionally ``summary``), or use it
    as a class decorator: ``@register_serializer(MyType)`` on a class whose instances (made
    with no arguments) have ``serialize`` / ``deserialize`` / optional ``summary`` methods.
    A later registration for the same type replaces the earlier one.
    """
    if not isinstance(type_, type):
        raise ConfigurationError(f"register_serializer() needs a class, got {type_!r}")
    if serialize is None and deserialize is None:
        if summary is not None:
            raise ConfigurationError("summary= needs serialize= and deserialize=")

        def decorate(cls: type[S]) -> type[S]:
            instance = cls()
            methods = (getattr(instance, name, None) for name in ("serialize", "deserialize"))
            if not all(callable(method) for method in methods):
                raise ConfigurationError(
                    f"{cls.__qualname__} must define serialize() and deserialize() methods"
                )
            _add(
                Serializer(
                    type_,
                    instance.serialize,
                    instance.deserialize,
                    getattr(instance, "summary", None),
                )
            )
            return cls

        return decorate
    if serialize is None or deserialize is None:
        raise ConfigurationError("register_serializer() needs both serialize= and deserialize=")
    entry = Serializer(type_, serialize, deserialize, summary)
    _add(entry)
    return entry


def unregister_serializer(type_: type) -> None:
    """Forget the serializer registered for exactly ``type_`` (no error if there is none)."""
    global _resolved  # noqa: PLW0603 - replaced, never mutated, for lock-free readers
    with _lock:
        entry = _by_type.pop(type_, None)
        if entry is not None:
            _by_path.pop(entry.path, None)
        _resolved = {}


def _add(entry: Serializer[Any]) -> None:
    global _resolved  # noqa: PLW0603 - replaced, never mutated, for lock-free readers
    with _lock:
        _by_type[entry.type_] = entry
        _by_path[entry.path] = entry
        _resolved = {}


def find_serializer(cls: type) -> Serializer[Any] | None:
    """The serializer for ``cls``: registered for it exactly, else for its nearest base."""
    if not _by_type:
        return None
    resolved = _resolved  # a registration meanwhile replaces it: no stale answer is kept
    try:
        return resolved[cls]
    except KeyError:
        pass
    found = next((_by_type[base] for base in cls.__mro__ if base in _by_type), None)
    resolved[cls] = found
    return found


def serializer_by_path(path: str) -> Serializer[Any]:
    """The serializer registered for the class at ``path``, importing its module if needed."""
    entry = _by_path.get(path)
    if entry is None:
        # Importing the class's module may register its serializer.
        entry = find_serializer(import_class(path))
    if entry is None:
        raise ConfigurationError(
            f"an artifact was written with a custom serializer for {path}, and none is "
            "registered in this process: call register_serializer() for that type first"
        )
    return entry
