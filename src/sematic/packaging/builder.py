"""``sematic build``: one image per base, pushed to the configured registry, by content.

Each image is its base image plus four layers (dependencies, Sematic, the worker entry
point, the user's code), the configured environment, ``/app`` as working directory and
the worker as entry point. The dependencies are installed for what the base runs (its
Python version, ABI and platform, read from the base itself: ``target.py``), so a base with
another Python or architecture than this machine gets wheels built for it; bases with the
same target share that layer. A base that is an index of platforms gives one image per
configured platform, and an index over them when there are several. Blobs the registry
has are not sent again; the tag is written last, only after every blob is in place, so a
failed build leaves no tag behind.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sematic.core import variables
from sematic.core.errors import ConfigurationError, ImageCheckError
from sematic.core.images import APP
from sematic.packaging import contents
from sematic.packaging.check import CheckResult, check_image
from sematic.packaging.config import PackagingConfig
from sematic.packaging.dependencies import SKIP, install_dependencies
from sematic.packaging.layers import Entry, Layer, LayerCache, cached_blob, tree_entries
from sematic.packaging.reference import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from sematic.packaging.registry import ImageReference, Manifest, RegistryClient
from sematic.packaging.target import Target, detect_target

Report = Callable[[str], None]

_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# Bump when detect_target learns something that changes its answers: cached ones are redone.
_TARGET_RECIPE = "1"


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str  # the base's name in the config ("default", "cuda")
    image: str  # REGISTRY/REPOSITORY@sha256:... (an index when built for several platforms)
    pushed_tag: str  # REGISTRY/REPOSITORY:TAG, the tag written for it
    blobs_uploaded: int
    blobs_present: int
    bytes_uploaded: int
    manifest_written: bool
    targets: tuple[Target, ...] = ()  # what each platform's image runs, in config order
    platform_images: tuple[str, ...] = ()  # REGISTRY/REPOSITORY@sha256:... per target


@dataclass(frozen=True, slots=True)
class BuildResult:
    images: tuple[BuiltImage, ...]
    layers: tuple[tuple[Layer, bool], ...]  # our layers, and whether each was built now
    seconds: float
    bytes_uploaded: int = field(default=0)
    checks: tuple[CheckResult, ...] = ()

    @property
    def image_map(self) -> dict[str, str]:
        """``{base tag: image@digest}``: what a resolver needs to place each function."""
        return {built.tag: built.image for built in self.images}


@dataclass(frozen=True, slots=True)
class _PlatformBase:
    """One platform's image of a base: its manifest, config and what it runs."""

    manifest: dict[str, Any]
    config: dict[str, Any]
    target: Target


@dataclass(frozen=True, slots=True)
class _Base:
    tag: str
    name: str  # as the settings give it
    reference: ImageReference
    source: RegistryClient  # the base's registry (the target registry when the same)
    platforms: tuple[_PlatformBase, ...]


def build(
    script: Path,
    config: PackagingConfig,
    *,
    cache: Path,
    report: Report = lambda _line: None,
    check: bool = False,
) -> BuildResult:
    """Package ``script`` for every base in ``config`` and push the images.

    Every base is read first (its platforms' manifests, configs and layers, to learn the
    Python and platform each runs), then the dependencies are installed for each distinct
    target; only then is anything pushed, so a base without Python or a dependency with no
    wheel for a target fails the build with nothing pushed. ``check``: run each image's
    worker self-check under runc afterwards (images this machine cannot run are skipped)
    and raise ``ImageCheckError`` when one fails.
    """
    started = time.perf_counter()
    layer_cache = LayerCache(cache / "layers")
    destination = ImageReference.parse(f"{config.registry}/{config.repository}")
    with (
        RegistryClient(destination.registry, insecure=config.is_insecure(destination.registry))
        as registry,
        ExitStack() as sources,
    ):  # fmt: skip
        bases = [
            _read_base(tag, name, config, destination, registry, sources, cache, report)
            for tag, name in config.bases.items()
        ]
        targets = {p.target.key: p.target for base in bases for p in base.platforms}
        dependencies = {
            key: _dependency_layer(target, config, layer_cache, cache, report)
            for key, target in targets.items()
        }
        shared = _shared_layers(script, config, layer_cache, report)
        built = [
            _image(base, dependencies, [layer for layer, _ in shared], config, destination,
                   registry, cache, report)
            for base in bases
        ]  # fmt: skip
        uploaded = registry.bytes_uploaded
        checks = _check(built, registry, destination, cache, report) if check else ()
    layers = (*dependencies.values(), *shared)
    return BuildResult(tuple(built), tuple(layers), time.perf_counter() - started, uploaded, checks)


