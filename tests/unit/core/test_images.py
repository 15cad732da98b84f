"""The image map: which image each function runs in, and missing tags refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sematic
from sematic.core.errors import ConfigurationError
from sematic.core.images import ImageMap, functions_of
from tests.pipelines import images as pipeline

MAP = {"default": "r/p@sha256:aa", "cuda": "r/p@sha256:cc"}


def test_functions_follow_their_own_tag_default_otherwise_inline_in_the_driver() -> None:
    images = ImageMap(MAP, driver_image="r/p@sha256:dd")
    assert images.image_for(pipeline.train.props) == "r/p@sha256:cc"
    assert images.image_for(pipeline.prepare.props) == "r/p@sha256:aa"
    assert images.image_for(pipeline.pipeline.props) == "r/p@sha256:dd"  # inline
    nested = pipeline.prepare(3).set(base_image_tag="cuda")
    assert images.image_for(nested.props) == "r/p@sha256:cc"


def test_without_a_driver_image_inline_functions_get_the_default() -> None:
    assert ImageMap(MAP).image_for(pipeline.pipeline.props) == "r/p@sha256:aa"


def test_a_missing_tag_is_refused_naming_the_function_and_the_tags() -> None:
    images = ImageMap({"default": "r/p@sha256:aa"})
    with pytest.raises(ConfigurationError) as raised:
        images.check_pipeline(pipeline.pipeline(3))
    assert str(raised.value) == (
        "tests.pipelines.images.train runs on base image 'cuda', which the image map lacks "
        "(available: default); add it to bases in sematic.toml and build again"
    )
    with pytest.raises(ConfigurationError, match="which the image map lacks"):
        images.image_for(pipeline.train.props)


def test_the_check_sees_functions_imported_from_other_modules() -> None:
    found = {f.dotted_path for f in functions_of(pipeline.pipeline(3))}
    assert "tests.pipelines.basic.add" in found  # imported by tests.pipelines.images
    assert {"tests.pipelines.images.train", "tests.pipelines.images.prepare"} <= found


def test_the_map_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    from sematic.resolvers.settings import built_images

    assert built_images({}) is None
    from_variable = built_images({"SEMATIC_IMAGES": json.dumps(MAP)})
    assert from_variable == ImageMap(MAP)
    file = tmp_path / "images.json"
    file.write_text(json.dumps(MAP))
    env = {"SEMATIC_IMAGES_FILE": str(file), "SEMATIC_DRIVER_IMAGE": "r/p@sha256:dd"}
    assert built_images(env) == ImageMap(MAP, "r/p@sha256:dd")


@pytest.mark.parametrize("text", ["[1]", '{"default": 3}', "{not json", '{"a": ""}'])
def test_a_bad_map_is_a_clear_error(text: str) -> None:
    from sematic.resolvers.settings import built_images

    with pytest.raises(ConfigurationError, match=r"the image map in \$SEMATIC_IMAGES"):
        built_images({"SEMATIC_IMAGES": text})


def test_local_resolver_refuses_a_missing_tag_before_anything_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_IMAGES", json.dumps({"default": "r/p@sha256:aa"}))
    with pytest.raises(ConfigurationError, match="train runs on base image 'cuda'"):
        pipeline.pipeline(3).resolve(sematic.LocalResolver(progress=False))
    assert not (home / "db.sqlite3").exists() or _no_runs(home)


def _no_runs(home: Path) -> bool:
    from sematic.resolvers.settings import LocalSettings
    from sematic.resolvers.stores import open_stores

    metadata, _ = open_stores(LocalSettings.from_environment())
    try:
        return metadata.list_runs(limit=1) == []
    finally:
        metadata.close()
