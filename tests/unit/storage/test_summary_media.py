"""Previews of figures and images: PNG data URLs (matplotlib, PIL) and plotly's JSON.

matplotlib, Pillow and plotly come with the project's dev extras; a missing one fails the
tests that need it (never skips them): run scripts/setup.
"""

from __future__ import annotations

import base64
import importlib
import io
from types import ModuleType
from typing import Any

import pytest

from sematic.storage.serialization import serialize
from sematic.storage.serialization._summary import summarize


def _dev_library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(
            f"{name} cannot be imported ({exc}); these tests need the project's dev extras: "
            "run scripts/setup (it installs them: pip install -e '.[dev]')",
            pytrace=False,
        )


@pytest.fixture
def matplotlib_figure() -> ModuleType:
    return _dev_library("matplotlib.figure")


@pytest.fixture
def pil_image() -> ModuleType:
    return _dev_library("PIL.Image")


@pytest.fixture
def plotly_go() -> ModuleType:
    return _dev_library("plotly.graph_objects")


def _png(summary: dict[str, object]) -> Any:
    url = summary["image"]
    assert isinstance(url, str) and url.startswith("data:image/png;base64,")
    return _dev_library("PIL.Image").open(io.BytesIO(base64.b64decode(url.partition(",")[2])))


def test_a_matplotlib_figure_is_previewed_as_a_small_png(matplotlib_figure: Any) -> None:
    figure = matplotlib_figure.Figure(figsize=(12, 6))
    figure.add_subplot().plot([1, 2, 3], [3, 1, 2])
    summary = summarize(figure)
    assert summary["class"] == "matplotlib.Figure"
    image = _png(summary)
    assert max(image.size) <= 640
    assert image.size[0] == 2 * image.size[1]
    gray = image.convert("L")
    assert gray.getextrema()[0] < 128 < gray.getextrema()[1]  # lines drawn on white


def test_a_pil_image_is_shrunk_and_keeps_its_original_size(pil_image: Any) -> None:
    picture = pil_image.new("RGB", (2000, 1000), (200, 30, 30))
    summary = summarize(picture)
    assert summary["class"] == "PIL.Image"
    assert summary["size"] == [2000, 1000]
    image = _png(summary)
    assert image.size == (640, 320)
    assert image.convert("RGB").getpixel((10, 10)) == (200, 30, 30)


def test_a_plotly_figure_is_previewed_as_its_json(plotly_go: Any) -> None:
    figure = plotly_go.Figure(plotly_go.Bar(x=["a", "b"], y=[1, 2]))
    summary = summarize(figure)
    assert summary["class"] == "plotly.Figure"
    assert summary["plotly"]["data"][0]["type"] == "bar"
    assert summary["plotly"]["data"][0]["y"] == [1, 2]


def test_a_figure_output_is_summarized_when_serialized(matplotlib_figure: Any) -> None:
    figure = matplotlib_figure.Figure()
    serialized = serialize(figure, matplotlib_figure.Figure)
    assert serialized.summary["class"] == "matplotlib.Figure"
    assert "image" in serialized.summary
