"""Immutable descriptions of what a function needs from the machine that runs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sematic.core.errors import ConfigurationError


def _frozen_str_map(value: Mapping[str, str], what: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} must be a mapping of str to str, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ConfigurationError(
                f"{what} must map str to str; {key!r}: {item!r} is not (quote numbers, e.g. '1')"
            )
    return MappingProxyType(dict(value))


@dataclass(frozen=True, kw_only=True)
class KubernetesRequirements:
    """What a function's Kubernetes job asks of the cluster.

    ``node_selector`` picks the nodes the job may run on, as in seed 003::

        KubernetesRequirements(node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"})
    """

    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "node_selector", _frozen_str_map(self.node_selector, "node_selector")
        )

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.node_selector.items())))


@dataclass(frozen=True, kw_only=True)
class ResourceRequirements:
    """Resources of the job that runs a function (``inline=False`` functions)."""

    kubernetes: KubernetesRequirements = field(default_factory=KubernetesRequirements)

    def __post_init__(self) -> None:
        if not isinstance(self.kubernetes, KubernetesRequirements):
            raise ConfigurationError(
                "ResourceRequirements(kubernetes=...) takes a KubernetesRequirements, "
                f"got {self.kubernetes!r}"
            )
