"""Previews of pictures and charts for the web UI: PNG data URLs and plotly's JSON.

An image preview is ``{"class", "size": [width, height], "image": "data:image/...;base64,..."}``
(``size`` left out when unknown); one too large to keep is ``{"class", "size", "preview":
"too large"}``; a plotly figure is ``{"class": "plotly.Figure", "plotly": <figure JSON>}``.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import struct
from typing import Any

IMAGE_PIXELS = 640  # the longest side of an image preview
MAX_PREVIEW_BYTES = 512 * 1024  # an image or plotly preview larger than this is left out
# The image formats browsers display from a data URL.
BROWSER_IMAGES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/svg+xml",
    }
)


def data_url(data: bytes, mime_type: str, kind: str, size: list[int] | None) -> Any:
    """``data`` inline, or "too large" past MAX_PREVIEW_BYTES."""
    described: dict[str, Any] = {"class": kind}
    if size is not None:
        described["size"] = size
    if len(data) > MAX_PREVIEW_BYTES:
        return {**described, "preview": "too large"}
    return {**described, "image": f"data:{mime_type};base64,{base64.b64encode(data).decode()}"}


def matplotlib_figure(figure: Any) -> Any:
    """A matplotlib figure, drawn to a PNG no wider or taller than IMAGE_PIXELS."""
    width, height = figure.get_size_inches()
    dpi = min(100.0, IMAGE_PIXELS / max(width, height, 0.01))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    size = [int(width * dpi), int(height * dpi)]
    return data_url(buffer.getvalue(), "image/png", "matplotlib.Figure", size)


def pil_image(image: Any, kind: str | None = None, size: list[int] | None = None) -> Any:
    """A PIL image, shrunk to at most IMAGE_PIXELS on its longest side, as a PNG (as a JPEG
    if the PNG is too large)."""
    preview = image.copy()
    preview.thumbnail((IMAGE_PIXELS, IMAGE_PIXELS))
    if preview.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        preview = preview.convert("RGBA")
    buffer = io.BytesIO()
    preview.save(buffer, format="PNG")
    label = kind or f"PIL.{type(image).__name__}"
    size = size or list(image.size)
    if buffer.tell() > MAX_PREVIEW_BYTES:  # a photograph, say: JPEG keeps it small
        buffer = io.BytesIO()
        preview.convert("RGB").save(buffer, format="JPEG", quality=85)
        return data_url(buffer.getvalue(), "image/jpeg", label, size)
    return data_url(buffer.getvalue(), "image/png", label, size)


def image_file(data: bytes, mime_type: str, kind: str) -> Any:
    """The picture in an image file's bytes: as it is if small enough and in a format
    browsers display, else shrunk to a PNG by Pillow (when installed), else described."""
    size = _pixel_size(data)
    if mime_type in BROWSER_IMAGES and len(data) <= MAX_PREVIEW_BYTES:
        return data_url(data, mime_type, kind, size)
    try:
        opened = _open_with_pillow(data)
        if opened is not None:
            original = [int(side) for side in opened.size]
            opened.draft("RGB", (IMAGE_PIXELS, IMAGE_PIXELS))  # JPEG: decode it smaller
            return pil_image(opened, kind, original)
    except Exception:  # noqa: BLE001 - a file Pillow cannot read is described instead
        pass
    described: dict[str, Any] = {"class": kind}
    if size is not None:
        described["size"] = size
    known = mime_type in BROWSER_IMAGES
    return {**described, "preview": "too large" if known else f"not shown ({mime_type})"}


def _open_with_pillow(data: bytes) -> Any:
    if importlib.util.find_spec("PIL") is None:
        return None
    from PIL import Image

    return Image.open(io.BytesIO(data))


def _pixel_size(data: bytes) -> list[int] | None:
    """Width and height from a PNG or GIF header, else from Pillow when it reads the file."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return list(struct.unpack(">II", data[16:24]))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return list(struct.unpack("<HH", data[6:10]))
    try:
        opened = _open_with_pillow(data)
    except Exception:  # noqa: BLE001 - not a format Pillow reads
        return None
    return None if opened is None else [int(side) for side in opened.size]


def plotly_figure(figure: Any) -> Any:
    """A plotly figure as its JSON (data and layout), which plotly.js draws."""
    text = figure.to_json()
    if len(text) > MAX_PREVIEW_BYTES:
        return {"class": "plotly.Figure", "preview": "too large"}
    return {"class": "plotly.Figure", "plotly": json.loads(text)}
