"""Sematic: ML pipelines as plain Python functions.

Decorate functions with ``@sematic.func``; calling them builds a graph of futures, which a
resolver runs: ``SilentResolver`` in this process, tracking nothing; ``LocalResolver`` (the
default of ``future.resolve()``) on this machine, tracking every run and artifact;
``CloudResolver`` on Kubernetes, one Job per ``inline=False`` function.

Programs written for Sematic 0.41 run unchanged: its names are here too (``SilentRunner``,
``LocalRunner``, ``CloudRunner`` with ``.run(future)``, ``PipelineRunError``,
``SematicContext``, ``KubernetesResourceRequirements`` and its parts), and
``sematic.testing.mock_sematic_funcs`` mocks functions in tests.
"""

from typing import TYPE_CHECKING, Any

from sematic.core.context import RunContext, context
from sematic.core.errors import (
    ConfigurationError,
    FunctionCallError,
    FunctionDefinitionError,
    FunctionTimeoutError,
    FutureUsageError,
    InfrastructureError,
    NotInRunError,
    PipelineCanceledError,
    PipelineFailedError,
    SematicError,
    TypeCheckError,
    UserError,
)
from sematic.core.function import Function, func
from sematic.core.future import Future
from sematic.core.kubernetes_compat import (
    KubernetesCapabilities,
    KubernetesError,
    KubernetesHostPathMount,
    KubernetesResourceRequirements,
    KubernetesSecretMount,
    KubernetesSecurityContext,
    KubernetesTolerationEffect,
    KubernetesTolerationOperator,
)
from sematic.core.resolver import Resolver
from sematic.core.resolver import set_default_resolver as _set_default_resolver
from sematic.core.resources import (
    KubernetesRequirements,
    KubernetesSecret,
    KubernetesToleration,
    ResourceRequirements,
)
from sematic.core.retry import RetrySettings
from sematic.resolvers.silent import SilentResolver, SilentRunner

if TYPE_CHECKING:
    from sematic.kubernetes.warm import WarmPods
    from sematic.resolvers.cloud import CloudResolver
    from sematic.resolvers.local import LocalResolver
    from sematic.resolvers.runners import (
        CloudRunner,
        LocalRunner,
        RerunMode,
        Runner,
        has_container_image,
    )
    from sematic.storage.serialization import register_serializer

# Sematic 0.41's names for what this version calls otherwise.
PipelineRunError = PipelineFailedError
SematicContext = RunContext

__version__ = "0.1.0"

__all__ = [
    "CloudResolver",
    "CloudRunner",
    "ConfigurationError",
    "Function",
    "FunctionCallError",
    "FunctionDefinitionError",
    "FunctionTimeoutError",
    "Future",
    "FutureUsageError",
    "InfrastructureError",
    "KubernetesCapabilities",
    "KubernetesError",
    "KubernetesHostPathMount",
    "KubernetesRequirements",
    "KubernetesResourceRequirements",
    "KubernetesSecret",
    "KubernetesSecretMount",
    "KubernetesSecurityContext",
    "KubernetesToleration",
    "KubernetesTolerationEffect",
    "KubernetesTolerationOperator",
    "LocalResolver",
    "LocalRunner",
    "NotInRunError",
    "PipelineCanceledError",
    "PipelineFailedError",
    "PipelineRunError",
    "RerunMode",
    "Resolver",
    "ResourceRequirements",
    "RetrySettings",
    "RunContext",
    "Runner",
    "SematicContext",
    "SematicError",
    "SilentResolver",
    "SilentRunner",
    "TypeCheckError",
    "register_serializer",
    "UserError",
    "WarmPods",
    "__version__",
    "context",
    "func",
    "has_container_image",
]

# Sematic 0.41's runner spellings: imported, with the resolvers they extend, on first use.
_RUNNER_NAMES = frozenset(
    {"CloudRunner", "LocalRunner", "RerunMode", "Runner", "has_container_image"}
)


def __getattr__(name: str) -> Any:
    # LocalResolver brings SQLAlchemy and friends: import it when first asked for.
    if name == "LocalResolver":
        from sematic.resolvers.local import LocalResolver

        return LocalResolver
    if name == "CloudResolver":  # brings the kubernetes client
        from sematic.resolvers.cloud import CloudResolver

        return CloudResolver
    if name == "WarmPods":  # CloudResolver(warm_pods=WarmPods(...))
        from sematic.kubernetes.warm import WarmPods

        return WarmPods
    if name in _RUNNER_NAMES:
        from sematic.resolvers import runners

        return getattr(runners, name)
    if name == "register_serializer":
        from sematic.storage.serialization import register_serializer

        return register_serializer
    raise AttributeError(f"module 'sematic' has no attribute {name!r}")


def _default_resolver() -> Resolver:
    from sematic.resolvers.local import LocalResolver

    return LocalResolver()


_set_default_resolver(_default_resolver)
