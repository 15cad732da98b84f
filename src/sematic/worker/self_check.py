"""``python -m sematic.worker --self-check``: can this interpreter run Sematic's worker?

Run inside a built image (``sematic build --check``) with the image's own Python. It imports
what a worker needs at run time, type-checks and serializes a small value the way a step's
inputs and outputs are, and prints ONE JSON line on stdout::

    {"ok": true, "python": "3.13.0", "implementation": "cpython", "machine": "x86_64",
     "checks": ["import worker", ...], "kubernetes": "31.0.0"}

On failure: ``{"ok": false, "error": "ImportError: ...", "failed_check": ..., ...}`` and exit
status 1. This module must stay importable on every supported Python (3.10 to 3.13): no
3.11-only standard library at run time.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import sys
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Probe:
    """The value the check type-checks and round-trips (importable: the serializer reads
    dataclasses back by module and name)."""

    name: str
    weights: list[float]
    tags: dict[str, int]


_SAMPLE = [Probe("a", [0.5, 1.0], {"x": 1}), Probe("b", [], {})]


def _import_worker() -> None:
    importlib.import_module("sematic.worker.run")


def _type_check() -> None:
    from sematic.core.errors import TypeCheckError
    from sematic.core.types import check_value

    hint = list[Probe]
    check_value(_SAMPLE, hint, "self-check value")
    wrong: list[Any] = [*_SAMPLE, Probe("c", ["not a float"], {})]  # type: ignore[list-item]
    try:
        check_value(wrong, hint, "self-check value")
    except TypeCheckError:
        return
    raise AssertionError("the type check accepted a Probe whose weights hold a str")


def _round_trip() -> None:
    from sematic.storage.serialization import deserialize, serialize

    hint = list[Probe]
    serialized = serialize(_SAMPLE, hint)
    back = deserialize(serialized.payload, serialized.type_description, hint)
    if back != _SAMPLE:
        raise AssertionError(f"serialized and read back, {_SAMPLE!r} became {back!r}")


def _import_pydantic_core() -> None:
    importlib.import_module("pydantic_core")


CHECKS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("import worker", _import_worker),
    ("import pydantic_core", _import_pydantic_core),
    ("type check", _type_check),
    ("serialize round trip", _round_trip),
)


def _kubernetes_version() -> str | None:
    """The kubernetes client's version if it is installed, else None (only the driver of a
    detached pipeline needs it). Located, not imported: importing it takes over a second
    where no bytecode is cached, as in a fresh image, most of the whole check."""
    if importlib.util.find_spec("kubernetes") is None:
        return None
    try:
        return importlib.metadata.version("kubernetes")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _interpreter() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
    }


def run_checks() -> dict[str, Any]:
    """Runs every check in order; stops at the first failure. Returns the report."""
    report: dict[str, Any] = {"ok": True, **_interpreter(), "checks": []}
    for name, check in CHECKS:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - any failure is the answer
            report.update(ok=False, failed_check=name, error=_describe(error))
            return report
        report["checks"].append(name)
    try:
        report["kubernetes"] = _kubernetes_version()
    except Exception as error:  # noqa: BLE001 - its metadata is broken: say so, not fatal
        report["kubernetes"] = f"broken: {_describe(error)}"
    return report


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def main() -> int:
    """Prints the report as one JSON line; 0 when every check passed, else 1."""
    report = run_checks()
    print(json.dumps(report, sort_keys=True), flush=True)
    return 0 if report["ok"] else 1
