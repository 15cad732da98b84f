"""Sematic: ML pipelines as plain Python functions.

Decorate functions with ``@sematic.func``; calling them builds a graph of futures, which a
resolver runs: ``SilentResolver`` in this process, tracking nothing.
"""

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
from sematic.core.resources import KubernetesRequirements, ResourceRequirements
from sematic.core.retry import RetrySettings
from sematic.resolvers.silent import SilentResolver, SilentRunner

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Function",
    "FunctionCallError",
    "FunctionDefinitionError",
    "FunctionTimeoutError",
    "Future",
    "FutureUsageError",
    "InfrastructureError",
    "KubernetesRequirements",
    "NotInRunError",
    "PipelineCanceledError",
    "PipelineFailedError",
    "ResourceRequirements",
    "RetrySettings",
    "RunContext",
    "SematicError",
    "SilentResolver",
    "SilentRunner",
    "TypeCheckError",
    "UserError",
    "__version__",
    "context",
    "func",
]
