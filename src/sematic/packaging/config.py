"""Packaging settings, kept beside the pipeline: ``sematic.toml`` or ``[tool.sematic]``.

The nearest ``sematic.toml`` or ``pyproject.toml`` with a ``[tool.sematic]`` table, from
the script's folder upwards, holds them (the same meanings as the Bazel macro's)::

    registry = "ghcr.io"                 # where images are pushed
    repository = "acme/pipelines"        # ... under this repository
    base = "python:3.11-slim"            # one base image; or several:
    [bases]                              # ("default" doubles as base; both and
    default = "python:3.11-slim"         #  different is an error)
    cuda = "nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    [env]                                # environment variables of every image
    LOG_LEVEL = "info"
    # requirements = "requirements.lock" # third-party dependencies; without it, the
    #                                    # distributions installed in this environment,
    # distributions = ["torch"]          # ... or only these, Sematic's, and what they need
    # sources = ["lib", "configs"]       # more source paths (beside the script's package)
    # insecure_registries = ["127.0.0.1:5000"]  # plain HTTP, only for these hosts
    # python = "python3"                 # the interpreter in the bases
    # platforms = ["linux/amd64"]        # the cluster's platform(s); several give an index
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sematic.core.errors import ConfigurationError

DEFAULT_TAG = "default"
_KEYS = {
    "registry",
    "repository",
    "base",
    "bases",
    "env",
    "requirements",
    "distributions",
    "sources",
    "insecure_registries",
    "python",
    "platforms",
}
DEFAULT_PLATFORMS = ("linux/amd64",)
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")


@dataclass(frozen=True, slots=True)
class PackagingConfig:
    """What ``sematic build`` needs; paths are absolute."""

    registry: str
    repository: str
    bases: dict[str, str]
    origin: Path  # the file the settings came from
    env: dict[str, str] = field(default_factory=dict)
    requirements: Path | None = None
    distributions: tuple[str, ...] | None = None  # None: every installed distribution
    sources: tuple[Path, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    python: str = "python3"
    # The platforms images are built for ("os/architecture[/variant]"): the cluster's.
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    # The folder that becomes /app (default: the script's code root); a Bazel target's
    # runfiles tree.
    code_root: Path | None = None

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure_registries


def find_config(script: Path) -> PackagingConfig:
    """The settings nearest to ``script``; ConfigurationError when there are none."""
    start = script.resolve().parent
    for folder in (start, *start.parents):
        dedicated = folder / "sematic.toml"
        if dedicated.is_file():
            return parse_config(read_toml(dedicated), dedicated)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            table = read_toml(pyproject).get("tool", {}).get("sematic")
            if table is not None:
                return parse_config(_table(table, pyproject, "[tool.sematic]"), pyproject)
    raise ConfigurationError(
        f"no packaging settings for {script}: add a sematic.toml beside it (or a "
        "[tool.sematic] table in pyproject.toml) with at least registry, repository and base"
    )


def parse_config(data: dict[str, Any], origin: Path) -> PackagingConfig:
    """Validate the settings read from ``origin``; every error names the file and the key."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigurationError(
            f"{origin}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    here = origin.parent
    requirements = _optional_str(data, "requirements", origin)
    required = here / requirements if requirements else None
    if required is not None and not required.is_file():
        raise ConfigurationError(f"{origin}: requirements file {required} does not exist")
    distributions = (
        tuple(_str_list(data, "distributions", origin)) if "distributions" in data else None
    )
    if required is not None and distributions is not None:
        raise ConfigurationError(
            f"{origin}: requirements and distributions both name the dependencies; keep one"
        )
    sources = tuple(here / s for s in _str_list(data, "sources", origin))
    for source in sources:
        if not source.exists():
            raise ConfigurationError(f"{origin}: source path {source} does not exist")
    return PackagingConfig(
        registry=_required_str(data, "registry", origin).rstrip("/"),
        repository=_required_str(data, "repository", origin).strip("/"),
        bases=_bases(data, origin),
        origin=origin,
        env=_str_table(data, "env", origin),
        requirements=required,
        distributions=distributions,
        sources=sources,
        insecure_registries=tuple(_str_list(data, "insecure_registries", origin)),
        python=_optional_str(data, "python", origin) or "python3",
        platforms=_platforms(data, origin),
    )


def _platforms(data: dict[str, Any], origin: Path) -> tuple[str, ...]:
    if "platforms" not in data:
        return DEFAULT_PLATFORMS
    platforms = _str_list(data, "platforms", origin)
    bad = [p for p in platforms if not _PLATFORM.fullmatch(p)]
    if bad or not platforms:
        raise ConfigurationError(
            f"{origin}: platforms must list OS/ARCHITECTURE[/VARIANT] names such as "
            f'"linux/amd64" or "linux/arm64", got {bad or platforms!r}'
        )
    if len(set(platforms)) != len(platforms):
        raise ConfigurationError(f"{origin}: platforms lists a platform twice: {platforms!r}")
    return tuple(platforms)


def _bases(data: dict[str, Any], origin: Path) -> dict[str, str]:
    base = _optional_str(data, "base", origin)
    bases = _str_table(data, "bases", origin)
    if base is not None:
        if DEFAULT_TAG in bases and bases[DEFAULT_TAG] != base:
            raise ConfigurationError(
                f"{origin}: base = {base!r} and bases.default = {bases[DEFAULT_TAG]!r} "
                "disagree; keep one of them"
            )
        bases = {DEFAULT_TAG: base, **bases}
    if not bases:
        raise ConfigurationError(
            f'{origin}: no base image: set base = "IMAGE" or a [bases] table with a "default"'
        )
    return dict(sorted(bases.items()))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"{path}: cannot be read as TOML: {error}") from error


def _table(value: object, origin: Path, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{origin}: {what} must be a table")
    return value


def _required_str(data: dict[str, Any], key: str, origin: Path) -> str:
    value = _optional_str(data, key, origin)
    if not value:
        raise ConfigurationError(f"{origin}: {key} is required (a non-empty string)")
    return value


def _optional_str(data: dict[str, Any], key: str, origin: Path) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{origin}: {key} must be a string, got {value!r}")
    return value


def _str_list(data: dict[str, Any], key: str, origin: Path) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{origin}: {key} must be a list of strings, got {value!r}")
    return value


def _str_table(data: dict[str, Any], key: str, origin: Path) -> dict[str, str]:
    table = _table(data.get(key, {}), origin, key)
    for name, value in table.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{origin}: {key}.{name} must be a non-empty string")
    return dict(table)
