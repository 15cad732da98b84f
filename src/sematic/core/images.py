"""Which container image each function runs in.

``sematic build`` produces an image map ``{base tag: image@digest}`` (``"default"``
for functions without ``base_image_tag``). It reaches a resolver as JSON in the
``SEMATIC_IMAGES`` environment variable, or as a file named by ``SEMATIC_IMAGES_FILE``;
``SEMATIC_DRIVER_IMAGE`` names the image the resolver itself runs in, where inline
functions run; ``SEMATIC_INSECURE_REGISTRIES`` (comma-separated hosts) the registries
reached over plain HTTP; ``SEMATIC_IMAGE_SCRIPT`` where the running script is in the images
(when not laid out as below, e.g. by the Bazel rule).

In every image the user's code sits under ``/app`` as laid out from its code root (the
folder above the script's top package, or the script's folder).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sematic.core.errors import ConfigurationError
from sematic.core.function import Function
from sematic.core.future import Future
from sematic.core.props import FunctionProps

IMAGES_VARIABLE = "SEMATIC_IMAGES"
IMAGES_FILE_VARIABLE = "SEMATIC_IMAGES_FILE"
DRIVER_IMAGE_VARIABLE = "SEMATIC_DRIVER_IMAGE"
INSECURE_VARIABLE = "SEMATIC_INSECURE_REGISTRIES"
SCRIPT_VARIABLE = "SEMATIC_IMAGE_SCRIPT"  # where the running script is in the images
DEFAULT_TAG = "default"
APP = "/app"


def code_root(script: Path) -> Path:
    """The folder whose contents become /app: above the script's top package, or the
    script's own folder when it is not in a package."""
    folder = script.resolve().parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def script_in_image(script: Path) -> str:
    """Where ``script`` is in the images built from it."""
    resolved = script.resolve()
    return f"{APP}/{resolved.relative_to(code_root(resolved)).as_posix()}"


@dataclass(frozen=True, slots=True)
class ImageMap:
    images: Mapping[str, str]
    driver_image: str | None = None
    insecure_registries: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ImageMap | None:
        """The map the environment gives, or None when it gives none."""
        env = os.environ if environ is None else environ
        text, where = env.get(IMAGES_VARIABLE), f"${IMAGES_VARIABLE}"
        if not text and env.get(IMAGES_FILE_VARIABLE):
            path = Path(env[IMAGES_FILE_VARIABLE])
            where = str(path)
            try:
                text = path.read_text()
            except OSError as error:
                raise ConfigurationError(f"cannot read the image map {path}: {error}") from error
        if not text:
            return None
        insecure = tuple(h for h in env.get(INSECURE_VARIABLE, "").split(",") if h)
        return cls(parse_image_map(text, where), env.get(DRIVER_IMAGE_VARIABLE) or None, insecure)

    @property
    def driver(self) -> str:
        """The image a driver (and its inline functions) runs in."""
        image = self.driver_image or self.images.get(DEFAULT_TAG)
        if not image:
            raise ConfigurationError(
                "the image map has no default image for the driver to run in (tags: "
                f"{', '.join(sorted(self.images)) or 'none'}): add `base` or bases.default to "
                "sematic.toml and build again"
            )
        return image

    def image_for(self, props: FunctionProps) -> str:
        """The image a run of a function with ``props`` runs in."""
        if props.inline:
            return self.driver_image or self.images.get(DEFAULT_TAG) or ""
        tag = props.base_image_tag or DEFAULT_TAG
        image = self.images.get(tag)
        if image is None:
            raise ConfigurationError(self._missing(props.name, tag))
        return image

    def check(self, functions: Iterable[Function]) -> None:
        """Refuse a function whose ``base_image_tag`` the map lacks, naming it and the tags."""
        for function in functions:
            props = function.props
            if props.inline:
                continue
            tag = props.base_image_tag or DEFAULT_TAG
            if tag not in self.images:
                raise ConfigurationError(self._missing(function.dotted_path, tag))

    def check_pipeline(self, root: Future) -> None:
        """``check`` every function the pipeline's modules define or import, before any runs."""
        self.check(functions_of(root))

    def _missing(self, name: str, tag: str) -> str:
        available = ", ".join(sorted(self.images)) or "none"
        return (
            f"{name} runs on base image {tag!r}, which the image map lacks "
            f"(available: {available}); add it to bases in sematic.toml and build again"
        )


def parse_image_map(text: str, where: str) -> dict[str, str]:
    try:
        loaded = json.loads(text)
    except ValueError as error:
        raise ConfigurationError(f"the image map in {where} is not JSON: {error}") from error
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in loaded.items()
    ):
        raise ConfigurationError(
            f'the image map in {where} must be a JSON object {{"tag": "image"}}, got {text!r}'
        )
    return loaded


def functions_of(root: Future) -> Iterator[Function]:
    """Sematic functions reachable from the root function's module: the ones it defines or
    imports, and so on through their modules."""
    seen_modules: set[str] = set()
    seen: set[int] = set()
    pending = [root.function]
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        yield function
        module = _module(function)
        if module is None or module.__name__ in seen_modules:
            continue
        seen_modules.add(module.__name__)
        pending.extend(v for v in vars(module).values() if isinstance(v, Function))


def _module(function: Function) -> ModuleType | None:
    return sys.modules.get(function.fn.__module__)
