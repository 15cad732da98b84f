"""Names of images and the manifests stored under them (OCI and Docker v2).

``ImageReference.parse`` reads what users write (``python:3.11``,
``127.0.0.1:5000/base/python@sha256:...``) the way Docker does; a ``Manifest`` is the exact
bytes a registry stores, with their digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.packaging.credentials import DOCKER_HUB, DOCKER_HUB_HOSTS

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES

DOCKER_HUB_API = "registry-1.docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_PATTERN = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
REGISTRY_PATTERN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
_REFERENCE_FORM = (
    "expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. 'python:3.11' or "
    "'ghcr.io/acme/base:1.0'"
)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _reference_problem(
    registry: str, repository: str, tag: str | None, digest: str | None
) -> str | None:
    if not REGISTRY_PATTERN.fullmatch(registry):
        return f"{registry!r} is not a registry host name (HOST or HOST:PORT)"
    if repository != repository.lower():
        return f"the repository {repository!r} must be lowercase"
    if not REPOSITORY_PATTERN.fullmatch(repository):
        return (
            f"{repository!r} is not a repository name (lowercase letters, digits and "
            "separators '.', '_', '__', '-', in components joined by '/')"
        )
    if len(registry) + 1 + len(repository) > 255:
        return "the name is longer than 255 characters"
    if tag is not None and not TAG_PATTERN.fullmatch(tag):
        return f"{tag!r} is not a tag (up to 128 letters, digits, '_', '.' and '-')"
    if digest is not None and not DIGEST_PATTERN.fullmatch(digest):
        return f"{digest!r} is not a digest (sha256: and 64 lowercase hex digits)"
    return None


@dataclass(frozen=True, slots=True)
class ImageReference:
    """``REGISTRY/REPOSITORY[:TAG][@DIGEST]``, with Docker Hub's shorthands expanded."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        problem = _reference_problem(self.registry, self.repository, self.tag, self.digest)
        if problem is not None:
            raise ConfigurationError(f"invalid image reference: {problem}; {_REFERENCE_FORM}")

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """``python:3.11`` -> ``docker.io/library/python:3.11``; the tag defaults to latest.

        The first component is the registry when there are several and it has a ``.`` or
        a ``:`` or is ``localhost``.
        """
        name, at, digest = text.partition("@")
        slash, colon = name.rfind("/"), name.rfind(":")
        tag: str | None = None
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        first, separator, rest = name.partition("/")
        if separator and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in DOCKER_HUB_HOSTS:
            registry = DOCKER_HUB
            if repository and "/" not in repository:
                repository = f"library/{repository}"
        problem = _reference_problem(registry, repository, tag, digest if at else None)
        if problem is not None:
            raise ConfigurationError(
                f"invalid image reference {text!r}: {problem}; {_REFERENCE_FORM}"
            )
        if tag is None and not at:
            tag = "latest"
        return cls(registry, repository, tag, digest if at else None)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def reference(self) -> str:
        """What names the manifest in the API: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or an index as the registry stores it; ``digest`` is the sha256 of ``body``."""

    media_type: str
    body: bytes
    digest: str

    def __post_init__(self) -> None:
        actual = sha256_digest(self.body)
        if actual != self.digest:
            raise ConfigurationError(
                f"a {self.media_type} manifest whose body hashes to {actual} was given the "
                f"digest {self.digest}: compute the digest from the exact bytes sent"
            )

    @classmethod
    def of(cls, media_type: str, body: bytes) -> Manifest:
        """A manifest of ``body``, its digest computed."""
        return cls(media_type, body, sha256_digest(body))

    def json(self) -> Any:
        """The parsed body."""
        return json.loads(self.body)
