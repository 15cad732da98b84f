"""Sematic 0.41's import path of ``LocalResolver``."""

from sematic.resolvers.local import LocalResolver

__all__ = ["LocalResolver"]
