"""Resolving in this process for the compatibility tests, and reading why a pipeline failed."""

from __future__ import annotations

from typing import Any

import pytest

import sematic
from sematic import PipelineFailedError


def resolve(future: sematic.Future) -> Any:
    return future.resolve(sematic.SilentResolver())


def cause_of(future: sematic.Future) -> BaseException:
    """The original error of the pipeline ``future`` ends, which must fail."""
    with pytest.raises(PipelineFailedError) as caught:
        resolve(future)
    cause = caught.value.__cause__
    assert cause is not None
    return cause
