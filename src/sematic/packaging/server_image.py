"""An image of the Sematic server, made by the same builder as pipeline images.

``build_server_image`` runs ``builder.build`` on a one-file placeholder "pipeline" with the
distributions a team's server needs (``SERVER_DISTRIBUTIONS``: PostgreSQL's driver, the S3
filesystem, the Kubernetes client, and Sematic's own requirements), for the base's own
Python and platform. It then gives the result an entry point that runs the server:
``python3 -m sematic.cli server --host 0.0.0.0 --port 8080 --kubeconfig in-cluster`` (a new
config blob and manifest; every layer is the pipeline image's, so nothing else is uploaded).
The image runs as user 10001 unless the pod says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sematic.packaging.builder import build
from sematic.packaging.config import DEFAULT_PLATFORMS, PackagingConfig
from sematic.packaging.reference import INDEX_TYPES, ImageReference
from sematic.packaging.registry import Manifest, RegistryClient

Report = Callable[[str], None]

SERVER_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "s3fs", "kubernetes")
PORT = 8080
USER = "10001:10001"
_PLACEHOLDER = '"""The Sematic server image: no pipeline code (the server runs none)."""\n'


@dataclass(frozen=True, slots=True)
class ServerImage:
    image: str  # REGISTRY/REPOSITORY@sha256:...
    tag: str  # REGISTRY/REPOSITORY:server-<digest prefix>
    seconds: float
    bytes_uploaded: int
    layers_built: int  # our layers that were not in the layer cache


def server_entrypoint(python: str) -> tuple[list[str], list[str]]:
    """The image's Entrypoint and Cmd: ``sematic server`` for a pod (the Cmd's options are
    what ``sematic deploy render`` passes too)."""
    entrypoint = [python, "-m", "sematic.cli", "server"]
    command = ["--host", "0.0.0.0", "--port", str(PORT), "--kubeconfig", "in-cluster"]
    return entrypoint, command


def build_server_image(
    *,
    base: str,
    registry: str,
    repository: str,
    cache: Path,
    insecure_registries: tuple[str, ...] = (),
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
    python: str = "python3",
    extra_distributions: tuple[str, ...] = (),
    report: Report = lambda _line: None,
) -> ServerImage:
    """Build and push the server's image on ``base``; see the module's docstring."""
    started = time.perf_counter()
    folder = cache / "server-image"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sematic_server_image.py"
    if not script.is_file() or script.read_text() != _PLACEHOLDER:
        script.write_text(_PLACEHOLDER)
    config = PackagingConfig(
        registry=registry,
        repository=repository,
        bases={"server": base},
        origin=script,
        distributions=(*SERVER_DISTRIBUTIONS, *extra_distributions),
        insecure_registries=insecure_registries,
        python=python,
        platforms=platforms,
    )
    result = build(script, config, cache=cache, report=report)
    (built,) = result.images
    reference = ImageReference.parse(built.image)
    entrypoint, command = server_entrypoint(python)
    with RegistryClient(registry, insecure=config.is_insecure(registry)) as client:
        top = client.get_manifest(reference.repository, str(reference.digest))
        final = _with_entrypoint(client, reference.repository, top, entrypoint, command)
        tag = f"server-{final.digest.removeprefix('sha256:')[:16]}"
        client.put_manifest(reference.repository, tag, final)
        uploaded = result.bytes_uploaded + client.bytes_uploaded
    return ServerImage(
        image=f"{registry}/{reference.repository}@{final.digest}",
        tag=f"{registry}/{reference.repository}:{tag}",
        seconds=time.perf_counter() - started,
        bytes_uploaded=uploaded,
        layers_built=sum(fresh for _, fresh in result.layers),
    )


def _with_entrypoint(
    client: RegistryClient,
    repository: str,
    manifest: Manifest,
    entrypoint: list[str],
    command: list[str],
) -> Manifest:
    """``manifest`` (an image, or an index of images) with a new entry point."""
    document: dict[str, Any] = json.loads(manifest.body)
    if manifest.media_type in INDEX_TYPES:
        entries = []
        for entry in document["manifests"]:
            child = client.get_manifest(repository, str(entry["digest"]))
            changed = _with_entrypoint(client, repository, child, entrypoint, command)
            client.put_manifest(repository, changed.digest, changed)
            entries.append({**entry, "digest": changed.digest, "size": len(changed.body)})
        return _manifest(manifest.media_type, {**document, "manifests": entries})
    image_config: dict[str, Any] = json.loads(
        client.get_blob(repository, str(document["config"]["digest"]))
    )
    settings = dict(image_config.get("config") or {})
    settings["Entrypoint"] = entrypoint
    settings["Cmd"] = command
    settings["User"] = USER
    settings["ExposedPorts"] = {f"{PORT}/tcp": {}}
    labels = dict(settings.get("Labels") or {})
    labels["dev.sematic.role"] = "server"
    settings["Labels"] = labels
    image_config["config"] = settings
    history = list(image_config.get("history") or [])
    history.append({"created_by": "sematic deploy image: entrypoint", "empty_layer": True})
    image_config["history"] = history
    blob = _canonical(image_config)
    digest = _digest(blob)
    client.push_blob(repository, digest, blob)
    described = {**document["config"], "digest": digest, "size": len(blob)}
    return _manifest(manifest.media_type, {**document, "config": described})


def _manifest(media_type: str, document: dict[str, Any]) -> Manifest:
    body = _canonical(document)
    return Manifest(media_type, body, _digest(body))


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