def _read_base(
    tag: str,
    name: str,
    config: PackagingConfig,
    destination: ImageReference,
    registry: RegistryClient,
    sources: ExitStack,
    cache: Path,
    report: Report,
) -> _Base:
    reference = ImageReference.parse(name)
    source = (
        registry
        if reference.registry == destination.registry
        else sources.enter_context(
            RegistryClient(reference.registry, insecure=config.is_insecure(reference.registry))
        )
    )
    platforms = []
    for platform in config.platforms:
        os_name, architecture, _variant = _split_platform(platform)
        manifest = json.loads(
            source.get_image_manifest(
                reference.repository, reference.reference, os=os_name, architecture=architecture
            ).body
        )
        image_config = json.loads(
            source.get_blob(reference.repository, manifest["config"]["digest"])
        )
        actual = (image_config.get("os"), image_config.get("architecture"))
        if actual != (os_name, architecture):
            raise ConfigurationError(
                f"base image {name} ({tag}) is built for {actual[0]}/{actual[1]}, not "
                f"{platform}: images are built for platforms = {list(config.platforms)} "
                f"({config.origin}); use a base built for {platform}, or set platforms"
            )
        target = _target(name, reference, source, manifest, image_config, config, cache)
        report(f"base {tag:<8} {platform:<12} {target.describe()} ({target.interpreter})")
        platforms.append(_PlatformBase(manifest, image_config, target))
    return _Base(tag, name, reference, source, tuple(platforms))


