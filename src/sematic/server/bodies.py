"""Request bodies and JSON, read the one strict way every endpoint uses.

- ``stream`` / ``read``: a body, chunked or not, with a byte limit enforced while it
  arrives: the first chunk past the limit is a 413 naming the limit, so a client cannot
  make the server hold more than the limit (plus a chunk) whatever it declares.
- ``parse_json`` / ``parse_model``: JSON only, strictly: nesting deeper than
  ``MAX_DEPTH``, ``NaN``/``Infinity`` and numbers that overflow to infinity (``1e999``) are
  a 400 naming where they are, never a RecursionError or a value no store can keep.
  ``explained`` gives a field type of a model its own error messages (``is not a run id``).
- ``JSONResponse`` / ``dumps``: what the API answers. A non-finite float (a row written
  by an older version) is rendered as ``null`` rather than failing the whole response.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError
from starlette import responses
from starlette.exceptions import HTTPException
from starlette.requests import Request

from sematic.core.records import first_unstorable

# pydantic's JSON parser refuses nesting deeper than this (its recursion guard); the
# documents of this API nest a few levels.
MAX_DEPTH = 200

M = TypeVar("M", bound=BaseModel)


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        413, f"The request body is too large: this endpoint takes at most {limit:,} bytes."
    )


async def stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The chunks of the body as they arrive; a 413 as soon as more than ``limit`` came."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


async def read(request: Request, limit: int) -> bytearray:
    """The whole body, at most ``limit`` bytes (413 beyond, decided while streaming)."""
    body = bytearray()
    async for chunk in stream(request, limit):
        body += chunk
    return body


def parse_json(body: bytes | bytearray, *, what: str = "The request body") -> Any:
    """The JSON value of ``body`` (strict: see the module docstring); 400 otherwise."""
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise HTTPException(400, f"{what} is not JSON{_depth_hint(exc)}: {exc}.") from None
    problem = first_unstorable(value, "body")
    if problem is not None:
        raise HTTPException(400, f"{problem[0]}: {problem[1]}.")
    return value


def parse_object(body: bytes | bytearray) -> dict[str, Any]:
    """A JSON object body; an empty body is ``{}``."""
    if not bytes(body).strip():
        return {}
    value = parse_json(body)
    if not isinstance(value, dict):
        raise HTTPException(400, "The request body must be a JSON object.")
    return value


def parse_model(model: type[M], body: bytes | bytearray) -> M:
    """``body`` validated by ``model`` (which must refuse inf and nan: allow_inf_nan=False);
    a 400 naming the first bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            message = str(first.get("ctx", {}).get("error", first["msg"]))
            raise HTTPException(
                400, f"The request body is not JSON{_depth_hint(message)}: {message}."
            ) from None
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        if first["type"] == "enum":  # e.g. a state: say which value is not one
            given = exc.errors(include_url=False)[0].get("input")
            shown = repr(given)[:100]
            raise HTTPException(
                400, f"{location(first['loc'])}: unknown {first['loc'][-1]} {shown}{more}."
            ) from None
        raise HTTPException(400, f"{location(first['loc'])}: {first['msg']}{more}.") from None


def explained(**messages: str) -> WrapValidator:
    """An annotation for a field type: pydantic's errors of these types about the value
    itself (not about something inside it) say ``messages[type]`` instead, where
    ``{value}`` shows a text value (its first 80 characters). For example
    ``Annotated[int, Field(ge=0), explained(greater_than_equal="must not be negative")]``.
    """

    def explain(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
        try:
            return validate(value)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            if error["loc"] or error["type"] not in messages:
                raise
            shown = {"value": repr(value[:80])} if isinstance(value, str) else None
            raise PydanticCustomError(error["type"], messages[error["type"]], shown) from None

    return WrapValidator(explain)


def location(loc: tuple[int | str, ...]) -> str:
    """``("runs", 0, "started_at")`` as ``runs[0].started_at``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def _depth_hint(error: object) -> str:
    return f" (nested deeper than {MAX_DEPTH} levels)" if "recursion" in str(error) else ""


def dumps(value: Any) -> str:
    """Compact JSON; non-finite floats become null (JSON has no way to write them)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # rare: only rows written before non-finite values were refused
        return json.dumps(
            _finite(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class JSONResponse(responses.JSONResponse):
    """Starlette's JSONResponse, except that a non-finite float is ``null``, not a 500."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
