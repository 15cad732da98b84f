"""An image, given as the bytes of an image file, which the web UI shows as the picture."""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass

# Leading bytes of the formats browsers display, and their MIME types.
_SIGNATURES: tuple[tuple[builtins.bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
)
UNKNOWN = "application/octet-stream"


@dataclass(frozen=True, repr=False)
class Image:
    """An image: the bytes of an image file (PNG, JPEG, GIF, WebP, SVG, ...).

    ``Image(bytes=data)`` or ``Image.from_file(path)``. The web UI shows the picture, shrunk
    to 640 pixels on its longest side when it is big (that needs Pillow; without it, a big
    image is described but not shown).
    """

    bytes: builtins.bytes

    @classmethod
    def from_file(cls, file_path: str | os.PathLike[str]) -> Image:
        """The image in the file at ``file_path``."""
        with open(file_path, "rb") as file:
            return cls(bytes=file.read())

    @property
    def mime_type(self) -> str:
        """The image's MIME type, told by its first bytes (``application/octet-stream``
        when the format is not one browsers display)."""
        return sniff_mime_type(self.bytes)

    def __repr__(self) -> str:
        return f"Image(<{len(self.bytes)} bytes, {self.mime_type}>)"


def sniff_mime_type(data: builtins.bytes) -> str:
    """The MIME type of the image file ``data``, from its leading bytes."""
    for signature, mime_type in _SIGNATURES:
        if data.startswith(signature):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    head = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "image/svg+xml"
    return UNKNOWN