def _target(
    name: str,
    reference: ImageReference,
    source: RegistryClient,
    manifest: dict[str, Any],
    image_config: dict[str, Any],
    config: PackagingConfig,
    cache: Path,
) -> Target:
    """What the base runs, read from its config and layers; kept per config digest."""
    key = hashlib.sha256(
        f"{manifest['config']['digest']}\0{config.python}\0{_TARGET_RECIPE}".encode()
    ).hexdigest()[:32]
    known = cache / "targets" / f"{key}.json"
    try:
        return Target.from_json(json.loads(known.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    layers = [
        cached_blob(source, reference.repository, str(d["digest"]), cache)
        for d in manifest["layers"]
    ]
    target = detect_target(name, image_config, layers, python=config.python)
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text(json.dumps(target.to_json()))
    return target


def _split_platform(platform: str) -> tuple[str, str, str]:
    os_name, _, rest = platform.partition("/")
    architecture, _, variant = rest.partition("/")
    return os_name, architecture, variant


def _dependency_layer(
    target: Target, config: PackagingConfig, layers: LayerCache, cache: Path, report: Report
) -> tuple[Layer, bool]:
    folder = install_dependencies(
        target,
        cache=cache,
        requirements=config.requirements,
        distributions=config.distributions,
        report=report,
    )
    entries = tree_entries(folder, contents.SITE_PACKAGES, skip=SKIP)
    layer, fresh = layers.build(f"dependencies ({target.key})", entries)
    _report_layer(report, layer, fresh)
    return layer, fresh


def _shared_layers(
    script: Path, config: PackagingConfig, layers: LayerCache, report: Report
) -> list[tuple[Layer, bool]]:
    """The layers every image takes whatever its target: Sematic, the worker, the code."""
    wanted: list[tuple[str, Iterable[Entry]]] = [
        ("sematic", contents.sematic_entries()),
        ("worker", contents.worker_entries(config.python)),
        ("code", contents.code_entries(script, config.sources, config.code_root)),
    ]
    result = []
    for name, entries in wanted:
        layer, fresh = layers.build(name, entries)
        _report_layer(report, layer, fresh)
        result.append((layer, fresh))
    return result


def _report_layer(report: Report, layer: Layer, fresh: bool) -> None:
    state = "built" if fresh else "unchanged"
    report(f"layer {layer.name:<12} {_size(layer.size):>9}  {layer.files:>6,} files  {state}")


def _image(
    base: _Base,
    dependencies: dict[str, tuple[Layer, bool]],
    shared: list[Layer],
    config: PackagingConfig,
    destination: ImageReference,
    registry: RegistryClient,
    cache: Path,
    report: Report,
) -> BuiltImage:
    """The base's image for each platform, then (for several) an index over them; tagged
    ``TAG-<digest prefix>`` once everything it names is in the registry."""
    repository = destination.repository
    before = registry.bytes_uploaded
    uploaded = present = 0
    pushed: list[tuple[Manifest, _PlatformBase]] = []
    for platform in base.platforms:
        layers = [dependencies[platform.target.key][0], *shared]
        for descriptor in platform.manifest["layers"]:
            digest = str(descriptor["digest"])
            if registry.blob_exists(repository, digest):
                present += 1
                continue
            blob = cached_blob(base.source, base.reference.repository, digest, cache)
            mount = base.reference.repository if base.source is registry else None
            sent = registry.push_blob(repository, digest, blob, mount_from=mount)
            uploaded, present = uploaded + sent, present + (not sent)
        for layer in layers:
            sent = registry.push_blob(repository, layer.digest, layer.path)
            uploaded, present = uploaded + sent, present + (not sent)
        image_config = _config(platform.config, layers, config, base.tag, base.name)
        config_blob = _canonical(image_config)
        sent = registry.push_blob(repository, _digest(config_blob), config_blob)
        uploaded, present = uploaded + sent, present + (not sent)
        docker = platform.manifest.get("mediaType") == DOCKER_MANIFEST
        body = _canonical(_manifest(platform.manifest, layers, config_blob, docker))
        pushed.append((Manifest(DOCKER_MANIFEST if docker else OCI_MANIFEST, body,
                                _digest(body)), platform))  # fmt: skip
    if len(pushed) == 1:
        top = pushed[0][0]
    else:
        for manifest, _ in pushed:  # an index may only name manifests the registry has
            registry.put_manifest(repository, manifest.digest, manifest)
        body = _canonical(_index(pushed))
        top = Manifest(OCI_INDEX, body, _digest(body))
    content_tag = f"{base.tag}-{top.digest.removeprefix('sha256:')[:16]}"
    written = _put_manifest_once(registry, repository, content_tag, top)
    image = f"{destination.registry}/{repository}@{top.digest}"
    sent_bytes = registry.bytes_uploaded - before
    report(
        f"{base.tag:<8} {image}  uploaded {uploaded} blob(s), {_size(sent_bytes)}; "
        f"{present} already there{'' if written else '; tag unchanged'}"
    )
    return BuiltImage(
        base.tag, image, f"{destination.registry}/{repository}:{content_tag}", uploaded,
        present, sent_bytes, written, tuple(p.target for _, p in pushed),
        tuple(f"{destination.registry}/{repository}@{m.digest}" for m, _ in pushed),
    )  # fmt: skip


def _index(pushed: list[tuple[Manifest, _PlatformBase]]) -> dict[str, Any]:
    entries = []
    for manifest, platform in pushed:
        os_name, architecture, variant = (
            platform.target.os, platform.target.architecture, platform.target.variant
        )  # fmt: skip
        described: dict[str, str] = {"os": os_name, "architecture": architecture}
        if variant:
            described["variant"] = variant
        entries.append(
            {"mediaType": manifest.media_type, "digest": manifest.digest,
             "size": len(manifest.body), "platform": described}
        )  # fmt: skip
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}


def _check(
    built: list[BuiltImage],
    registry: RegistryClient,
    destination: ImageReference,
    cache: Path,
    report: Report,
) -> tuple[CheckResult, ...]:
    results = []
    for image in built:
        for target, reference in zip(image.targets, image.platform_images, strict=True):
            digest = reference.rpartition("@")[2]
            result = check_image(registry, destination.repository, digest, cache=cache)
            results.append(result)
            if result.skipped is not None:
                report(f"check {image.tag:<8} {target.platform}: skipped, {result.skipped}")
            else:
                state = "ok" if result.ok else "FAILED"
                report(f"check {image.tag:<8} {target.platform}: {state} in "
                       f"{result.seconds:.1f} s  {result.output.strip()[-300:]}")  # fmt: skip
    failed = [r for r in results if r.skipped is None and not r.ok]
    if failed:
        raise ImageCheckError(
            "the self-check failed inside "
            + "; ".join(f"{r.image}: {r.output.strip()[-800:]}" for r in failed)
            + ". The image cannot run its steps: read the error above (often a dependency "
            "that is missing or built for another Python)"
        )
    return tuple(results)


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
    env.append(f"{variables.BASE_IMAGE_TAG}={tag}")
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
