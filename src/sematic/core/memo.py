"""``per_hint``: what a function computes for a type annotation, remembered per annotation.

Type checks and serializers compute a validator, a key or a name for each annotation they
meet; pipelines meet few annotations but meet them often. The memo is bounded (a program
that builds annotations on the fly cannot grow it without limit: past ``size`` entries it
starts again) and unhashable annotations are computed every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

V = TypeVar("V")

DEFAULT_SIZE = 4096


def per_hint(compute: Callable[[Any], V], size: int = DEFAULT_SIZE) -> Callable[[Any], V]:
    """``compute`` remembered per (hashable) annotation, at most ``size`` of them."""
    memo: dict[Any, V] = {}

    @functools.wraps(compute)
    def remembered(hint: Any) -> V:
        try:
            return memo[hint]
        except KeyError:
            if len(memo) >= size:
                memo.clear()
            value = memo[hint] = compute(hint)
            return value
        except TypeError:  # unhashable annotation: nothing to remember it by
            return compute(hint)

    return remembered
