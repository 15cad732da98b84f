"""A registry on 127.0.0.1 for the Bazel rules' images."""

from __future__ import annotations

from tests.harness.registry import registry

__all__ = ["registry"]
