"""Two base images: `train` runs on the "cuda" base, everything else on the default one.

    sematic run --build examples/two_bases/pipeline.py 1000

packages this folder into one image per base of sematic.toml, pushes them, then runs the
pipeline with the image map (see the README, "Packaging").
"""

from __future__ import annotations

import os
import sys

import sematic


@sematic.func(inline=False)
def prepare(n: int) -> list[float]:
    """Numbers to learn from (on the default base)."""
    return [i / n for i in range(n)]


@sematic.func(base_image_tag="cuda")
def train(data: list[float]) -> str:
    """A stand-in for GPU work: says which base image it ran on."""
    where = os.environ.get("SEMATIC_BASE_IMAGE_TAG", "this machine")
    return f"mean {sum(data) / len(data):.3f} computed on {where}"


@sematic.func
def pipeline(n: int) -> str:
    return train(prepare(n))


if __name__ == "__main__":
    print(pipeline(int(sys.argv[1]) if len(sys.argv) > 1 else 100).resolve())
