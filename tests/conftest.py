"""Shared fixtures."""

from __future__ import annotations

import pytest

import sematic
from tests.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url", "silent"]


@pytest.fixture
def silent() -> sematic.SilentResolver:
    return sematic.SilentResolver()
