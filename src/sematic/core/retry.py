"""Retry settings of a function."""

from __future__ import annotations

from dataclasses import dataclass

from sematic.core.errors import ConfigurationError


@dataclass(frozen=True)
class RetrySettings:
    """Retry a function up to ``retries`` more times when it raises one of ``exceptions``.

    >>> RetrySettings(exceptions=(ConnectionError,), retries=3)
    RetrySettings(exceptions=(<class 'ConnectionError'>,), retries=3)
    """

    exceptions: tuple[type[BaseException], ...]
    retries: int

    def __post_init__(self) -> None:
        exceptions: object = self.exceptions
        if isinstance(exceptions, type):
            exceptions = (exceptions,)
        if not isinstance(exceptions, tuple | list) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in exceptions
        ):
            raise ConfigurationError(
                f"RetrySettings(exceptions=...) takes a tuple of exception classes, "
                f"got {self.exceptions!r}"
            )
        object.__setattr__(self, "exceptions", tuple(exceptions))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(
                f"RetrySettings(retries=...) takes an int >= 0, got {self.retries!r}"
            )

    def should_retry(self, error: BaseException, attempts_so_far: int) -> bool:
        """True when ``error`` is retriable and fewer than ``retries`` retries were made."""
        return attempts_so_far <= self.retries and isinstance(error, self.exceptions)
