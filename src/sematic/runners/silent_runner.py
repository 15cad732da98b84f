"""Sematic 0.41's import path of ``SilentRunner``."""

from sematic.resolvers.silent import SilentRunner

__all__ = ["SilentRunner"]
