"""``sematic.types`` values in the web UI (headless Chromium): an Image is shown as the
picture, a Link, an S3 location and a Hugging Face reference as links, a PromptResponse as
its two texts; a DataFrame with its describe() statistics, as Sematic 0.41 showed it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pandas
import pytest
from playwright.sync_api import Page, expect

import sematic
from sematic.resolvers.local import LocalResolver
from sematic.types import HuggingFaceModelReference, Image, Link, PromptResponse, S3Location
from tests.ui.conftest import node, panel_section, png, ui_server_env
from tests.unit.server.conftest import Server, start_server

pytestmark = pytest.mark.slow

DOCS = "https://docs.sematic.dev/types"


@sematic.func
def show_image() -> Image:
    return Image(png(12, 8))


@sematic.func
def show_link() -> Link:
    return Link(label="Sematic documentation", url=DOCS)


@sematic.func
def show_prompt() -> PromptResponse:
    return PromptResponse(prompt="Name a colour", response="Red,\nlike the picture.")


@sematic.func
def show_location() -> S3Location:
    return S3Location.from_uri("s3://my-bucket/images/red.png", region="us-west-2")


@sematic.func
def show_model() -> HuggingFaceModelReference:
    return HuggingFaceModelReference.from_string("the_owner/the_model")


@sematic.func
def show_script_link() -> Link:
    return Link(label="Not followed", url="javascript://host/%0Aalert(1)")


@sematic.func
def show_frame() -> pandas.DataFrame:
    return pandas.DataFrame({"city": ["a", "b", "c"], "score": [1.0, 2.0, 6.0]})


@dataclass(frozen=True)
class Showcase:
    server: Server
    root_id: str


@sematic.func
def types_showcase() -> list[object]:
    return [
        show_image(),
        show_link(),
        show_prompt(),
        show_location(),
        show_model(),
        show_script_link(),
        show_frame(),
    ]


@pytest.fixture(scope="module")
def showcase_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Showcase]:
    home = tmp_path_factory.mktemp("types-ui") / "home"
    future = types_showcase()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMATIC_HOME", str(home))
        patch.delenv("SEMATIC_DATABASE_URL", raising=False)
        patch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
        future.resolve(LocalResolver(progress=False))
    running = start_server(home, env=ui_server_env(home))
    try:
        yield Showcase(server=running, root_id=future.id)
    finally:
        running.stop()


def test_images_links_and_prompts_are_shown_by_type(page: Page, showcase_server: Showcase) -> None:
    page.goto(f"{showcase_server.server.url}/#/runs/{showcase_server.root_id}")
    expect(page.locator(".run-header h1")).to_have_text("types_showcase")

    node(page, "show_image").click()
    output = panel_section(page, "output")
    image = output.locator("img.v-image")
    expect(image).to_be_visible()
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [12, 8]
    expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(output.locator("figcaption")).to_have_text("sematic.types.Image \u00b7 12 \u00d7 8 px")

    node(page, "show_link").click()
    link = panel_section(page, "output").locator("a.v-link")
    expect(link).to_have_attribute("href", DOCS)
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_contain_text("Sematic documentation")

    node(page, "show_location").click()
    s3 = panel_section(page, "output").locator("a.v-link")
    expect(s3).to_contain_text("s3://my-bucket/images/red.png")
    expect(s3).to_have_attribute(
        "href",
        "https://s3.console.aws.amazon.com/s3/buckets/my-bucket?region=us-west-2"
        "&prefix=images%2Fred.png",
    )

    node(page, "show_model").click()
    model = panel_section(page, "output").locator("a.v-link")
    expect(model).to_contain_text("the_owner/the_model")
    expect(model).to_have_attribute("href", "https://huggingface.co/the_owner/the_model")

    node(page, "show_prompt").click()
    prompt = panel_section(page, "output").locator(".v-prompt")
    expect(prompt.locator("[data-part=prompt]")).to_contain_text("Name a colour")
    expect(prompt.locator("[data-part=response]")).to_contain_text("Red,\nlike the picture.")


def test_unsafe_links_are_text_and_dataframes_show_statistics(
    page: Page, showcase_server: Showcase
) -> None:
    page.goto(f"{showcase_server.server.url}/#/runs/{showcase_server.root_id}")
    node(page, "show_script_link").click()
    output = panel_section(page, "output")
    expect(output.locator(".v-link-text")).to_contain_text("Not followed")
    expect(output.locator(".v-link-text code")).to_have_text("javascript://host/%0Aalert(1)")
    expect(output.locator("a")).to_have_count(0)

    node(page, "show_frame").click()
    statistics = panel_section(page, "output").locator(".v-describe")
    expect(statistics).to_contain_text("Statistics (describe)")
    expect(statistics.locator("tbody tr")).to_have_count(8)  # count, mean, std, min, ... max
    expect(statistics.locator("tbody tr", has_text="mean").locator("td")).to_have_text(["3"])
