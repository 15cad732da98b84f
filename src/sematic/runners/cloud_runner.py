"""Sematic 0.41's import path of ``CloudRunner``."""

from sematic.resolvers.runners import CloudRunner

__all__ = ["CloudRunner"]
