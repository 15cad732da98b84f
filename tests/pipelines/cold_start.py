"""A step that records, when it runs, the modules its worker had imported by then."""

from __future__ import annotations

import json
import os
import sys

import sematic


@sematic.func(inline=False)
def modules_seen(x: int) -> int:
    with open(os.environ["SEMATIC_TEST_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
    return x + 1
