"""@sematic.func accepts plain annotated functions and refuses everything else clearly."""

from __future__ import annotations

import pytest

import sematic
from sematic import (
    ConfigurationError,
    FunctionDefinitionError,
    KubernetesRequirements,
    ResourceRequirements,
    RetrySettings,
)

GPU = ResourceRequirements(
    kubernetes=KubernetesRequirements(
        node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    )
)


def plain(x: int) -> int:
    return x


def test_bare_and_called_decorator_give_functions() -> None:
    bare = sematic.func(plain)
    called = sematic.func()(plain)
    assert isinstance(bare, sematic.Function)
    assert bare.props.inline is True and called.props.inline is True
    assert bare.__name__ == "plain" and bare.__doc__ == plain.__doc__
    assert bare.dotted_path == f"{__name__}.plain"


def test_settings_are_recorded() -> None:
    retry = RetrySettings(exceptions=(ValueError,), retries=2)
    f = sematic.func(inline=False, cache=True, retry=retry, timeout_mins=3)(plain)
    assert (f.props.inline, f.props.cache, f.props.retry, f.props.timeout_mins) == (
        False,
        True,
        retry,
        3,
    )


def test_standalone_is_the_opposite_of_inline() -> None:
    assert sematic.func(standalone=True)(plain).props.inline is False
    assert sematic.func(standalone=False)(plain).props.inline is True
    assert sematic.func(inline=False, standalone=True)(plain).props.inline is False


def test_resource_requirements_imply_a_job_of_its_own() -> None:
    # Seed 003 writes @sematic.func(resource_requirements=...) without inline=False.
    f = sematic.func(resource_requirements=GPU)(plain)
    assert f.props.inline is False
    assert f.props.resource_requirements is GPU
    assert sematic.func(base_image_tag="cuda")(plain).props.inline is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"inline": True, "standalone": True}, "contradict"),
        ({"inline": False, "standalone": False}, "contradict"),
        ({"inline": True, "resource_requirements": GPU}, "resource_requirements only apply"),
        ({"inline": True, "base_image_tag": "cuda"}, "base_image_tag only apply"),
        ({"inline": "yes"}, "inline must be True or False"),
        ({"cache": 1}, "cache must be True or False"),
        ({"timeout_mins": 0}, "timeout_mins must be a number of minutes > 0"),
        ({"timeout_mins": -1.5}, "timeout_mins"),
        ({"base_image_tag": ""}, "base_image_tag must be a non-empty str"),
        ({"retry": 3}, "retry must be a sematic.RetrySettings"),
        ({"resource_requirements": {"gpu": 1}}, "resource_requirements must be"),
    ],
)
def test_contradictory_or_invalid_settings_are_refused(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        sematic.func(**settings)(plain)  # type: ignore[call-overload]
    assert "plain()" in str(caught.value)


def no_annotation(x) -> int:  # type: ignore[no-untyped-def]
    return 1


def no_return(x: int):  # type: ignore[no-untyped-def]
    return x


def star_args(*xs: int) -> int:
    return 1


def star_kwargs(**xs: int) -> int:
    return 1


async def coroutine(x: int) -> int:
    return x


def generator(x: int):  # type: ignore[no-untyped-def]
    yield x


class Holder:
    def method(self, x: int) -> int:
        return x


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (no_annotation, r"no type annotation for parameter\(s\) 'x'"),
        (star_args, r"takes \*xs"),
        (star_kwargs, r"takes \*\*xs"),
        (coroutine, "is async"),
        (generator, "is a generator"),
        (Holder.method, "defined in class Holder"),
        (len, "plain Python functions"),
        (staticmethod(plain), "staticmethod"),
    ],
)
def test_unsupported_functions_are_refused(target: object, message: str) -> None:
    with pytest.raises(FunctionDefinitionError, match=message):
        sematic.func(target)  # type: ignore[call-overload]


def test_a_missing_return_annotation_means_none() -> None:
    f = sematic.func(no_return)
    assert f.output_type is type(None)
    assert f.input_types == {"x": int}


def test_decorating_twice_is_refused() -> None:
    once = sematic.func(plain)
    with pytest.raises(FunctionDefinitionError, match="already decorated"):
        sematic.func(once)  # type: ignore[call-overload]


def test_nested_function_in_a_function_is_accepted() -> None:
    def local(x: int) -> int:
        return x + 1

    assert sematic.func(local)(1).resolve(sematic.SilentResolver()) == 2


def test_retry_settings_validate() -> None:
    with pytest.raises(ConfigurationError, match="exception classes"):
        RetrySettings(exceptions=("ValueError",), retries=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="int >= 0"):
        RetrySettings(exceptions=(ValueError,), retries=-1)
    assert RetrySettings(exceptions=ValueError, retries=1).exceptions == (ValueError,)  # type: ignore[arg-type]


def test_resource_requirements_are_immutable_values() -> None:
    with pytest.raises(ConfigurationError, match="str to str"):
        KubernetesRequirements(node_selector={"gpus": 1})  # type: ignore[dict-item]
    selector = {"zone": "a"}
    reqs = KubernetesRequirements(node_selector=selector)
    selector["zone"] = "b"
    assert reqs.node_selector["zone"] == "a"
    with pytest.raises(TypeError):
        reqs.node_selector["zone"] = "c"  # type: ignore[index]
    with pytest.raises(AttributeError):
        GPU.kubernetes = KubernetesRequirements()  # type: ignore[misc]
    assert KubernetesRequirements(node_selector={"a": "b"}) == KubernetesRequirements(
        node_selector={"a": "b"}
    )
    assert hash(KubernetesRequirements(node_selector={"a": "b"})) == hash(
        KubernetesRequirements(node_selector={"a": "b"})
    )
