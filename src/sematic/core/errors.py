"""One exception tree for everything the tool raises.

::

    SematicError
    ├── UserError                  a mistake in the pipeline or its settings; never retried
    │   ├── FunctionDefinitionError  @sematic.func refused the function
    │   ├── FunctionCallError        a function was called with missing or unknown arguments
    │   ├── TypeCheckError           a value or a future does not match an annotation
    │   ├── FutureUsageError         a future used where a concrete value is needed, or unused
    │   ├── ConfigurationError       bad settings or resolver arguments
    │   │   └── UnknownSettingError    a setting name that does not exist (future.set(abc=1))
    │   ├── FunctionTimeoutError     a function ran past its timeout_mins
    │   ├── NotInRunError            sematic.context() called outside a running function
    │   ├── PipelineFinishedError    cancel asked of a pipeline that already finished
    │   ├── ImageNotFoundError       a base image (or its tag or digest) is not in its registry
    │   ├── WorkerFailedError        a worker pod ended for what the function did (out of
    │   │                            memory, the interpreter crashed) without reporting
    │   ├── ImageCheckError          an image `sematic build --check` built cannot run its
    │   │                            worker (a dependency missing or built for another Python)
    │   └── RegistryAuthError        a registry refused the credentials (or there were none)
    ├── InfrastructureError        a fault of the machinery (worker lost, store down);
    │   │                          retried by default
    │   ├── WorkerLostError          a worker process or pod died without reporting
    │   └── RegistryError            a registry is unreachable or answered against the spec
    ├── StoreError                 a run or artifact cannot be read back
    │   ├── RunNotFoundError         no run with that id
    │   ├── ArtifactMissingError     the payload of an artifact is gone
    │   ├── ArtifactCorruptedError   the payload does not match its id
    │   └── ApiKeyNotFoundError      no API key with that id
    ├── IllegalTransitionError     the engine was asked for a transition its table forbids
    │                              (a bug in the tool, never in a pipeline)
    ├── PipelineFailedError        resolve() of a pipeline whose function failed; names
    │                              the function and chains the original exception
    └── PipelineCanceledError      resolve() of a pipeline that was canceled

Some errors are also built-in exceptions, so that ordinary ``except`` clauses, and programs
written for Sematic 0.41, keep working:

- ``TypeCheckError`` and ``FunctionCallError`` are also ``TypeError``.
- ``FunctionDefinitionError`` is both a ``TypeError`` and a ``ValueError`` (0.41 raised one
  or the other, depending on the mistake).
- ``FutureUsageError`` is a ``NotImplementedError`` (as 0.41's operations on futures were).
- ``ConfigurationError`` is a ``ValueError``; ``UnknownSettingError`` is also a ``TypeError``
  (what Python raises for an unexpected keyword argument).
- ``PipelineFailedError`` carries the original exception as both ``__cause__`` and
  ``__context__`` (0.41 code walks ``__context__``).
"""

from __future__ import annotations


class SematicError(Exception):
    """Root of every error this tool raises."""


class UserError(SematicError):
    """A mistake in the user's pipeline or settings. Not retried unless asked for."""


class FunctionDefinitionError(UserError, TypeError, ValueError):
    """``@sematic.func`` cannot accept the decorated function.

    Also a ``TypeError`` and a ``ValueError``: Sematic 0.41 raised one or the other for the
    same mistakes, and code written for it catches them.
    """


class FunctionCallError(UserError, TypeError):
    """A Sematic function was called with missing, duplicate or unknown arguments."""


class TypeCheckError(UserError, TypeError):
    """A value, or the declared type of a future, does not match an annotation."""


class FutureUsageError(UserError, NotImplementedError):
    """A future was used where a concrete value is needed, or was created and never used.

    Also a ``NotImplementedError``, what Sematic 0.41 raised for operations on futures.
    """


class ConfigurationError(UserError, ValueError):
    """Invalid settings passed to a decorator, a resolver or a value object."""


class UnknownSettingError(ConfigurationError, TypeError):
    """A setting that does not exist was named, e.g. ``future.set(abc=1)``.

    A ``ValueError`` (as in Sematic 0.41) and a ``TypeError`` (as for any unexpected
    keyword argument in Python).
    """


class FunctionTimeoutError(UserError, TimeoutError):
    """A function ran longer than its ``timeout_mins``."""


class NotInRunError(UserError, RuntimeError):
    """``sematic.context()`` was called outside a running Sematic function."""


class PipelineFinishedError(UserError):
    """Cancel was asked of a pipeline that has already finished."""


class ImageNotFoundError(UserError, LookupError):
    """A container image, tag or digest named in the settings is not in its registry."""


class WorkerFailedError(UserError):
    """A worker pod ended without reporting, for what the function did: it ran out of
    memory (OOMKilled) or its interpreter exited. ``cause`` names the reason."""

    def __init__(self, message: str, *, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class ImageCheckError(UserError):
    """An image ``sematic build --check`` built failed its self-check inside the image."""


class RegistryAuthError(UserError):
    """A container registry refused the credentials, or needed some and found none."""


class InfrastructureError(SematicError):
    """The machinery failed (a worker died, a store was unreachable). Retried by default."""


class WorkerLostError(InfrastructureError):
    """A worker process or pod died without reporting an outcome, not for what the function
    did (the pod was evicted, deleted, never scheduled, its image not pulled). ``cause``
    names the reason."""

    def __init__(self, message: str, *, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class RegistryError(InfrastructureError):
    """A container registry is unreachable, or answered in a way the OCI spec does not allow."""


class StoreError(SematicError):
    """A run or an artifact cannot be read back."""


class RunNotFoundError(StoreError, LookupError):
    """No run has this id."""


class ArtifactMissingError(StoreError):
    """The artifact store has no payload for this id."""


class ArtifactCorruptedError(StoreError):
    """The payload read back does not hash to its artifact id.

    A resolution treats such an artifact (like a missing one) as absent: a cached or
    recorded output is not reused, its step executes again and storing the output replaces
    the damaged bytes. Only an input of a pipeline that is rerun cannot be recomputed.
    """


class ApiKeyNotFoundError(StoreError, LookupError):
    """No API key has this id."""


class IllegalTransitionError(SematicError):
    """The engine was asked for a state transition its table forbids: a bug in the tool."""


class PipelineFailedError(SematicError):
    """A pipeline did not resolve because one of its functions failed.

    The original exception, with its traceback, is both ``__cause__`` and ``__context__``.
    """

    def __init__(self, message: str, *, run_id: str, function_name: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.function_name = function_name


class PipelineCanceledError(SematicError):
    """A pipeline was canceled before it resolved."""

    def __init__(self, message: str, *, root_id: str) -> None:
        super().__init__(message)
        self.root_id = root_id
