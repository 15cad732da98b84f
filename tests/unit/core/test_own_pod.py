"""``own_pod``: a step that must not share a warm pod says so on its function or call."""

from __future__ import annotations

import pytest

import sematic
from sematic.core.errors import ConfigurationError


@sematic.func(inline=False, own_pod=True)
def alone(x: int) -> int:
    return x


@sematic.func(inline=False)
def shared(x: int) -> int:
    return x


def test_own_pod_is_a_function_setting_and_a_call_setting() -> None:
    assert alone.props.own_pod is True and shared.props.own_pod is False
    assert shared(1).set(own_pod=True).props.own_pod is True
    assert alone(1).set(own_pod=False).props.own_pod is False
    assert shared(1).props.own_pod is False  # the function's setting is left as it was


def test_own_pod_takes_a_bool_only() -> None:
    with pytest.raises(ConfigurationError, match="own_pod must be True or False"):
        shared(1).set(own_pod="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="own_pod must be True or False"):
        sematic.func(inline=False, own_pod=1)(shared.fn)  # type: ignore[arg-type]


def test_warm_pods_settings_are_checked() -> None:
    from sematic import CloudResolver, WarmPods

    with pytest.raises(ConfigurationError, match="idle_seconds"):
        WarmPods(idle_seconds=-1)
    with pytest.raises(ConfigurationError, match="warm_pods"):
        CloudResolver(warm_pods="yes")  # type: ignore[arg-type]
    assert CloudResolver(warm_pods=False).warm_pods == WarmPods(enabled=False)
