"""Sematic 0.41's import path of ``SilentResolver``."""

from sematic.resolvers.silent import SilentResolver

__all__ = ["SilentResolver"]
