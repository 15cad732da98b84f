"""What a run reserved, summed over its pods, and what it cost."""

from __future__ import annotations

import pytest

from sematic.core.errors import ConfigurationError
from sematic.core.resources import quantity
from sematic.core.usage import (
    Prices,
    Usage,
    attempt_usage,
    execution_cost,
    execution_json,
    run_usage,
)


def _attempt(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"job": "sematic-x-1", "started_at": 100.0, "finished_at": 160.0}
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("4Gi", 4 * 2**30), ("1G", 1e9), ("1e3", 1000.0), ("128Mi", 2**27)],
)
def test_quantities_read_as_kubernetes_writes_them(text: str, value: float) -> None:
    assert float(quantity(text)) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "four", "4Gb", "1.2.3"])
def test_a_malformed_quantity_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Kubernetes quantity"):
        quantity(text)


def test_an_attempt_reserves_its_requests_for_as_long_as_its_container_ran() -> None:
    usage = attempt_usage(
        _attempt(requests={"cpu": "500m", "memory": "2Gi"}, limits={"nvidia.com/gpu": "1"})
    )
    assert usage == Usage(60.0, 30.0, 120.0, 60.0)


def test_an_attempt_that_never_started_used_nothing() -> None:
    assert (
        attempt_usage({"job": "j", "requests": {"cpu": "4"}, "ended": "Unschedulable"}) == Usage()
    )
    assert attempt_usage(_attempt(started_at=None, requests={"cpu": "4"})) == Usage()


def test_a_run_sums_its_attempts_retries_included() -> None:
    first = _attempt(requests={"cpu": "1"}, ended="Evicted")
    second = _attempt(requests={"cpu": "1"}, started_at=200.0, finished_at=230.0)
    execution = execution_json([first, second])
    assert execution["attempts"] == [first, second]
    assert run_usage(execution) == Usage(90.0, 90.0, 0.0, 0.0)
    assert run_usage(None) is None


def test_prices_turn_usage_into_cost_per_node_type() -> None:
    prices = Prices.from_json(
        {
            "cpu_hour": 0.036,
            "memory_gib_hour": 0.0036,
            "gpu_hour": 1.0,
            "node_types": {"g4dn.xlarge": {"gpu_hour": 0.5}},
        }  # fmt: skip
    )
    cpu_hour = _attempt(started_at=0.0, finished_at=3600.0, requests={"cpu": "1", "memory": "1Gi"})
    gpu_hour = _attempt(
        started_at=0.0, finished_at=3600.0, limits={"nvidia.com/gpu": "1"}, node_type="g4dn.xlarge"
    )
    assert execution_cost(execution_json([cpu_hour]), prices) == pytest.approx(0.0396)
    assert execution_cost(execution_json([gpu_hour]), prices) == pytest.approx(0.5)
    other_node = dict(gpu_hour, node_type="p3.2xlarge")
    assert execution_cost(execution_json([other_node]), prices) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ([], "expected a JSON object"),
        ({"cpu": 1}, "unknown key"),
        ({"gpu_hour": -1}, "prices.gpu_hour"),
        ({"gpu_hour": "2"}, "prices.gpu_hour"),
        ({"node_types": {"a1": {"cpu_hour": True}}}, "prices.node_types.a1.cpu_hour"),
    ],
)
def test_a_bad_price_table_names_what_is_wrong(table: object, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        Prices.from_json(table)
