"""Which container image each function runs in.

``sematic build`` produces an image map ``{base tag: image@digest}`` (``"default"``
for functions without ``base_image_tag``); ``sematic.resolvers.settings`` says how it
reaches a resolver.

In every image the user's code sits under ``/app`` as laid out from its code root (the
folder above the script's top package, or the script's folder).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.core.function import Function
from sematic.core.future import Future
from sematic.core.props import FunctionProps

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


def called_from(root: Function) -> list[Function]:
    """The root and the Sematic functions its code names, and theirs, and so on: the
    steps it may run (not every function of its module: one may belong to another
    pipeline). Names read from the function's globals, closures and attributes of the
    modules it names; a step reached only otherwise is not checked before submitting."""
    found: dict[int, Function] = {}
    pending = [root]
    while pending:
        function = pending.pop()
        if id(function) in found:
            continue
        found[id(function)] = function
        pending.extend(_named_in(function.fn))
    return list(found.values())


def _named_in(fn: Any) -> list[Function]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    codes = [code]
    while codes:
        current = codes.pop()
        names.update(current.co_names)
        codes.extend(c for c in current.co_consts if isinstance(c, CodeType))
    scope = getattr(fn, "__globals__", {})
    values = [scope.get(name) for name in names]
    values += [cell.cell_contents for cell in fn.__closure__ or () if _filled(cell)]
    named = [v for v in values if isinstance(v, Function)]
    for module in (v for v in values if isinstance(v, ModuleType)):
        named.extend(
            v for v in (getattr(module, name, None) for name in names) if isinstance(v, Function)
        )
    return named


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True
