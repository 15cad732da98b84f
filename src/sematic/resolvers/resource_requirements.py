"""Sematic 0.41's import path of the resource requirements."""

from sematic.core.kubernetes_compat import (
    KubernetesCapabilities,
    KubernetesHostPathMount,
    KubernetesResourceRequirements,
    KubernetesSecretMount,
    KubernetesSecurityContext,
    KubernetesTolerationEffect,
    KubernetesTolerationOperator,
)
from sematic.core.resources import KubernetesToleration, ResourceRequirements

__all__ = [
    "KubernetesCapabilities",
    "KubernetesHostPathMount",
    "KubernetesResourceRequirements",
    "KubernetesSecretMount",
    "KubernetesSecurityContext",
    "KubernetesToleration",
    "KubernetesTolerationEffect",
    "KubernetesTolerationOperator",
    "ResourceRequirements",
]
