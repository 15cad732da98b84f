"""Previews of figures and images: PNG data URLs (matplotlib, PIL) and plotly's JSON.

matplotlib, Pillow and plotly come with the project's dev extras; a missing one fails the
tests that need it (never skips them): run scripts/setup.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
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


# --- sematic.types ---------------------------------------------------------------------


def _picture(pil: Any, width: int, height: int, image_format: str, noise: bool = False) -> bytes:
    """An image file: one colour, or random pixels (which do not compress)."""
    if noise:
        import os

        picture = pil.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        picture = pil.new("RGB", (width, height), (30, 90, 200))
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format)
    return buffer.getvalue()


def test_a_small_image_is_shown_as_its_own_file(pil_image: Any) -> None:
    from sematic.types import Image

    for image_format, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif")):
        data = _picture(pil_image, 30, 20, image_format)
        summary = summarize(Image(bytes=data))
        assert summary == {
            "class": "sematic.types.Image",
            "size": [30, 20],
            "image": f"data:{mime};base64," + base64.b64encode(data).decode(),
        }


def test_an_svg_image_is_shown_without_a_size() -> None:
    from sematic.types import Image

    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect/></svg>'
    summary = summarize(Image(svg))
    assert summary["image"] == "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    assert "size" not in summary


def test_a_big_image_is_shrunk_and_keeps_its_original_size(pil_image: Any) -> None:
    from sematic.storage.serialization._media import MAX_PREVIEW_BYTES
    from sematic.types import Image

    data = _picture(pil_image, 1200, 600, "PNG", noise=True)
    assert len(data) > MAX_PREVIEW_BYTES
    summary = summarize(Image(data))
    assert summary["class"] == "sematic.types.Image"
    assert summary["size"] == [1200, 600]
    url = summary["image"]
    assert url.startswith("data:image/jpeg;base64,")  # noise: a PNG of it would be too large
    shrunk = pil_image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    assert shrunk.size == (640, 320)


def test_a_big_jpeg_keeps_its_original_size(pil_image: Any) -> None:
    from sematic.types import Image

    data = _picture(pil_image, 2000, 1500, "JPEG", noise=True)
    summary = summarize(Image(data))
    assert summary["size"] == [2000, 1500]
    url = summary["image"]
    shrunk = pil_image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    assert shrunk.size == (640, 480)


def test_an_image_browsers_cannot_show_is_converted_or_described(pil_image: Any) -> None:
    from sematic.types import Image

    tiff = _picture(pil_image, 8, 6, "TIFF")
    converted = summarize(Image(tiff))
    assert converted["size"] == [8, 6]
    assert _png(converted).convert("RGB").getpixel((1, 1)) == (30, 90, 200)
    assert summarize(Image(b"not an image at all")) == {
        "class": "sematic.types.Image",
        "preview": "not shown (application/octet-stream)",
    }


def test_a_malformed_image_is_previewed_as_a_dataclass() -> None:
    from sematic.types import Image

    assert summarize(Image(bytes="text, not bytes")) == {"bytes": "text, not bytes"}  # type: ignore[arg-type]


def test_links_s3_and_hugging_face_values_are_previewed_as_links() -> None:
    from sematic.types import (
        HuggingFaceDatasetReference,
        HuggingFaceModelReference,
        Link,
        S3Bucket,
        S3Location,
    )

    assert summarize(Link("Docs", "https://docs.sematic.dev")) == {
        "class": "sematic.types.Link",
        "label": "Docs",
        "href": "https://docs.sematic.dev",
    }
    # Only web URLs become clickable: others are shown as text.
    assert summarize(Link("Run it", "javascript://host/%0Aalert(1)")) == {
        "class": "sematic.types.Link",
        "label": "Run it",
        "url": "javascript://host/%0Aalert(1)",
    }
    assert summarize(S3Location(S3Bucket("b", "us-west-2"), "dir/file.csv")) == {
        "class": "sematic.types.S3Location",
        "label": "s3://b/dir/file.csv",
        "href": "https://s3.console.aws.amazon.com/s3/buckets/b?region=us-west-2&prefix=dir%2Ffile.csv",
        "title": "View in the AWS console",
    }
    assert summarize(S3Bucket("b"))["label"] == "s3://b"
    assert summarize(HuggingFaceModelReference(None, "gpt2")) == {
        "class": "sematic.types.HuggingFaceModelReference",
        "label": "\N{HUGGING FACE} gpt2",
        "href": "https://huggingface.co/gpt2",
        "title": "View on Hugging Face",
    }
    dataset = summarize(HuggingFaceDatasetReference.from_string("o/d:sub"))
    assert dataset["href"] == "https://huggingface.co/datasets/o/d/viewer/sub"
    assert dataset["label"] == "\N{HUGGING FACE} o/d:sub"


def test_a_prompt_response_keeps_long_texts_longer_than_other_strings() -> None:
    from sematic.storage.serialization._summary_types import PROMPT_TEXT
    from sematic.types import PromptResponse

    long = "word " * 4000
    summary = summarize(PromptResponse(prompt="Write 4000 words", response=long))
    assert summary["class"] == "sematic.types.PromptResponse"
    assert summary["prompt"] == "Write 4000 words"
    assert summary["response"] == {
        "text": long[:PROMPT_TEXT],
        "length": len(long),
        "truncated": True,
    }


def test_sematic_types_nested_in_containers_keep_their_previews() -> None:
    from dataclasses import dataclass

    from sematic.types import Image, Link

    @dataclass
    class Report:
        figure: Image
        links: list[Link]

    data = _png_bytes()
    report = Report(Image(data), [Link("a", "https://a.example"), Link("b", "https://b.example")])
    summary = serialize({"report": report}, Any).summary
    assert summary["report"]["figure"]["image"].startswith("data:image/png;base64,")
    assert [link["href"] for link in summary["report"]["links"]] == [
        "https://a.example",
        "https://b.example",
    ]
    json.dumps(summary)  # stored as JSON


def test_equal_sematic_type_values_are_the_same_artifact() -> None:
    from sematic.storage.serialization import deserialize
    from sematic.types import Image, Link

    first = serialize([Image(_png_bytes()), Link("a", "https://a.example")], list[Any])
    second = serialize([Image(_png_bytes()), Link("a", "https://a.example")], list[Any])
    assert first.artifact_id == second.artifact_id
    assert first.type_description["kind"] == "json"
    assert deserialize(first.payload, first.type_description) == [
        Image(_png_bytes()),
        Link("a", "https://a.example"),
    ]


def _png_bytes() -> bytes:
    return _picture(_dev_library("PIL.Image"), 5, 4, "PNG")


def test_without_pillow_a_big_image_is_described(
    pil_image: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sematic.storage.serialization import _media
    from sematic.types import Image

    monkeypatch.setattr(_media, "_open_with_pillow", lambda data: None)
    data = _picture(pil_image, 1200, 600, "PNG", noise=True)
    assert summarize(Image(data)) == {
        "class": "sematic.types.Image",
        "size": [1200, 600],  # read from the PNG header
        "preview": "too large",
    }


# --- What Sematic 0.41 showed of pandas and torch values --------------------------------


def test_a_dataframe_summary_has_its_describe_statistics() -> None:
    pandas = _dev_library("pandas")
    frame = pandas.DataFrame({"n": [1, 2, 3, 4], "name": list("abcd"), "x": [0.5, None, 2, 3]})
    statistics = summarize(frame)["describe"]
    assert statistics["columns"] == ["n", "x"]  # the numeric columns
    assert statistics["index"] == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert statistics["rows"][0] == [4.0, 3.0]  # x has a missing value
    assert statistics["rows"][1] == [2.5, pytest.approx(11 / 6)]
    assert "describe" not in summarize(pandas.DataFrame())  # nothing to describe
    json.dumps(summarize(frame))


def _torch_class(module: str, name: str, **attributes: Any) -> type:
    """A stand-in for a torch class (torch is not a dev dependency): same module and name."""
    return type(name, (), {"__module__": module, **attributes})


def test_a_torch_data_loader_shows_its_settings_and_dataset() -> None:
    loader_class = _torch_class("torch.utils.data.dataloader", "DataLoader")
    subclass = type("MyLoader", (loader_class,), {})
    loader = subclass()
    loader.__dict__.update(
        batch_size=32, num_workers=2, pin_memory=False, timeout=0, dataset=range(100)
    )
    assert summarize(loader) == {
        "class": "torch.DataLoader",
        "batch_size": 32,
        "num_workers": 2,
        "pin_memory": False,
        "timeout": 0,
        "dataset": "range(0, 100)",
    }


def test_a_torch_module_shows_its_layers_as_printed() -> None:
    layers = "Net(\n" + "".join(f"  (fc{i}): Linear(in=8, out=8)\n" for i in range(80)) + ")"
    module_class = _torch_class("torch.nn.modules.module", "Module", __repr__=lambda _: layers)
    net = type("Net", (module_class,), {})()
    summary = summarize(net)
    assert summary == {"text": layers[:1000], "length": len(layers), "truncated": True}
    small = type("Small", (module_class,), {"__repr__": lambda _: "Small()"})()
    assert summarize(small) == "Small()"
