"""Sematic 0.41 programs: ``ResourceRequirements(KubernetesRequirements(...))``."""

from __future__ import annotations

import pytest

import sematic
from sematic import ConfigurationError, KubernetesRequirements, ResourceRequirements

GPU_NODES = KubernetesRequirements(node_selector={"node.kubernetes.io/instance-type": "g4dn"})


def test_resource_requirements_take_kubernetes_requirements_positionally() -> None:
    positional = ResourceRequirements(GPU_NODES)
    assert positional.kubernetes is GPU_NODES
    assert positional == ResourceRequirements(kubernetes=GPU_NODES)
    assert ResourceRequirements().kubernetes == KubernetesRequirements()


def test_positional_resource_requirements_work_in_the_decorator() -> None:
    def train(x: int) -> int:
        return x

    function = sematic.func(standalone=True, resource_requirements=ResourceRequirements(GPU_NODES))(
        train
    )
    assert function.props.inline is False
    assert function.props.resource_requirements == ResourceRequirements(kubernetes=GPU_NODES)


def test_a_wrong_positional_argument_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match="takes a KubernetesRequirements"):
        ResourceRequirements({"cpu": "1"})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ResourceRequirements(GPU_NODES, GPU_NODES)  # type: ignore[call-arg]
