"""A URL with a label, which the web UI shows as a link."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Link:
    """A URL to show in the web UI as a link labelled ``label``, e.g. a dashboard's address.

    ``url`` must be absolute: a scheme and a host (``https://example.com/...``), else
    ValueError. The UI makes a clickable link of ``http``, ``https`` and ``ftp`` URLs only;
    others are shown as text.
    """

    label: str
    url: str

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise TypeError(f"Link's url must be a str, not {type(self.url).__qualname__}")
        parts = urlsplit(self.url)
        if not parts.scheme:
            raise ValueError(f"Link needs an absolute URL (https://...): {self.url!r}")
        if not parts.netloc:
            raise ValueError(f"Link needs a URL with a host (https://<host>/...): {self.url!r}")
