"""Seed 003's CloudResolver, on Kubernetes: inline steps in the driver, ``featurize`` in
its own Job with cpu/memory requests, ``train_model`` in a Job on the "cuda" base, on a
node picked by the seed's node selector.

    sematic run --build examples/cloud/pipeline.py 1000              # detach=True
    sematic run --build examples/cloud/pipeline.py 1000 --no-detach  # the driver here

needs a Sematic server the pods reach (``server_url``), ``$KUBECONFIG``, a node labelled
``node.kubernetes.io/instance-type=g4dn.xlarge`` and, for detach=True, a driver service
account (see the README, "Running on Kubernetes").
"""

from __future__ import annotations

import os
import sys

import sematic
from sematic import CloudResolver, KubernetesRequirements, ResourceRequirements

GPU_RESOURCE_REQS = ResourceRequirements(
    kubernetes=KubernetesRequirements(
        node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    )
)
SMALL = ResourceRequirements(
    kubernetes=KubernetesRequirements(requests={"cpu": "100m", "memory": "64Mi"})
)


@sematic.func
def load(n: int) -> list[float]:
    """Inline: runs in the driver."""
    return [i / n for i in range(n)]


@sematic.func(inline=False, resource_requirements=SMALL)
def featurize(data: list[float]) -> list[float]:
    """Its own Job, on the default base."""
    return [x * x for x in data]


@sematic.func(resource_requirements=GPU_RESOURCE_REQS, base_image_tag="cuda")
def train_model(features: list[float]) -> str:
    """Its own Job on the cuda base, on a g4dn.xlarge node."""
    where = os.environ.get("SEMATIC_BASE_IMAGE_TAG", "this machine")
    return f"mean {sum(features) / len(features):.4f} computed on {where}"


@sematic.func
def pipeline(n: int) -> str:
    return train_model(featurize(load(n)))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    if "--no-detach" in sys.argv:
        print(pipeline(n).resolve(CloudResolver(detach=False)))
    else:
        print(pipeline(n).resolve(CloudResolver()))
