"""`sematic build` end to end: a real registry, real bases with Python, images run by runc.

The example examples/two_bases is copied and pointed at the session's registry; its images
are pushed, pulled back and run without a Docker daemon: the worker entry point executes
a function of the example in each image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sematic.core.errors import ImageNotFoundError, RegistryAuthError, RegistryError
from sematic.packaging.builder import BuildResult, build
from sematic.packaging.config import PackagingConfig, find_config
from tests.harness.containers import ContainerRunner, run_function
from tests.harness.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "two_bases"

pytestmark = pytest.mark.slow


def project_for(folder: Path, registry: RegistryServer, bases: dict[str, str]) -> Path:
    """A copy of the example whose sematic.toml names this session's registry and bases."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    lines = [
        f'registry = "{registry.address}"',
        'repository = "examples/two-bases"',
        f'insecure_registries = ["{registry.address}"]',
        "distributions = []",
        "[bases]",
        *(f'{tag} = "{image}"' for tag, image in sorted(bases.items())),
        "[env]",
        'EXAMPLE_GREETING = "hello from the image"',
    ]
    (folder / "sematic.toml").write_text("\n".join(lines) + "\n")
    return folder / "pipeline.py"


@pytest.fixture
def script(tmp_path: Path, registry: RegistryServer, base_images: dict[str, str]) -> Path:
    return project_for(tmp_path / "project", registry, base_images)


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def build_it(script: Path, cache: Path, config: PackagingConfig | None = None) -> BuildResult:
    return build(script, config or find_config(script), cache=cache)


def tags(registry: RegistryServer, repository: str) -> list[str]:
    answer = httpx.get(f"{registry.url}/v2/{repository}/tags/list")
    return [] if answer.status_code == 404 else sorted(answer.json()["tags"] or [])


def run_worker(
    runner: ContainerRunner, image: str, work: Path, function: str, **inputs: Any
) -> Any:
    """Run `function` of the example in `image` through the worker entry point."""
    return run_function(runner, image, work, function, inputs, str)


def test_one_image_per_base_each_runs_its_worker(
    script: Path, cache: Path, container_runner: ContainerRunner, tmp_path: Path
) -> None:
    result = build_it(script, cache)
    images = result.image_map
    assert sorted(images) == ["cuda", "default"]
    assert images["cuda"] != images["default"]
    for tag, image in images.items():
        said = run_worker(
            container_runner,
            image,
            tmp_path / f"work-{tag}",
            "pipeline.train",
            data=([0.0, 0.5], list[float]),
        )
        assert said == f"mean 0.250 computed on {tag}"
        inside = container_runner.run(
            image,
            ["python3", "-c", "import os, sematic, pipeline; "
             "print(open('/etc/sematic-base').read().strip(), os.getcwd(), "
             "os.environ['EXAMPLE_GREETING'], sematic.__version__)"],
        )  # fmt: skip
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.split("\n")[0] == f"{tag} /app hello from the image 0.1.0"


def test_a_code_change_uploads_only_the_code_layer_and_no_change_uploads_nothing(
    script: Path, cache: Path
) -> None:
    first = build_it(script, cache)
    with script.open("a") as f:
        f.write("# one more line\n")
    second = build_it(script, cache)
    built = {layer.name.split(" ")[0]: fresh for layer, fresh in second.layers}
    assert built == {"dependencies": False, "sematic": False, "worker": False, "code": True}
    assert len(second.layers) == 5  # default (3.11) and cuda (3.13) each have their own
    code = next(layer for layer, _ in second.layers if layer.name == "code")
    assert sum(i.blobs_uploaded for i in second.images) == 3  # the code layer, two configs
    assert second.bytes_uploaded < code.size + 20_000
    assert set(second.image_map.values()).isdisjoint(first.image_map.values())
    third = build_it(script, cache)
    assert third.bytes_uploaded == 0
    assert [i.blobs_uploaded for i in third.images] == [0, 0]
    assert not any(i.manifest_written for i in third.images)
    assert third.image_map == second.image_map


