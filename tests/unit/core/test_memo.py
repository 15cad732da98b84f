"""per_hint: one memo for what type checks and serializers compute per annotation."""

from __future__ import annotations

from typing import Any

from sematic.core.memo import per_hint


def test_an_annotation_is_computed_once_and_an_unhashable_one_every_time() -> None:
    calls: list[Any] = []

    def compute(hint: Any) -> str:
        calls.append(hint)
        return repr(hint)

    remembered = per_hint(compute)
    assert remembered(list[int]) == remembered(list[int]) == "list[int]"
    assert calls == [list[int]]
    unhashable = [int]
    assert remembered(unhashable) == remembered(unhashable) == "[<class 'int'>]"
    assert calls == [list[int], unhashable, unhashable]


def test_the_memo_is_bounded() -> None:
    calls: list[int] = []

    def compute(hint: int) -> int:
        calls.append(hint)
        return hint * 2

    remembered = per_hint(compute, size=3)
    for hint in range(10):
        assert remembered(hint) == hint * 2
    assert remembered(9) == 18  # the last ones are still remembered...
    assert calls.count(9) == 1
    assert remembered(0) == 0  # ...the first ones were dropped to stay within size
    assert calls.count(0) == 2
