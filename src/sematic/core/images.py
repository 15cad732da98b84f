"""Which container image each function runs in.

``sematic build`` produces an image map ``{base tag: image@digest}`` (``"default"``
for functions without ``base_image_tag``). It reaches a resolver as JSON in the
``SEMATIC_IMAGES`` environment variable, or as a file named by ``SEMATIC_IMAGES_FILE``;
``SEMATIC_DRIVER_IMAGE`` names the image the resolver itself runs in, where inline
functions run.
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
DEFAULT_TAG = "default"


@dataclass(frozen=True, slots=True)
class ImageMap:
    images: Mapping[str, str]
    driver_image: str | None = None

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
        return cls(parse_image_map(text, where), env.get(DRIVER_IMAGE_VARIABLE) or None)

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
