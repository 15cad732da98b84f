"""``sematic build``: one image per base, pushed to the configured registry, by content.

Each image is its base image plus four layers (dependencies, Sematic, the worker entry
point, the user's code), the configured environment, ``/app`` as working directory and
the worker as entry point. Blobs the registry has are not sent again; the tag is written
last, only after every blob is in place, so a failed build leaves no tag behind.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sematic.core.images import APP
from sematic.packaging import contents
from sematic.packaging.config import PackagingConfig
from sematic.packaging.layers import Entry, Layer, LayerCache
from sematic.packaging.reference import DOCKER_MANIFEST, OCI_MANIFEST
from sematic.packaging.registry import ImageReference, Manifest, RegistryClient

Report = Callable[[str], None]

_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str  # the base's name in the config ("default", "cuda")
    image: str  # REGISTRY/REPOSITORY@sha256:...
    pushed_tag: str  # REGISTRY/REPOSITORY:TAG, the tag written for it
    blobs_uploaded: int
    blobs_present: int
    bytes_uploaded: int
    manifest_written: bool


@dataclass(frozen=True, slots=True)
class BuildResult:
    images: tuple[BuiltImage, ...]
    layers: tuple[tuple[Layer, bool], ...]  # our layers, and whether each was built now
    seconds: float
    bytes_uploaded: int = field(default=0)

    @property
    def image_map(self) -> dict[str, str]:
        """``{base tag: image@digest}``: what a resolver needs to place each function."""
        return {built.tag: built.image for built in self.images}


def build(
    script: Path,
    config: PackagingConfig,
    *,
    cache: Path,
    report: Report = lambda _line: None,
) -> BuildResult:
    """Package ``script`` for every base in ``config`` and push the images."""
    started = time.perf_counter()
    layers = _layers(script, config, LayerCache(cache / "layers"), cache, report)
    target = ImageReference.parse(f"{config.registry}/{config.repository}")
    built: list[BuiltImage] = []
    with RegistryClient(target.registry, insecure=config.is_insecure(target.registry)) as registry:
        for tag, base in config.bases.items():
            built.append(
                _image(tag, base, [layer for layer, _ in layers], config, target, registry,
                       cache, report)
            )  # fmt: skip
        uploaded = registry.bytes_uploaded
    return BuildResult(tuple(built), tuple(layers), time.perf_counter() - started, uploaded)


def _layers(
    script: Path, config: PackagingConfig, layers: LayerCache, cache: Path, report: Report
) -> list[tuple[Layer, bool]]:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    dependencies = (
        contents.requirements_entries(config.requirements, cache, python)
        if config.requirements is not None
        else contents.environment_entries(config.distributions)
    )
    wanted: list[tuple[str, Iterable[Entry]]] = [
        ("dependencies", dependencies),
        ("sematic", contents.sematic_entries()),
        ("worker", contents.worker_entries(config.python)),
        ("code", contents.code_entries(script, config.sources, config.code_root)),
    ]
    result = []
    for name, entries in wanted:
        layer, fresh = layers.build(name, entries)
        state = "built" if fresh else "unchanged"
        report(f"layer {name:<12} {_size(layer.size):>9}  {layer.files:>6,} files  {state}")
        result.append((layer, fresh))
    return result


def _image(
    tag: str,
    base: str,
    layers: list[Layer],
    config: PackagingConfig,
    target: ImageReference,
    registry: RegistryClient,
    cache: Path,
    report: Report,
) -> BuiltImage:
    base_ref = ImageReference.parse(base)
    same_registry = base_ref.registry == target.registry
    source = (
        registry
        if same_registry
        else RegistryClient(base_ref.registry, insecure=config.is_insecure(base_ref.registry))
    )
    try:
        base_manifest = json.loads(
            source.get_image_manifest(base_ref.repository, base_ref.reference).body
        )
        base_config = json.loads(
            source.get_blob(base_ref.repository, base_manifest["config"]["digest"])
        )
        docker = base_manifest.get("mediaType") == DOCKER_MANIFEST
        image_config = _config(base_config, layers, config, tag, base)
        config_blob = _canonical(image_config)
        manifest = _manifest(base_manifest, layers, config_blob, docker)
        before = registry.bytes_uploaded
        uploaded = present = 0
        repository = target.repository
        for descriptor in base_manifest["layers"]:
            digest = descriptor["digest"]
            if registry.blob_exists(repository, digest):
                present += 1
                continue
            blob = _base_blob(source, base_ref.repository, digest, cache)
            mount = base_ref.repository if same_registry else None
            sent = registry.push_blob(repository, digest, blob, mount_from=mount)
            uploaded, present = uploaded + sent, present + (not sent)
        for layer in layers:
            sent = registry.push_blob(repository, layer.digest, layer.path)
            uploaded, present = uploaded + sent, present + (not sent)
        config_digest = _digest(config_blob)
        sent = registry.push_blob(repository, config_digest, config_blob)
        uploaded, present = uploaded + sent, present + (not sent)
    finally:
        if source is not registry:
            source.close()
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    body = _canonical(manifest)
    digest = _digest(body)
    content_tag = f"{tag}-{digest.removeprefix('sha256:')[:16]}"
    written = _put_manifest_once(
        registry, repository, content_tag, Manifest(media_type, body, digest)
    )
    image = f"{target.registry}/{repository}@{digest}"
    sent_bytes = registry.bytes_uploaded - before
    report(
        f"{tag:<8} {image}  uploaded {uploaded} blob(s), {_size(sent_bytes)}; "
        f"{present} already there{'' if written else '; tag unchanged'}"
    )
    return BuiltImage(
        tag, image, f"{target.registry}/{repository}:{content_tag}", uploaded, present,
        sent_bytes, written,
    )  # fmt: skip


def _put_manifest_once(
    registry: RegistryClient, repository: str, tag: str, manifest: Manifest
) -> bool:
    try:
        current = registry.get_manifest(repository, tag)
    except LookupError:
        current = None
    if current is not None and current.digest == manifest.digest:
        return False
    registry.put_manifest(repository, tag, manifest)
    return True


def _base_blob(source: RegistryClient, repository: str, digest: str, cache: Path) -> Path:
    path = cache / "base-blobs" / digest.replace(":", "-")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        source.download_blob(repository, digest, path)
    return path


def _config(
    base: dict[str, Any], layers: list[Layer], config: PackagingConfig, tag: str, base_name: str
) -> dict[str, Any]:
    image = dict(base)
    settings = dict(image.get("config") or {})
    env = [e for e in settings.get("Env") or [] if not e.startswith("PYTHONPATH=")]
    inherited = next(
        (e.split("=", 1)[1] for e in settings.get("Env") or [] if e.startswith("PYTHONPATH=")),
        "",
    )
    python_path = ":".join(p for p in (APP, contents.SITE_PACKAGES, inherited) if p)
    env.append(f"PYTHONPATH={python_path}")
    env.append(f"SEMATIC_BASE_IMAGE_TAG={tag}")
    env.extend(f"{k}={v}" for k, v in sorted(config.env.items()))
    settings["Env"] = env
    settings["WorkingDir"] = APP
    settings["Entrypoint"] = [contents.WORKER]
    settings["Cmd"] = None
    labels = dict(settings.get("Labels") or {})
    labels.update({"dev.sematic.base-tag": tag, "dev.sematic.base-image": base_name})
    settings["Labels"] = labels
    image["config"] = settings
    rootfs = dict(image.get("rootfs") or {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), *(layer.diff_id for layer in layers)]
    image["rootfs"] = rootfs
    history = list(image.get("history") or [])
    history.extend({"created_by": f"sematic build: {layer.name}"} for layer in layers)
    image["history"] = history
    return image


def _manifest(
    base: dict[str, Any], layers: list[Layer], config_blob: bytes, docker: bool
) -> dict[str, Any]:
    layer_type = _DOCKER_LAYER if docker else _OCI_LAYER
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": _DOCKER_CONFIG if docker else _OCI_CONFIG,
            "digest": _digest(config_blob),
            "size": len(config_blob),
        },
        "layers": [
            *base["layers"],
            *({"mediaType": layer_type, "digest": layer.digest, "size": layer.size}
              for layer in layers),
        ],
    }  # fmt: skip
    return manifest


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GB":
            break
    return f"{scaled:.1f} {unit}"
