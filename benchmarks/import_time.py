"""How long ``import sematic`` takes, what it spends the time on, and what it leaves out.

- wall time: median over fresh interpreters of ``python -c "import sematic"`` minus
  ``python -c pass`` (interpreter startup excluded);
- the 10 largest cumulative entries of ``python -X importtime -c "import sematic"``;
- whether pydantic (only needed to validate values, imported on first use) is in
  ``sys.modules`` after ``import sematic``, and how many modules the import adds;
- the cold path of a Kubernetes step: a worker (``python -m sematic.worker --job-from-env``)
  run against a stand-in server, its wall time beside ``python -c pass`` and
  ``python -c "import sematic"`` measured in the same run, and which heavy modules it had
  imported when the user's function started; the import time of the worker's and the
  driver pod's modules (``-X importtime``).

    .venv/bin/python benchmarks/import_time.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# What a step's worker should not import before the user's function runs.
HEAVY = ("pydantic", "sqlalchemy", "kubernetes", "numpy", "pandas", "fsspec", "rich", "click")
HERE = Path(__file__).resolve().parent
WORKER_MODULES = {
    "worker (sematic.worker.__main__ + run + storage.http)": (
        "sematic.worker.__main__, sematic.worker.run, sematic.storage.http"
    ),
    "driver pod (sematic.worker.drive)": "sematic.worker.drive",
}


def importtime_total(python: str, modules: str) -> int:
    """Cumulative microseconds of ``import modules`` (the sum of its top-level entries)."""
    child = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {modules}"],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in child.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _own, cumulative, name = line.removeprefix("import time:").split("|")
        if not name.startswith("  "):  # top level: nothing imported it
            total += int(cumulative)
    return total


def worker_cold_path(python: str, runs: int) -> None:
    """Time ``python -m sematic.worker --job-from-env`` running one step against a stand-in
    server, beside ``python -c pass`` and ``import sematic`` measured in the same rounds."""
    from sematic.core.jobs import InputRef, WorkerJob
    from sematic.storage.serialization import serialize

    value = serialize(2, int)
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp, "payload")
        payload.write_bytes(value.payload)
        server = subprocess.Popen(
            [python, str(HERE / "_worker_probe.py"), "serve", str(payload)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            job = WorkerJob(
                run_id="r" * 32,
                root_id="r" * 32,
                function_path="_worker_probe.probe",
                inputs={"x": InputRef(value.artifact_id, value.type_description)},
                artifact_url="unused://",
                result_path=str(Path(tmp, "result.json")),
                sys_path=[str(HERE)],
                server_url=f"http://127.0.0.1:{port}",
            )
            out = Path(tmp, "modules.json")
            env = {**os.environ, "SEMATIC_WORKER_JOB": job.to_json(), "SEMATIC_PROBE_OUT": str(out)}
            env.pop("SEMATIC_API_KEY", None)
            commands = {
                "python -c pass": [python, "-c", "pass"],
                "python -c 'import sematic'": [python, "-c", "import sematic"],
                "worker --job-from-env (one step)": [
                    python, "-m", "sematic.worker", "--job-from-env"
                ],
            }  # fmt: skip
            walls: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(runs + 1):  # the first round warms the OS file cache
                for name, command in commands.items():
                    start = time.perf_counter()
                    subprocess.run(command, check=True, env=env)
                    walls[name].append(time.perf_counter() - start)
            result = json.loads(Path(job.result_path).read_text())
            assert result["kind"] == "resolved", result
            modules = json.loads(out.read_text())
        finally:
            server.terminate()
            server.wait()
    medians = {name: statistics.median(times[1:]) * 1000 for name, times in walls.items()}
    base = medians["python -c pass"]
    print(f"\nCold path of a step: wall time, median of {runs} (ms; ratio to `python -c pass`)")
    print_table(
        ["command", "ms", "x pass", "minus pass"],
        [
            [name, f"{ms:.1f}", f"{ms / base:.2f}", f"{ms - base:.1f}"]
            for name, ms in medians.items()
        ],
    )
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    print(f"  modules imported when the step's function started: {len(modules)}")
    print(f"  heavy ones among {', '.join(HEAVY)}: {', '.join(heavy) or 'none'}")
    for label, names in WORKER_MODULES.items():
        totals = sorted(importtime_total(python, names) for _ in range(5))
        print(f"  -X importtime of the {label}: {totals[2] / 1000:.1f} ms (median of 5)")


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
    worker_cold_path(python, args.runs)


if __name__ == "__main__":
    main()