def test_builds_are_reproducible(script: Path, tmp_path: Path) -> None:
    one = build_it(script, tmp_path / "cache-one")
    os.utime(script, (1, 1))  # other timestamps, same contents
    two = build_it(script, tmp_path / "cache-two")
    assert one.image_map == two.image_map


def test_a_missing_base_image_fails_clearly_and_pushes_no_tag(
    script: Path, cache: Path, registry: RegistryServer
) -> None:
    config = find_config(script)
    broken = PackagingConfig(
        **{**_fields(config), "bases": {"default": f"{registry.address}/base/python:nope"},
           "repository": "examples/missing-base"}
    )  # fmt: skip
    with pytest.raises(ImageNotFoundError, match="base/python"):
        build_it(script, cache, broken)
    assert tags(registry, "examples/missing-base") == []


def test_an_unreachable_registry_is_a_registry_error(script: Path, cache: Path) -> None:
    config = find_config(script)
    unreachable = PackagingConfig(
        **{
            **_fields(config),
            "registry": "127.0.0.1:9",
            "insecure_registries": (*config.insecure_registries, "127.0.0.1:9"),
        }
    )
    with pytest.raises(RegistryError, match="127.0.0.1:9"):
        build_it(script, cache, unreachable)


def test_an_unauthorised_push_fails_and_leaves_no_tag(
    script: Path,
    cache: Path,
    auth_registry: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    config = find_config(script)
    target = PackagingConfig(
        **{**_fields(config), "registry": auth_registry.address,
           "insecure_registries": (*config.insecure_registries, auth_registry.address)}
    )  # fmt: skip
    with pytest.raises(RegistryAuthError, match=auth_registry.address):
        build_it(script, cache, target)
    catalog = httpx.get(
        f"{auth_registry.url}/v2/examples/two-bases/tags/list",
        auth=(auth_registry.username or "", auth_registry.password or ""),
    )
    assert catalog.status_code == 404 or not catalog.json().get("tags")


def test_sematic_run_build_pushes_both_images_then_runs_the_pipeline(
    script: Path, tmp_path: Path, registry: RegistryServer
) -> None:
    env = {
        **os.environ,
        "SEMATIC_HOME": str(tmp_path / "home"),
        "SEMATIC_CACHE": str(tmp_path / "c"),
    }
    for variable in ("SEMATIC_DATABASE_URL", "SEMATIC_ARTIFACT_URL", "SEMATIC_SERVER_URL"):
        env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-m", "sematic.cli", "run", "--build", str(script), "8"],
        cwd=script.parent, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "mean 0.438 computed on this machine"
    assert "built 2 image(s)" in done.stderr
    pushed = tags(registry, "examples/two-bases")
    assert any(t.startswith("default-") for t in pushed)
    assert any(t.startswith("cuda-") for t in pushed)


def _fields(config: PackagingConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in PackagingConfig.__slots__}


def test_the_history_lists_every_layer_one_entry_each(
    script: Path, cache: Path, registry: RegistryServer
) -> None:
    config = find_config(script)
    result = build_it(script, cache)
    image = result.image_map["default"]
    repository, digest = image.removeprefix(f"{registry.address}/").split("@")
    manifest = httpx.get(
        f"{registry.url}/v2/{repository}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    blob = httpx.get(
        f"{registry.url}/v2/{repository}/blobs/{manifest['config']['digest']}",
        follow_redirects=True,
    ).json()
    history = [entry for entry in blob["history"] if not entry.get("empty_layer")]
    assert len(history) == len(manifest["layers"]) == len(blob["rootfs"]["diff_ids"])
    assert [entry["created_by"] for entry in history[-4:]] == [
        f"sematic build: {name}"
        for name in ("dependencies (cp311-manylinux_2_36_x86_64)", "sematic", "worker", "code")
    ]
    assert config.bases["default"] == f"{registry.address}/base/python:default"
