"""Codecs for numpy arrays (.npy), pandas frames and series (parquet) and torch objects.

Their libraries are imported only when a value of theirs is met (recognized first by the
name of its class's module), so importing Sematic never imports them.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
from typing import Any

from sematic.storage.serialization import _json

_SERIES_NAME = b"sematic.series_name"
# Object columns pyarrow writes without changing their Python type on the way back.
_SAFE_OBJECT_COLUMNS = frozenset({"unicode", "bytes", "empty"})


def _from(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def numpy_payload(value: Any) -> bytes | None:
    """.npy bytes for a plain ndarray without Python objects in it, else None."""
    if not _from(type(value).__module__, "numpy"):
        return None
    import numpy as np

    if type(value) is not np.ndarray or value.dtype.hasobject:
        return None
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def numpy_value(payload: bytes) -> Any:
    import numpy as np

    return np.load(io.BytesIO(payload), allow_pickle=False)


def pandas_payload(value: Any) -> tuple[str, bytes] | None:
    """(kind, parquet bytes) for a DataFrame or Series parquet keeps as is, else None."""
    if not _from(type(value).__module__, "pandas"):
        return None
    pd = importlib.import_module("pandas")
    if type(value) is pd.DataFrame:
        kind, frame, metadata = "pandas.dataframe", value, {}
    elif type(value) is pd.Series:
        try:
            name = _json.dumps(value.name)
        except _json.NotJSONError:
            return None
        kind, frame, metadata = "pandas.series", value.to_frame(), {_SERIES_NAME: name}
    else:
        return None
    if "mixed" in frame.columns.inferred_type:  # labels parquet would turn into strings
        return None
    pa = importlib.import_module("pyarrow")
    try:
        table = pa.Table.from_pandas(frame)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if not _keeps_types(table.schema.metadata):
        return None
    table = table.replace_schema_metadata({**table.schema.metadata, **metadata})
    sink = pa.BufferOutputStream()
    importlib.import_module("pyarrow.parquet").write_table(table, sink)
    return kind, bytes(sink.getvalue().to_pybytes())


def _keeps_types(metadata: dict[bytes, bytes] | None) -> bool:
    if not metadata or b"pandas" not in metadata:
        return False
    columns = json.loads(metadata[b"pandas"]).get("columns", [])
    return all(
        column.get("numpy_type") != "object" or column.get("pandas_type") in _SAFE_OBJECT_COLUMNS
        for column in columns
    )


def pandas_value(payload: bytes, kind: str) -> Any:
    pa = importlib.import_module("pyarrow")
    parquet = importlib.import_module("pyarrow.parquet")
    table = parquet.read_table(pa.BufferReader(payload))
    frame = table.to_pandas()
    if kind == "pandas.dataframe":
        return frame
    series = frame.iloc[:, 0]
    series.name = _json.loads((table.schema.metadata or {})[_SERIES_NAME])
    return series


def is_torch(value: Any) -> bool:
    """A torch tensor or module; torch is never imported for this check."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor | torch.nn.Module)


def torch_payload(value: Any) -> bytes:
    buffer = io.BytesIO()
    importlib.import_module("torch").save(value, buffer)
    return buffer.getvalue()


def torch_value(payload: bytes) -> Any:
    torch = importlib.import_module("torch")
    return torch.load(io.BytesIO(payload), weights_only=False)
