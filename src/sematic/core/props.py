"""Settings of a function, overridable per call with ``future.set(...)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sematic.core.errors import ConfigurationError, UnknownSettingError
from sematic.core.resources import ResourceRequirements
from sematic.core.retry import RetrySettings


@dataclass(frozen=True, slots=True)
class FunctionProps:
    """How a function (or one call of it) is run."""

    name: str
    inline: bool = True
    resource_requirements: ResourceRequirements | None = None
    base_image_tag: str | None = None
    cache: bool = False
    retry: RetrySettings | None = None
    timeout_mins: float | None = None
    tags: tuple[str, ...] = ()
    own_pod: bool = False  # on Kubernetes: a pod of its own, never a warm pod


def resolve_inline(
    inline: bool | None,
    standalone: bool | None,
    resource_requirements: ResourceRequirements | None,
    base_image_tag: str | None,
    where: str,
) -> bool | None:
    """The ``inline`` value implied by the settings given, or None when none says.

    ``standalone`` (Sematic 0.41's spelling) is the opposite of ``inline``. Asking for
    resources or a base image implies a job of its own (``inline=False``); asking for them
    together with ``inline=True`` is a contradiction.
    """
    for flag, label in ((inline, "inline"), (standalone, "standalone")):
        if flag is not None and not isinstance(flag, bool):
            raise ConfigurationError(f"{where}: {label} must be True or False, got {flag!r}")
    if inline is not None and standalone is not None and inline == standalone:
        raise ConfigurationError(
            f"{where}: inline={inline} and standalone={standalone} contradict each other "
            "(standalone is the opposite of inline); pass only inline"
        )
    if inline is None and standalone is not None:
        inline = not standalone
    needs_job = [
        label
        for label, value in (
            ("resource_requirements", resource_requirements),
            ("base_image_tag", base_image_tag),
        )
        if value is not None
    ]
    if needs_job and inline is True:
        raise ConfigurationError(
            f"{where}: {' and '.join(needs_job)} only apply to a function that runs in a job of "
            "its own, but inline=True runs it inside the driver; remove inline=True "
            "(or pass inline=False)"
        )
    if needs_job:
        return False
    return inline


def checked_overrides(where: str, **overrides: Any) -> dict[str, Any]:
    """Validate each given setting; return those that are not None."""
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        _check_setting(where, key, value)
        checked[key] = tuple(value) if key == "tags" else value
    return checked


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_empty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


# Each setting: (is the value valid?, what a valid value is).
_SETTINGS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (_non_empty_str, "a non-empty str"),
    "inline": (lambda v: isinstance(v, bool), "True or False"),
    "cache": (lambda v: isinstance(v, bool), "True or False"),
    "own_pod": (lambda v: isinstance(v, bool), "True or False"),
    "resource_requirements": (
        lambda v: isinstance(v, ResourceRequirements),
        "a sematic.ResourceRequirements",
    ),
    "base_image_tag": (_non_empty_str, "a non-empty str naming a base image (e.g. 'cuda')"),
    "retry": (
        lambda v: isinstance(v, RetrySettings),
        "a sematic.RetrySettings(exceptions=(...), retries=N)",
    ),
    "timeout_mins": (_positive_number, "a number of minutes > 0"),
    "tags": (
        lambda v: isinstance(v, list | tuple) and all(_non_empty_str(t) for t in v),
        "a list of non-empty str",
    ),
}


def _check_setting(where: str, key: str, value: Any) -> None:
    if key not in _SETTINGS:
        raise UnknownSettingError(f"{where}: unknown setting {key!r}")
    is_valid, expected = _SETTINGS[key]
    if not is_valid(value):
        raise ConfigurationError(f"{where}: {key} must be {expected}, got {value!r}")


def with_overrides(props: FunctionProps, overrides: dict[str, Any]) -> FunctionProps:
    return dataclasses.replace(props, **overrides) if overrides else props
