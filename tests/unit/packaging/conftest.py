"""Fixtures with real parts for the packaging tests: a registry, base images, a container runner."""

from __future__ import annotations

from tests.harness.containers import container_runner
from tests.harness.images import base_images, target_bases
from tests.harness.registry import auth_registry, registry

__all__ = ["auth_registry", "base_images", "container_runner", "registry", "target_bases"]
