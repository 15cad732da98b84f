"""Sematic 0.41's import path of ``CloudResolver``."""

from sematic.resolvers.cloud import CloudResolver

__all__ = ["CloudResolver"]
