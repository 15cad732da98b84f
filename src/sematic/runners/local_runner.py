"""Sematic 0.41's import path of ``LocalRunner`` and ``RerunMode``."""

from sematic.resolvers.runners import LocalRunner, RerunMode

__all__ = ["LocalRunner", "RerunMode"]
