"""A pipeline with two base images (and a function imported from another module)."""

from __future__ import annotations

import sematic
from tests.pipelines.basic import add


@sematic.func(inline=False)
def prepare(n: int) -> list[float]:
    return [float(i) for i in range(n)]


@sematic.func(base_image_tag="cuda")
def train(data: list[float]) -> float:
    return sum(data)


@sematic.func
def pipeline(n: int) -> float:
    return add(train(prepare(n)), 1.0)
