"""Sematic 0.41's import path of ``RetrySettings``."""

from sematic.core.retry import RetrySettings

__all__ = ["RetrySettings"]
