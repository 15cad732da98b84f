"""Sematic 0.41's import paths of the runners (``sematic.runners.local_runner``...)."""
