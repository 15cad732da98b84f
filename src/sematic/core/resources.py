"""Immutable descriptions of what a function needs from the machine that runs it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

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


# A Kubernetes quantity: "2", "500m", "1.5", "512Mi", "4Gi", "1e3" (never negative here).
_QUANTITY = re.compile(
    r"^[+]?((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
)
_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    **{f"{p}i": Decimal(1024) ** (i + 1) for i, p in enumerate("KMGTPE")},
}  # fmt: skip


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity as an exact number: "500m" -> 0.5, "4Gi" -> 4294967296,
    "1e3" -> 1000; a ConfigurationError (a ValueError) for anything else."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ConfigurationError(
            f"{text!r} is not a Kubernetes quantity (e.g. '2', '500m', '512Mi', '4Gi')"
        )
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number + suffix)
    return Decimal(number) * _SUFFIX[suffix]


# A resource name: "cpu", "memory", "ephemeral-storage", "nvidia.com/gpu", ...
_RESOURCE = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _quantities(value: Mapping[str, str], what: str) -> Mapping[str, str]:
    frozen = _frozen_str_map(value, what)
    for name, quantity in frozen.items():
        if not _RESOURCE.match(name):
            raise ConfigurationError(
                f"{what}: {name!r} is not a resource name (e.g. 'cpu', 'memory', "
                "'ephemeral-storage', 'nvidia.com/gpu')"
            )
        if not _QUANTITY.match(quantity):
            raise ConfigurationError(
                f"{what}[{name!r}] = {quantity!r} is not a Kubernetes quantity "
                "(e.g. '2', '500m', '512Mi', '4Gi')"
            )
    return frozen


def _thaw(value: object) -> object:
    """A frozen mapping as a dict, for JSON."""
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@dataclass(frozen=True, kw_only=True)
class KubernetesToleration:
    """Lets a function's pod run on nodes with a matching taint."""

    key: str | None = None
    operator: str = "Equal"  # or "Exists"
    value: str | None = None
    effect: str | None = None  # "NoSchedule", "PreferNoSchedule", "NoExecute" or None (all)
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.operator not in ("Equal", "Exists"):
            raise ConfigurationError(
                f"KubernetesToleration operator must be 'Equal' or 'Exists', got {self.operator!r}"
            )
        if self.operator == "Exists" and self.value is not None:
            raise ConfigurationError("KubernetesToleration: operator 'Exists' takes no value")
        if self.effect not in (None, "NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ConfigurationError(
                "KubernetesToleration effect must be 'NoSchedule', 'PreferNoSchedule', "
                f"'NoExecute' or None, got {self.effect!r}"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ConfigurationError(
                "KubernetesToleration: toleration_seconds applies to effect 'NoExecute' only"
            )

    def to_dict(self) -> dict[str, Any]:
        spelled = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
            "tolerationSeconds": self.toleration_seconds,
        }
        return {name: value for name, value in spelled.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class KubernetesSecret:
    """Keys of the Kubernetes Secret ``name`` given to a function: as environment
    variables (``environment={"key": "VARIABLE"}``) and/or as files
    (``files={"key": "/path/in/the/pod"}``)."""

    name: str
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("KubernetesSecret needs the name of a Secret")
        environment = _frozen_str_map(
            self.environment, f"KubernetesSecret({self.name}).environment"
        )
        files = _frozen_str_map(self.files, f"KubernetesSecret({self.name}).files")
        for variable in environment.values():
            if not _ENV_NAME.match(variable):
                raise ConfigurationError(
                    f"KubernetesSecret({self.name}): {variable!r} is not an environment "
                    "variable name"
                )
        for path in files.values():
            if not path.startswith("/") or path.endswith("/"):
                raise ConfigurationError(
                    f"KubernetesSecret({self.name}): files go to absolute file paths, "
                    f"got {path!r}"
                )
        object.__setattr__(self, "environment", environment)
        object.__setattr__(self, "files", files)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.environment.items())),
                     tuple(sorted(self.files.items()))))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "environment": dict(self.environment),
                "files": dict(self.files)}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class KubernetesRequirements:
    """What a function's Kubernetes job asks of the cluster.

    ``node_selector`` picks the nodes the job may run on, as in seed 003::

        KubernetesRequirements(node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"})

    Beyond it: ``requests`` and ``limits`` ({"cpu": "2", "memory": "4Gi",
    "ephemeral-storage": "10Gi", "nvidia.com/gpu": "1"}), ``tolerations``, ``secrets``,
    ``shared_memory`` (a memory-backed /dev/shm of this size, e.g. "2Gi", for PyTorch data
    loaders), ``labels`` and ``annotations`` of the pod, its ``service_account``, and
    ``pod_template``: a fragment of a pod (``{"spec": {...}, "metadata": {...}}``) merged
    over what Sematic generates, for anything else.
    """

    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    requests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    limits: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[KubernetesToleration, ...] = ()
    secrets: tuple[KubernetesSecret, ...] = ()
    shared_memory: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    service_account: str | None = None
    pod_template: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        frozen = object.__setattr__
        frozen(self, "node_selector", _frozen_str_map(self.node_selector, "node_selector"))
        frozen(self, "requests", _quantities(self.requests, "requests"))
        frozen(self, "limits", _quantities(self.limits, "limits"))
        frozen(self, "labels", _frozen_str_map(self.labels, "labels"))
        frozen(self, "annotations", _frozen_str_map(self.annotations, "annotations"))
        for name, value in self.requests.items():
            if "/" in name and self.limits.get(name, value) != value:
                raise ConfigurationError(
                    f"{name}: an extended resource cannot be overcommitted; give the same "
                    "request and limit (or only one of them)"
                )
        tolerations = tuple(self.tolerations)
        if not all(isinstance(t, KubernetesToleration) for t in tolerations):
            raise ConfigurationError("tolerations must be KubernetesToleration values")
        frozen(self, "tolerations", tolerations)
        secrets = tuple(self.secrets)
        if not all(isinstance(s, KubernetesSecret) for s in secrets):
            raise ConfigurationError("secrets must be KubernetesSecret values")
        frozen(self, "secrets", secrets)
        if self.shared_memory is not None and not _QUANTITY.match(str(self.shared_memory)):
            raise ConfigurationError(
                f"shared_memory = {self.shared_memory!r} is not a Kubernetes quantity (e.g. '2Gi')"
            )
        if not isinstance(self.pod_template, Mapping):
            raise ConfigurationError("pod_template must be a mapping (a fragment of a pod)")
        unknown = set(self.pod_template) - {"metadata", "spec"}
        if unknown:
            raise ConfigurationError(
                f"pod_template takes 'metadata' and 'spec', not {', '.join(sorted(unknown))}"
            )
        try:
            template = json.loads(json.dumps(self.pod_template, default=_thaw))
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"pod_template must be plain JSON data: {error}") from None
        frozen(self, "pod_template", MappingProxyType(template))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: what runs record and the UI shows."""
        spelled: dict[str, Any] = {
            "node_selector": dict(self.node_selector),
            "requests": dict(self.requests),
            "limits": dict(self.limits),
            "tolerations": [t.to_dict() for t in self.tolerations],
            "secrets": [s.to_dict() for s in self.secrets],
            "shared_memory": self.shared_memory,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "service_account": self.service_account,
            "pod_template": dict(self.pod_template),
        }
        return {k: v for k, v in spelled.items() if v not in (None, {}, [])} or {
            "node_selector": {}
        }


@dataclass(frozen=True)
class ResourceRequirements:
    """Resources of the job that runs a function (``inline=False`` functions).

    ``ResourceRequirements(kubernetes=KubernetesRequirements(...))``, or with the
    requirements as the only positional argument, as Sematic 0.41 programs write it.
    """

    kubernetes: KubernetesRequirements = field(default_factory=KubernetesRequirements)

    def __post_init__(self) -> None:
        if not isinstance(self.kubernetes, KubernetesRequirements):
            raise ConfigurationError(
                "ResourceRequirements(kubernetes=...) takes a KubernetesRequirements, "
                f"got {self.kubernetes!r}"
            )
