"""Shared fixtures."""

from __future__ import annotations

import pytest

import sematic


@pytest.fixture
def silent() -> sematic.SilentResolver:
    return sematic.SilentResolver()
