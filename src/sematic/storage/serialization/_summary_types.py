"""Previews of ``sematic.types`` values: what the web UI needs to show each one.

Imported only once ``sematic.types`` is (before, no value can be one of its classes).

- ``Image``: an image preview (see ``_media``), class ``sematic.types.Image``;
- ``Link``, ``S3Bucket``, ``S3Location`` and the Hugging Face references: a link,
  ``{"class", "label", "href", "title"}`` (``title`` optional), which the UI shows as an
  anchor; a ``Link`` to a URL of another scheme than http, https or ftp has ``url`` in place
  of ``href`` and is shown as text;
- ``PromptResponse``: ``{"class", "prompt", "response"}``, each text cut at PROMPT_TEXT
  characters (then ``{"text", "length", "truncated"}``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sematic.storage.serialization import _media
from sematic.types import (
    HuggingFaceDatasetReference,
    HuggingFaceModelReference,
    Image,
    Link,
    PromptResponse,
    S3Bucket,
    S3Location,
)

SEMATIC_TYPES = (
    Image,
    Link,
    PromptResponse,
    S3Bucket,
    S3Location,
    HuggingFaceDatasetReference,
    HuggingFaceModelReference,
)
PROMPT_TEXT = 10_000  # characters kept from a prompt or a response
MAX_LABEL = 1000  # characters kept from a link's label
LINK_SCHEMES = frozenset({"http", "https", "ftp"})


def typed_preview(value: Any) -> Any:
    """The preview of an instance of one of SEMATIC_TYPES (or of a subclass); None for
    other values, and for malformed ones (fields of other types), to be previewed as any
    dataclass."""
    if not isinstance(value, SEMATIC_TYPES):
        return None
    try:
        return _typed_preview(value)
    except Exception:  # noqa: BLE001 - a preview must never fail a run
        return None


def _typed_preview(value: Any) -> Any:
    if isinstance(value, Image):
        return _media.image_file(value.bytes, value.mime_type, "sematic.types.Image")
    if isinstance(value, Link):
        return _link(value)
    if isinstance(value, PromptResponse):
        return {
            "class": "sematic.types.PromptResponse",
            "prompt": _text(value.prompt),
            "response": _text(value.response),
        }
    if isinstance(value, S3Location | S3Bucket):
        kind = "S3Location" if isinstance(value, S3Location) else "S3Bucket"
        title = "View in the AWS console"
        return _anchor(f"sematic.types.{kind}", value.uri, value.console_url, title)
    kind = (
        "HuggingFaceDatasetReference"
        if isinstance(value, HuggingFaceDatasetReference)
        else "HuggingFaceModelReference"
    )
    label = f"\N{HUGGING FACE} {value.display_name}"
    return _anchor(f"sematic.types.{kind}", label, value.hub_url, "View on Hugging Face")


def _link(link: Link) -> Any:
    label = str(link.label)[:MAX_LABEL]
    if urlsplit(link.url).scheme.lower() in LINK_SCHEMES:
        return {"class": "sematic.types.Link", "label": label, "href": link.url}
    return {"class": "sematic.types.Link", "label": label, "url": link.url}


def _anchor(kind: str, label: str, href: str, title: str) -> Any:
    return {"class": kind, "label": label, "href": href, "title": title}


def _text(text: Any) -> Any:
    text = str(text)
    if len(text) <= PROMPT_TEXT:
        return text
    return {"text": text[:PROMPT_TEXT], "length": len(text), "truncated": True}
