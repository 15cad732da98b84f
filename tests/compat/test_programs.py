"""The programs of examples/sematic041, written as Sematic 0.41's docs and examples write
them, run unchanged: imported and run by ``SilentRunner`` here, and run as a user runs
them (``python PROGRAM.py silent|local``) with ``LocalRunner`` recording every run and
artifact, whose summaries (what the UI shows) hold the values."""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import sematic
from sematic.core.records import RunRecord
from sematic.types import Image, Link
from tests.unit.resolvers.conftest import recorded_runs, store

PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "sematic041"

DYNAMIC_PRINTED = (
    "Stopping(steps={14: 17, 12: 9, 9: 19, 7: 16}, longest_start=9, longest_steps=19, "
    "verdict='LONG: 9 takes 19 steps')"
)
RETRIES_PRINTED = (
    "[Quote(day='2024-03-01', average=97.97, requests=3), "
    "Quote(day='2024-03-02', average=99.77, requests=3)]"
)
DAYS = [f"2024-06-0{day}" for day in range(1, 8)]
TEMPERATURES = [20.0, 22.4, 24.2, 25.0, 24.5, 23.0, 20.7]
RAIN = [0.0, 2.5, 5.0, 0.0, 2.5, 5.0, 0.0]
DASHBOARD = "https://grafana.example.com/d/weather?from=2024-06-01&to=2024-06-07"


def load(name: str) -> types.ModuleType:
    """examples/sematic041/NAME.py, imported afresh as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"sematic041_{name}", PROGRAMS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_program(name: str, mode: str) -> str:
    """``python examples/sematic041/NAME.py MODE``, in this environment; its output."""
    done = subprocess.run(
        [sys.executable, str(PROGRAMS / f"{name}.py"), mode],
        env=dict(os.environ), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def collatz_steps(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def recorded(tag: str) -> tuple[RunRecord, list[RunRecord]]:
    """The pipeline run tagged ``tag`` (the only one) and all its runs."""
    with store() as metadata:
        (root,) = metadata.list_runs(root_only=True, tag=tag)
    return root, recorded_runs(root.id)


def summaries(runs: list[RunRecord]) -> dict[str, list[Any]]:
    """The summaries of the runs' outputs, by run name."""
    found: dict[str, list[Any]] = {}
    with store() as metadata:
        for run in runs:
            assert run.output is not None, run
            found.setdefault(run.name, []).append(metadata.get_artifact(run.output).summary)
    return found


def retry_count(run: RunRecord) -> int:
    with store() as metadata:
        return [t.state for t in metadata.transitions_of(run.id)].count("RETRYING")


# --- dynamic_graph.py ------------------------------------------------------------------


def test_the_dynamic_graph_under_the_silent_runner() -> None:
    program = load("dynamic_graph")
    result = sematic.SilentRunner().run(program.pipeline(4, 41))
    assert result == program.Stopping(
        steps={14: 17, 12: 9, 9: 19, 7: 16},
        longest_start=9,
        longest_steps=19,
        verdict="LONG: 9 takes 19 steps",
    )
    assert all(steps == collatz_steps(start) for start, steps in result.steps.items())
    # Other numbers, the other branch.
    short = sematic.SilentRunner().run(program.pipeline(3, 9))
    assert short.steps == {16: 4, 21: 7, 13: 9}
    assert short.verdict == "short: at most 9 steps"


def test_the_dynamic_graph_under_the_local_runner(home: Path) -> None:
    assert run_program("dynamic_graph", "local").strip() == DYNAMIC_PRINTED
    root, runs = recorded("dynamic")
    assert root.name == "Dynamic graph (0.41 style)"
    assert set(root.tags) == {"sematic041", "dynamic"}
    assert all(run.state == "RESOLVED" for run in runs)
    names = [run.name for run in runs]
    # The graph grew while it ran: a collatz call per step of each chain, plus its end.
    assert names.count("collatz") == 17 + 9 + 19 + 16 + 4
    assert names.count("halve") + names.count("triple_plus_one") == 17 + 9 + 19 + 16
    assert names.count("long_chain") == 1 and "short_chain" not in names
    (drawn,) = [run for run in runs if run.name == "draw_numbers"]
    assert not drawn.inline  # standalone=True: a worker process of its own
    assert drawn.resource_requirements == {
        "kubernetes": {
            "requests": {"cpu": "200m", "memory": "256Mi"},
            "limits": {"cpu": "200m", "memory": "256Mi"},
        }
    }
    shown = summaries(runs)
    assert shown["draw_numbers"] == [[14, 12, 9, 7]]
    assert shown["Dynamic graph (0.41 style)"] == [
        {
            "steps": {"14": 17, "12": 9, "9": 19, "7": 16},
            "longest_start": 9,
            "longest_steps": 19,
            "verdict": "LONG: 9 takes 19 steps",
        }
    ]


# --- retries.py ------------------------------------------------------------------------


def test_retries_under_the_silent_runner() -> None:
    program = load("retries")
    for _ in range(2):  # the service refuses the first two requests of every pipeline run
        quotes = sematic.SilentRunner().run(program.pipeline(["2024-03-01", "2024-03-02"]))
        assert quotes == [
            program.Quote(day="2024-03-01", average=97.97, requests=3),
            program.Quote(day="2024-03-02", average=99.77, requests=3),
        ]
    assert sorted(program.SERVICE.requests.values()) == [3, 3, 3, 3]


