"""Kubernetes requirements beyond the node selector: validated when written, frozen,
hashable, and recorded as plain JSON."""

from __future__ import annotations

import pytest

import sematic
from sematic import (
    KubernetesRequirements,
    KubernetesSecret,
    KubernetesToleration,
    ResourceRequirements,
)
from sematic.core.errors import ConfigurationError

FULL = KubernetesRequirements(
    node_selector={"pool": "gpu"},
    requests={"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
    limits={"memory": "1Gi", "nvidia.com/gpu": "1"},
    tolerations=(KubernetesToleration(key="gpu", operator="Exists", effect="NoSchedule"),),
    secrets=(
        KubernetesSecret(name="s3", environment={"key": "AWS_KEY"}, files={"cfg": "/etc/s3"}),
    ),
    shared_memory="2Gi",
    labels={"team": "ml"},
    annotations={"note": "x"},
    service_account="trainer",
    pod_template={"spec": {"priorityClassName": "high"}},
)


def test_everything_is_recorded_as_plain_json() -> None:
    assert FULL.to_dict() == {
        "node_selector": {"pool": "gpu"},
        "requests": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
        "limits": {"memory": "1Gi", "nvidia.com/gpu": "1"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "secrets": [{"name": "s3", "environment": {"key": "AWS_KEY"}, "files": {"cfg": "/etc/s3"}}],
        "shared_memory": "2Gi",
        "labels": {"team": "ml"},
        "annotations": {"note": "x"},
        "service_account": "trainer",
        "pod_template": {"spec": {"priorityClassName": "high"}},
    }
    assert KubernetesRequirements().to_dict() == {"node_selector": {}}


def test_values_are_frozen_and_hash_by_content() -> None:
    again = KubernetesRequirements(**{f: getattr(FULL, f) for f in FULL.__dataclass_fields__})
    assert again == FULL and hash(again) == hash(FULL)
    with pytest.raises(TypeError):
        FULL.requests["cpu"] = "1"  # type: ignore[index]
    with pytest.raises(TypeError):
        FULL.pod_template["spec"] = {}  # type: ignore[index]


def test_a_function_keeps_them() -> None:
    @sematic.func(resource_requirements=ResourceRequirements(kubernetes=FULL))
    def step(x: int) -> int:
        return x

    assert step.props.resource_requirements is not None
    assert step.props.resource_requirements.kubernetes.limits["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"requests": {"cpu": "two"}}, "requests\\['cpu'\\] = 'two' is not a Kubernetes quantity"),
        ({"limits": {"memory": "1 GB"}}, "is not a Kubernetes quantity"),
        ({"requests": {"bad name!": "1"}}, "'bad name!' is not a resource name"),
        ({"requests": {"cpu": 2}}, "quote numbers"),
        ({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}, "overcommitted"),
        ({"shared_memory": "lots"}, "shared_memory = 'lots'"),
        ({"pod_template": {"kind": "Pod"}}, "pod_template takes 'metadata' and 'spec', not kind"),
        ({"pod_template": {"spec": {"x": object()}}}, "plain JSON"),
        ({"tolerations": ({"key": "a"},)}, "KubernetesToleration values"),
        ({"secrets": ("s3",)}, "KubernetesSecret values"),
    ],
)
def test_mistakes_are_refused_naming_the_field(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        KubernetesRequirements(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: KubernetesToleration(operator="In"), "'Equal' or 'Exists'"),
        (lambda: KubernetesToleration(key="a", operator="Exists", value="b"), "takes no value"),
        (lambda: KubernetesToleration(effect="Never"), "effect must be"),
        (lambda: KubernetesToleration(effect="NoSchedule", toleration_seconds=5), "NoExecute"),
        (lambda: KubernetesSecret(name=""), "needs the name"),
        (lambda: KubernetesSecret(name="s", environment={"k": "1BAD VAR"}), "not an environment"),
        (lambda: KubernetesSecret(name="s", files={"k": "relative/path"}), "absolute file paths"),
    ],
)
def test_tolerations_and_secrets_are_checked(make: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()  # type: ignore[operator]
