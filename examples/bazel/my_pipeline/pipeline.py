"""The pipeline of the Bazel example: `train` on the "cuda" base, the rest on the default."""

from __future__ import annotations

import os

import sematic


@sematic.func(inline=False)
def prepare(n: int) -> list[float]:
    return [i / n for i in range(n)]


@sematic.func(base_image_tag="cuda")
def train(data: list[float]) -> str:
    where = os.environ.get("SEMATIC_BASE_IMAGE_TAG", "this machine")
    return f"mean {sum(data) / len(data):.3f} computed on {where} (VAR={os.environ.get('VAR')})"


@sematic.func
def pipeline(n: int) -> str:
    return train(prepare(n))
