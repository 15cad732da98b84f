"""Naming classes by ``module:qualname`` and importing them back."""

from __future__ import annotations

import importlib
import weakref

from sematic.core.errors import ConfigurationError

_importable: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def class_path(cls: type) -> str:
    """``module:qualname``: how a class is found again in another process."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class named by ``class_path``; ConfigurationError if it cannot be imported."""
    module_name, _, qualname = path.partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"cannot import class {path!r}, needed to read an artifact back: {error}. "
            "Make its module importable (installed or on sys.path) in this process."
        ) from error
    if not isinstance(found, type):
        raise ConfigurationError(f"{path!r} names {type(found).__qualname__}, not a class")
    return found


def is_importable(cls: type) -> bool:
    """Whether ``import_class(class_path(cls))`` gives ``cls`` back (no local classes)."""
    try:
        return _importable[cls]
    except KeyError:
        pass
    try:
        result = import_class(class_path(cls)) is cls
    except ConfigurationError:
        result = False
    _importable[cls] = result
    return result
