"""Sematic 0.41's spellings of Kubernetes requirements, as values this version understands.

A program written for Sematic 0.41 builds::

    KubernetesResourceRequirements(
        requests={"cpu": "2", "memory": "8Gi"},
        secret_mounts=KubernetesSecretMount(environment_secrets={"api-key": "API_KEY"}),
        tolerations=[KubernetesToleration(key="gpu", operator=KubernetesTolerationOperator.Exists,
                                          effect=KubernetesTolerationEffect.NoSchedule)],
        mount_expanded_shared_memory=True,
    )

``KubernetesResourceRequirements`` is a :class:`KubernetesRequirements` (it goes wherever one
does) that translates those fields on construction:

- ``requests`` are also the ``limits``, as in 0.41 (explicit ``limits`` win);
- ``secret_mounts`` becomes a :class:`KubernetesSecret` of the Secret 0.41 always read,
  ``sematic-func-secrets``, its file secrets under ``file_secret_root_path``;
- ``mount_expanded_shared_memory`` becomes a memory-backed ``/dev/shm`` as large as the
  memory request (memory the pod is charged for anyway); without a memory request it is
  recorded but no volume is mounted;
- ``security_context`` and ``host_path_mounts`` go into the pod only where the cluster
  settings allow them (``ClusterSettings.allow_security_contexts`` /
  ``allow_host_path_mounts``, off by default), as 0.41 applied them only where the
  cluster's administrator allowed it; otherwise the pipeline is refused before it starts.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from sematic.core.errors import ConfigurationError, InfrastructureError

if sys.version_info >= (3, 11):  # noqa: UP036 - the worker runs in images of 3.10 too
    from enum import StrEnum
else:  # images may run Python 3.10, which has no StrEnum

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)


from sematic.core.resources import KubernetesRequirements, KubernetesSecret

# The Secret every 0.41 secret mount read from.
SECRET_NAME = "sematic-func-secrets"


class KubernetesError(InfrastructureError):
    """A fault of the Kubernetes cluster itself (0.41's name; an :class:`InfrastructureError`)."""


class KubernetesTolerationOperator(StrEnum):
    """How a toleration matches a taint: ``Equal`` (key and value) or ``Exists`` (key only).

    The members are strings, so they go wherever ``"Equal"`` or ``"Exists"`` does.
    """

    Equal = "Equal"
    Exists = "Exists"


class KubernetesTolerationEffect(StrEnum):
    """The taint effect a toleration tolerates.

    The members are strings, so they go wherever ``"NoSchedule"`` etc. does. ``All`` (every
    effect) is what leaving ``effect`` out of a :class:`KubernetesToleration` means.
    """

    NoSchedule = "NoSchedule"
    PreferNoSchedule = "PreferNoSchedule"
    NoExecute = "NoExecute"
    All = "All"


def _str_map(value: Mapping[str, str], what: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(f"{what} must be a mapping of str to str, got {value!r}")
    return MappingProxyType(dict(value))


def _str_tuple(values: Iterable[str], what: str) -> tuple[str, ...]:
    items = tuple(values)
    if isinstance(values, str) or not all(isinstance(v, str) for v in items):
        raise ConfigurationError(f"{what} must be a list of str, got {values!r}")
    return items


@dataclass(frozen=True)
class KubernetesSecretMount:
    """Keys of the Kubernetes Secret ``sematic-func-secrets`` given to a function (0.41).

    ``environment_secrets`` maps a key of the Secret to the environment variable it is
    exposed as; ``file_secrets`` maps a key to a path, relative to ``file_secret_root_path``,
    of the file it is exposed as.
    """

    environment_secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    file_secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    file_secret_root_path: str = "/secrets"

    def __post_init__(self) -> None:
        frozen = object.__setattr__
        frozen(
            self,
            "environment_secrets",
            _str_map(self.environment_secrets, "KubernetesSecretMount.environment_secrets"),
        )
        frozen(
            self,
            "file_secrets",
            _str_map(self.file_secrets, "KubernetesSecretMount.file_secrets"),
        )
        root = self.file_secret_root_path
        if not isinstance(root, str) or not root.startswith("/"):
            raise ConfigurationError(
                "KubernetesSecretMount.file_secret_root_path must be an absolute path, "
                f"got {root!r}"
            )
        for key, path in self.file_secrets.items():
            if path.startswith("/") or not path:
                raise ConfigurationError(
                    f"KubernetesSecretMount.file_secrets[{key!r}] = {path!r}: paths are "
                    "relative to file_secret_root_path"
                )

    def __hash__(self) -> int:
        environment = tuple(sorted(self.environment_secrets.items()))
        files = tuple(sorted(self.file_secrets.items()))
        return hash((environment, files, self.file_secret_root_path))

    def to_secret(self) -> KubernetesSecret | None:
        """The same request as a :class:`KubernetesSecret`, or None when it asks for nothing."""
        if not self.environment_secrets and not self.file_secrets:
            return None
        files = {
            key: posixpath.normpath(posixpath.join(self.file_secret_root_path, path))
            for key, path in self.file_secrets.items()
        }
        return KubernetesSecret(
            name=SECRET_NAME, environment=dict(self.environment_secrets), files=files
        )


@dataclass(frozen=True)
class KubernetesCapabilities:
    """Linux capabilities to ``add`` to and ``drop`` from a container's default set."""

    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "add", _str_tuple(self.add, "KubernetesCapabilities.add"))
        object.__setattr__(self, "drop", _str_tuple(self.drop, "KubernetesCapabilities.drop"))

    def to_dict(self) -> dict[str, Any]:
        return {"add": list(self.add), "drop": list(self.drop)}


@dataclass(frozen=True)
class KubernetesSecurityContext:
    """The security context a function's container asks for (0.41): whether it may gain
    privileges, whether it runs privileged, and its capabilities.

    Applied where ``ClusterSettings.allow_security_contexts`` allows it.
    """

    allow_privilege_escalation: bool
    privileged: bool
    capabilities: KubernetesCapabilities

    def __post_init__(self) -> None:
        for name in ("allow_privilege_escalation", "privileged"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"KubernetesSecurityContext.{name} must be True or False")
        if not isinstance(self.capabilities, KubernetesCapabilities):
            raise ConfigurationError(
                "KubernetesSecurityContext.capabilities must be a KubernetesCapabilities"
            )

    def to_dict(self) -> dict[str, Any]:
        """The Kubernetes ``securityContext`` this describes."""
        return {
            "allowPrivilegeEscalation": self.allow_privilege_escalation,
            "privileged": self.privileged,
            "capabilities": self.capabilities.to_dict(),
        }


_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class KubernetesHostPathMount:
    """A directory of the node (``node_path``) mounted in the pod at ``pod_mount_path``.

    ``name`` is the volume's name (derived from ``pod_mount_path`` when empty); ``type`` is
    Kubernetes' hostPath type ("" means no check). Mounted where
    ``ClusterSettings.allow_host_path_mounts`` allows it.
    """

    node_path: str
    pod_mount_path: str
    name: str = ""
    type: str = ""

    def __post_init__(self) -> None:
        for attribute in ("node_path", "pod_mount_path"):
            path = getattr(self, attribute)
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigurationError(
                    f"KubernetesHostPathMount.{attribute} must be an absolute path, got {path!r}"
                )
        if not self.name:
            object.__setattr__(self, "name", _volume_name(self.pod_mount_path))

    def to_dict(self) -> dict[str, Any]:
        return {"node_path": self.node_path, "pod_mount_path": self.pod_mount_path,
                "name": self.name, "type": self.type}  # fmt: skip


def _volume_name(path: str) -> str:
    """A DNS label naming the volume mounted at ``path``: stable, at most 63 characters."""
    name = "volume-" + _NOT_IN_LABEL.sub("-", path.lower()).strip("-")
    name = name.rstrip("-")
    if len(name) > 63:
        name = name[:56].rstrip("-") + "-" + hashlib.sha256(path.encode()).hexdigest()[:6]
    return name


@dataclass(frozen=True, kw_only=True)
class KubernetesResourceRequirements(KubernetesRequirements):
    """Sematic 0.41's ``KubernetesResourceRequirements``: a :class:`KubernetesRequirements`
    that also takes 0.41's ``secret_mounts``, ``mount_expanded_shared_memory``,
    ``security_context`` and ``host_path_mounts`` (see the module's documentation)."""

    secret_mounts: KubernetesSecretMount = field(default_factory=KubernetesSecretMount)
    mount_expanded_shared_memory: bool = False
    security_context: KubernetesSecurityContext | None = None
    host_path_mounts: tuple[KubernetesHostPathMount, ...] = ()

    def __post_init__(self) -> None:
        frozen = object.__setattr__
        if not isinstance(self.secret_mounts, KubernetesSecretMount):
            raise ConfigurationError("secret_mounts must be a KubernetesSecretMount")
        if not isinstance(self.mount_expanded_shared_memory, bool):
            raise ConfigurationError("mount_expanded_shared_memory must be True or False")
        if self.security_context is not None and not isinstance(
            self.security_context, KubernetesSecurityContext
        ):
            raise ConfigurationError("security_context must be a KubernetesSecurityContext")
        mounts = tuple(self.host_path_mounts)
        if not all(isinstance(m, KubernetesHostPathMount) for m in mounts):
            raise ConfigurationError("host_path_mounts must be KubernetesHostPathMount values")
        frozen(self, "host_path_mounts", mounts)
        secret = self.secret_mounts.to_secret()
        secrets = tuple(self.secrets)
        if secret is not None and secret not in secrets:  # not yet: dataclasses.replace
            frozen(self, "secrets", (*secrets, secret))
        if isinstance(self.requests, Mapping) and isinstance(self.limits, Mapping):
            # 0.41 asked for its requests as limits too.
            frozen(self, "limits", {**self.requests, **self.limits})
        memory = self.requests.get("memory") if isinstance(self.requests, Mapping) else None
        if self.mount_expanded_shared_memory and self.shared_memory is None and memory:
            frozen(self, "shared_memory", memory)
        super().__post_init__()

    def __hash__(self) -> int:
        return super().__hash__()

    def clone(self) -> KubernetesResourceRequirements:
        """0.41's deep copy; these values are immutable, so the value itself."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, with the 0.41 fields this version records but does not apply."""
        spelled = super().to_dict()
        if self.mount_expanded_shared_memory:
            spelled["mount_expanded_shared_memory"] = True
        if self.security_context is not None:
            spelled["security_context"] = self.security_context.to_dict()
        if self.host_path_mounts:
            spelled["host_path_mounts"] = [m.to_dict() for m in self.host_path_mounts]
        return spelled
