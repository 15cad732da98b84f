"""``first_unstorable``: what no metadata store can keep, found wherever it hides."""

from __future__ import annotations

import math

import pytest

from sematic.core.records import (
    INT64_MAX,
    INT64_MIN,
    ArtifactRecord,
    RunRecord,
    TransitionRecord,
    first_unstorable,
)


def _run(**changes: object) -> RunRecord:
    values: dict[str, object] = {
        "id": "a" * 32, "root_id": "a" * 32, "parent_id": None, "name": "f",
        "function_path": "m.f", "state": "CREATED", "created_at": 1.0, "updated_at": 2.0,
    }  # fmt: skip
    return RunRecord(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        None, True, 0, INT64_MAX, INT64_MIN, 1.5, -0.0, "inf", [1, [2.0, {"a": "b"}]],
        (1, 2), {"nested": {"deep": [INT64_MAX]}},
    ],
)  # fmt: skip
def test_storable_values(value: object) -> None:
    assert first_unstorable(value, "v") is None


@pytest.mark.parametrize(
    ("value", "path", "problem"),
    [
        (math.inf, "v", "finite"),
        (-math.inf, "v", "finite"),
        (math.nan, "v", "finite"),
        (INT64_MAX + 1, "v", "between"),
        (INT64_MIN - 1, "v", "between"),
        ([1, 2, [3, math.nan]], "v[2][1]", "finite"),
        ({"a": {"b": [0, 2**70]}}, "v.a.b[1]", "between"),
        ([_run(started_at=math.inf)], "v[0].started_at", "finite"),
        (_run(resource_requirements={"cpu": math.nan}), "v.resource_requirements.cpu", "finite"),
        (ArtifactRecord("b" * 64, {}, [math.inf], 1, 1.0), "v.summary[0]", "finite"),
        (ArtifactRecord("b" * 64, {}, None, 2**64, 1.0), "v.size", "between"),
        (TransitionRecord("a" * 32, "CREATED", -math.inf), "v.at", "finite"),
    ],
)
def test_the_first_unstorable_value_is_named(value: object, path: str, problem: str) -> None:
    found = first_unstorable(value, "v")
    assert found is not None
    assert found[0] == path
    assert problem in found[1]
