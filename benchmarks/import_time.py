"""How long ``import sematic`` takes, what it spends the time on, and what it leaves out.

- wall time: median over fresh interpreters of ``python -c "import sematic"`` minus
  ``python -c pass`` (interpreter startup excluded);
- the 10 largest cumulative entries of ``python -X importtime -c "import sematic"``;
- whether pydantic (only needed to validate values, imported on first use) is in
  ``sys.modules`` after ``import sematic``, and how many modules the import adds.

    .venv/bin/python benchmarks/import_time.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _bench import import_ms, print_table

PROBE = """
import json, sys
before = set(sys.modules)
import sematic
added = set(sys.modules) - before
heavy = sorted(m for m in added if m.split(".")[0] in {"pydantic", "pydantic_core"})
print(json.dumps({"path": sematic.__file__, "added": len(added), "pydantic": heavy}))
"""


def importtime_top(python: str, module: str, count: int) -> list[list[object]]:
    """The ``count`` largest cumulative entries of ``-X importtime`` (microseconds)."""
    child = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    entries: list[tuple[int, int, str]] = []
    for line in child.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        entries.append((int(cumulative), int(own), name.strip()))
    entries.sort(reverse=True)
    return [[name, f"{own:,}", f"{cumulative:,}"] for cumulative, own, name in entries[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters to time")
    args = parser.parse_args()
    python = sys.executable

    probe = json.loads(
        subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    )
    wall = import_ms(python, "sematic", runs=args.runs)
    print(f"import sematic: {wall:.1f} ms (median of {args.runs}, interpreter startup excluded)")
    print(f"  from {probe['path']}; adds {probe['added']} modules to sys.modules")
    pydantic = ", ".join(probe["pydantic"]) or "no"
    print(f"  pydantic imported by `import sematic`: {pydantic}")

    print("\nTop 10 cumulative entries of python -X importtime -c 'import sematic' (us)")
    print_table(["module", "self us", "cumulative us"], importtime_top(python, "sematic", 10))


if __name__ == "__main__":
    main()