def test_retries_run_out_after_three_retries() -> None:
    program = load("retries")
    program.SERVICE.refusals = 5  # more than the three retries RetrySettings allows
    with pytest.raises(sematic.PipelineRunError) as raised:
        sematic.SilentRunner().run(program.pipeline(["2024-03-01"]))
    assert isinstance(raised.value.__cause__, program.RateLimitedError)
    assert "request 4" in str(raised.value.__cause__)  # the first call and three retries


def test_retries_under_the_local_runner(home: Path) -> None:
    assert run_program("retries", "local").strip() == RETRIES_PRINTED
    root, runs = recorded("retries")
    assert root.name == "Retries (0.41 style)"
    assert all(run.state == "RESOLVED" for run in runs)
    fetches = [run for run in runs if run.name == "fetch_prices"]
    assert len(fetches) == 2
    assert all(run.inline and retry_count(run) == 2 for run in fetches)
    averages = [run for run in runs if run.name == "average"]
    assert len(averages) == 2 and not any(run.inline for run in averages)
    assert all(0 <= retry_count(run) <= 20 for run in averages)
    shown = summaries(runs)
    assert sorted(shown["fetch_prices"], key=str) == sorted(
        [
            {"day": "2024-03-01", "values": [92.48, 108.49, 91.61, 104.28, 92.99], "requests": 3},
            {"day": "2024-03-02", "values": [108.68, 100.51, 98.04, 100.71, 90.9], "requests": 3},
        ],
        key=str,
    )
    assert shown["Retries (0.41 style)"] == [
        [
            {"day": "2024-03-01", "average": 97.97, "requests": 3},
            {"day": "2024-03-02", "average": 99.77, "requests": 3},
        ]
    ]


# --- media.py --------------------------------------------------------------------------


def test_media_under_the_silent_runner() -> None:
    import pandas as pd
    from matplotlib.figure import Figure

    program = load("media")
    report = sematic.SilentRunner().run(program.pipeline(7))
    assert isinstance(report, program.WeatherReport)
    expected = pd.DataFrame({"day": DAYS, "temperature": TEMPERATURES, "rain_mm": RAIN})
    pd.testing.assert_frame_equal(report.table, expected)
    assert isinstance(report.figure, Figure)
    (axes,) = report.figure.axes
    assert axes.get_title() == "Temperature"
    assert list(axes.lines[0].get_ydata()) == TEMPERATURES
    assert isinstance(report.chart, Image) and report.chart.mime_type == "image/png"
    assert png_size(report.chart.bytes) == (600, 300)
    buffer = io.BytesIO()  # the image is the figure
    report.figure.savefig(buffer, format="png")
    assert png_size(buffer.getvalue()) == png_size(report.chart.bytes)
    assert report.dashboard == Link(
        label="Weather dashboard, 2024-06-01 to 2024-06-07", url=DASHBOARD
    )


def test_media_under_the_local_runner_shows_every_value(home: Path) -> None:
    printed = run_program("media", "local")
    assert "2024-06-04         25.0      0.0" in printed
    assert f"Weather dashboard, 2024-06-01 to 2024-06-07: {DASHBOARD}" in printed
    root, runs = recorded("media")
    assert {run.name: run.state for run in runs} == {
        name: "RESOLVED"
        for name in ("Media (0.41 style)", "load_weather", "plot_temperature", "render_chart",
                     "dashboard_link", "make_report")
    }  # fmt: skip
    assert {run.name for run in runs if not run.inline} == {"load_weather", "render_chart"}
    shown = {name: values[0] for name, values in summaries(runs).items()}

    table = shown["load_weather"]  # a table, with the statistics of its numeric columns
    assert table["shape"] == [7, 3]
    assert table["columns"] == ["day", "temperature", "rain_mm"]
    assert table["dtypes"]["temperature"] == "float64"
    assert table["head"] == [list(row) for row in zip(DAYS, TEMPERATURES, RAIN, strict=True)]
    describe = table["describe"]
    assert describe["columns"] == ["temperature", "rain_mm"]
    assert describe["index"][:2] == ["count", "mean"]
    assert describe["rows"][0] == [7.0, 7.0]
    assert describe["rows"][1][1] == pytest.approx(15 / 7)

    figure = shown["plot_temperature"]  # a picture of the figure
    assert figure["class"] == "matplotlib.Figure" and figure["size"] == [600, 300]
    assert figure["image"].startswith("data:image/png;base64,")
    chart = shown["render_chart"]
    assert chart["class"] == "sematic.types.Image" and chart["size"] == [600, 300]
    assert chart["image"].startswith("data:image/png;base64,")
    link = shown["dashboard_link"]
    assert link == {
        "class": "sematic.types.Link",
        "label": "Weather dashboard, 2024-06-01 to 2024-06-07",
        "href": DASHBOARD,
    }
    report = shown["Media (0.41 style)"]  # the dataclass: each field shown by its type
    assert report == shown["make_report"]
    assert report["table"] == table and report["chart"] == chart and report["dashboard"] == link
    assert report["figure"]["class"] == "matplotlib.Figure"
    assert report["figure"]["size"] == [600, 300]


# --- `python PROGRAM.py silent` ---------------------------------------------------------


def test_the_programs_print_the_same_values_under_the_silent_runner(home: Path) -> None:
    assert run_program("dynamic_graph", "silent").strip() == DYNAMIC_PRINTED
    assert run_program("retries", "silent").strip() == RETRIES_PRINTED
    printed = run_program("media", "silent")
    assert "2024-06-04         25.0      0.0" in printed
    assert f"Weather dashboard, 2024-06-01 to 2024-06-07: {DASHBOARD}" in printed
    assert not home.exists()  # SilentRunner records nothing
