"""JSON previews of values for display: large values are truncated, nothing raises."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import sys
from enum import Enum
from typing import Any

from sematic.storage.serialization import _media
from sematic.storage.serialization._media import IMAGE_PIXELS, MAX_PREVIEW_BYTES

MAX_ITEMS = 20  # items kept from a list, tuple, set or dict
MAX_TEXT = 1000  # characters kept from a string
MAX_REPR = 200  # characters kept from the repr() of other objects
MAX_DEPTH = 6  # nesting shown before "..."
MAX_COLUMNS = 50  # columns described for a DataFrame
HEAD_ROWS = 10  # rows shown from a DataFrame or Series
ARRAY_VALUES = 10  # values shown from an array
DESCRIBE_ROWS = 1_000_000  # a DataFrame longer than this is not described (count, mean...)
_BIG = 2**63

__all__ = ["IMAGE_PIXELS", "MAX_PREVIEW_BYTES", "preview", "summarize"]


def summarize(value: Any) -> Any:
    """A JSON-able preview of any value."""
    try:
        return preview(value, 0)
    except Exception:  # noqa: BLE001 - a preview must never fail a run
        return {"class": type(value).__qualname__}


def preview(value: Any, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is bool or (kind is str and len(value) <= MAX_TEXT):
        return value
    if kind is int and -_BIG < value < _BIG:
        return value
    if depth < MAX_DEPTH and kind is list:
        return _sequence(value, len(value), depth)
    if depth < MAX_DEPTH and kind is dict:
        return _mapping(value, depth)
    if isinstance(value, Enum):
        return f"{kind.__qualname__}.{value.name}"
    if isinstance(value, int):
        return int(value) if value.bit_length() <= 64 else _text(str(value))
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes | bytearray):
        return {"bytes": len(value), "hex": bytes(value[:32]).hex()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, list | tuple):
        return _sequence(value, len(value), depth)
    if isinstance(value, set | frozenset):
        return _sequence(_ordered(value), len(value), depth)
    if isinstance(value, dict):
        return _mapping(value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if "sematic.types" in sys.modules:  # else no value can be one of its classes
            from sematic.storage.serialization._summary_types import typed_preview

            typed = typed_preview(value)
            if typed is not None:
                return typed
        names = [field.name for field in dataclasses.fields(value)]
        return {name: preview(getattr(value, name, None), depth + 1) for name in names}
    return _library_value(value, depth)


def _text(text: str) -> Any:
    if len(text) <= MAX_TEXT:
        return text
    return {"text": text[:MAX_TEXT], "length": len(text), "truncated": True}


def _sequence(items: Any, length: int, depth: int) -> Any:
    shown = [preview(item, depth + 1) for item in itertools.islice(items, MAX_ITEMS)]
    if length <= MAX_ITEMS:
        return shown
    return {"items": shown, "length": length, "truncated": True}


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    sample = list(itertools.islice(items, MAX_ITEMS)) if len(items) > 1000 else list(items)
    try:
        return sorted(sample)
    except TypeError:
        return sorted(sample, key=repr)


def _mapping(value: dict[Any, Any], depth: int) -> Any:
    shown = {
        key if isinstance(key, str) else str(preview(key, depth + 1)): preview(item, depth + 1)
        for key, item in itertools.islice(value.items(), MAX_ITEMS)
    }
    if len(value) <= MAX_ITEMS:
        return shown
    return {"items": shown, "length": len(value), "truncated": True}


def _library_value(value: Any, depth: int) -> Any:
    module = type(value).__module__.partition(".")[0]
    name = type(value).__name__
    if module == "numpy" and name == "ndarray":
        return _array(value, depth)
    if module == "numpy" and hasattr(value, "item"):  # numpy scalar
        return preview(value.item(), depth)
    if module == "pandas" and name == "DataFrame":
        return _frame(value, depth)
    if module == "pandas" and name == "Series":
        return _series(value, depth)
    if module == "matplotlib" and name == "Figure":
        return _media.matplotlib_figure(value)
    if module == "PIL" and hasattr(value, "thumbnail") and hasattr(value, "save"):
        return _media.pil_image(value)
    if module == "plotly" and name == "Figure":
        return _media.plotly_figure(value)
    if _extends(value, "torch.utils.data.dataloader", "DataLoader"):
        return _data_loader(value, depth)
    if _extends(value, "torch.nn.modules.module", "Module"):  # its layers, as printed
        return _text(_repr(value, _BIG))
    if hasattr(value, "isoformat"):  # pandas.Timestamp and other date-likes
        return str(value.isoformat())
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # torch, jax, ... arrays
        return {
            "class": type(value).__qualname__,
            "shape": _shape(value.shape),
            "dtype": str(value.dtype),
        }
    return _repr(value)


def _array(value: Any, depth: int) -> Any:
    values = value.flat[:ARRAY_VALUES].tolist()
    return {
        "shape": _shape(value.shape),
        "dtype": str(value.dtype),
        "size": int(value.size),
        "values": [preview(item, depth + 1) for item in values],
    }


def _frame(value: Any, depth: int) -> Any:
    shown = value.iloc[:HEAD_ROWS, :MAX_COLUMNS]
    columns = [str(preview(column, depth + 1)) for column in shown.columns]
    result = {
        "shape": _shape(value.shape),
        "columns": columns,
        "dtypes": dict(zip(columns, (str(dtype) for dtype in shown.dtypes), strict=True)),
        "index": [preview(label, depth + 1) for label in shown.index],
        "head": [
            [preview(item, depth + 1) for item in row]
            for row in shown.itertuples(index=False, name=None)
        ],
    }
    if value.shape[1] > MAX_COLUMNS:
        result["truncated"] = True
    statistics = _describe(value.iloc[:, :MAX_COLUMNS], depth)
    if statistics is not None:
        result["describe"] = statistics
    return result


def _describe(frame: Any, depth: int) -> Any:
    """``DataFrame.describe()`` (count, mean, quartiles... of the numeric columns) as
    ``{"columns", "index", "rows"}``; None for frames of more than DESCRIBE_ROWS rows."""
    if len(frame) > DESCRIBE_ROWS:
        return None
    try:
        table = frame.describe()
    except Exception:  # noqa: BLE001 - columns pandas cannot describe: no statistics
        return None
    return {
        "columns": [str(preview(column, depth + 1)) for column in table.columns],
        "index": [str(label) for label in table.index],
        "rows": [
            [preview(item, depth + 1) for item in row]
            for row in table.itertuples(index=False, name=None)
        ],
    }


def _series(value: Any, depth: int) -> Any:
    shown = value.iloc[:HEAD_ROWS]
    return {
        "shape": _shape(value.shape),
        "name": preview(value.name, depth + 1),
        "dtype": str(value.dtype),
        "index": [preview(label, depth + 1) for label in shown.index],
        "head": [preview(item, depth + 1) for item in shown],
    }


def _shape(shape: Any) -> list[int]:
    return [int(size) for size in shape]


def _repr(value: Any, limit: int = MAX_REPR) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not fail a run
        return f"<{type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _extends(value: Any, module: str, name: str) -> bool:
    """Whether ``value``'s class is or extends ``module.name`` (never imported to check)."""
    return any(cls.__module__ == module and cls.__name__ == name for cls in type(value).__mro__)


def _data_loader(loader: Any, depth: int) -> Any:
    """A torch DataLoader's settings and its dataset."""
    return {
        "class": "torch.DataLoader",
        "batch_size": preview(loader.batch_size, depth + 1),
        "num_workers": preview(loader.num_workers, depth + 1),
        "pin_memory": preview(loader.pin_memory, depth + 1),
        "timeout": preview(loader.timeout, depth + 1),
        "dataset": _repr(loader.dataset),
    }
