"""JSON previews of values for display: large values are truncated, nothing raises."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import itertools
import json
import math
from enum import Enum
from typing import Any

MAX_ITEMS = 20  # items kept from a list, tuple, set or dict
MAX_TEXT = 1000  # characters kept from a string
MAX_REPR = 200  # characters kept from the repr() of other objects
MAX_DEPTH = 6  # nesting shown before "..."
MAX_COLUMNS = 50  # columns described for a DataFrame
HEAD_ROWS = 10  # rows shown from a DataFrame or Series
ARRAY_VALUES = 10  # values shown from an array
IMAGE_PIXELS = 640  # the longest side of an image preview
MAX_PREVIEW_BYTES = 512 * 1024  # an image or plotly preview larger than this is left out
_BIG = 2**63


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
        return _figure(value)
    if module == "PIL" and hasattr(value, "thumbnail") and hasattr(value, "save"):
        return _image(value)
    if module == "plotly" and name == "Figure":
        return _plotly(value)
    if hasattr(value, "isoformat"):  # pandas.Timestamp and other date-likes
        return str(value.isoformat())
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # torch, jax, ... arrays
        return {
            "class": type(value).__qualname__,
            "shape": _shape(value.shape),
            "dtype": str(value.dtype),
        }
    return _repr(value)


def _data_url(png: bytes, kind: str, size: list[int]) -> Any:
    if len(png) > MAX_PREVIEW_BYTES:
        return {"class": kind, "size": size, "preview": "too large"}
    return {
        "class": kind,
        "size": size,
        "image": "data:image/png;base64," + base64.b64encode(png).decode(),
    }


def _figure(figure: Any) -> Any:
    """A matplotlib figure, drawn to a PNG no wider or taller than IMAGE_PIXELS."""
    width, height = figure.get_size_inches()
    dpi = min(100.0, IMAGE_PIXELS / max(width, height, 0.01))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return _data_url(buffer.getvalue(), "matplotlib.Figure", [int(width * dpi), int(height * dpi)])


def _image(image: Any) -> Any:
    """A PIL image, shrunk to at most IMAGE_PIXELS on its longest side."""
    preview = image.copy()
    preview.thumbnail((IMAGE_PIXELS, IMAGE_PIXELS))
    if preview.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        preview = preview.convert("RGBA")
    buffer = io.BytesIO()
    preview.save(buffer, format="PNG")
    return _data_url(buffer.getvalue(), f"PIL.{type(image).__name__}", list(image.size))


def _plotly(figure: Any) -> Any:
    """A plotly figure as its JSON (data and layout), which plotly.js draws."""
    text = figure.to_json()
    if len(text) > MAX_PREVIEW_BYTES:
        return {"class": "plotly.Figure", "preview": "too large"}
    return {"class": "plotly.Figure", "plotly": json.loads(text)}


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
    return result


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


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not fail a run
        return f"<{type(value).__qualname__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
