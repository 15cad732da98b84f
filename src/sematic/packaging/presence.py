"""Checking, before anything is submitted, that every image of an image map is in its
registry (a stale map, or an image deleted since the build, would otherwise surface as a
pod stuck pulling)."""

from __future__ import annotations

from collections.abc import Iterable

from sematic.core.errors import ImageNotFoundError
from sematic.packaging.credentials import find_credentials
from sematic.packaging.reference import ImageReference
from sematic.packaging.registry import RegistryClient


def check_images_present(images: Iterable[str], *, insecure: Iterable[str] = ()) -> None:
    """Raise ImageNotFoundError naming every image its registry lacks (one request each)."""
    plain_http = set(insecure)
    missing: list[str] = []
    for image in sorted(set(images)):
        ref = ImageReference.parse(image)
        credentials = find_credentials(ref.registry)
        with RegistryClient(
            ref.registry, insecure=ref.registry in plain_http, credentials=credentials
        ) as registry:
            try:
                registry.get_manifest(ref.repository, ref.digest or ref.tag or "latest")
            except ImageNotFoundError:
                missing.append(image)
    if missing:
        raise ImageNotFoundError(
            f"{len(missing)} image(s) of the image map are not in their registry: "
            f"{', '.join(missing)}; build and push them again (`sematic run --build`)"
        )
