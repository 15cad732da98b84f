"""Images that run where they are going: `sematic build` on this machine (CPython 3.11,
linux/amd64) for bases with other Pythons and platforms, all real.

The bases (tests/harness/images.py, ``target_bases``): Debian bookworm (3.11), Debian trixie (3.13),
a python:3.10-slim-like base (this machine's pyenv CPython 3.10 on bookworm), a 3.9 one
(refused), bookworm without Python (refused), bookworm for linux/arm64 (cannot run here: its
files are inspected), and an index of the amd64 and arm64 bookworm images. Images are run
with runc (tests/harness/containers.py): a step type-checks a ``list[dataclass]`` and uses numpy.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging.builder import BuildResult, build
from sematic.packaging.config import PackagingConfig, find_config
from tests.harness.containers import ContainerRunner, run_function
from tests.harness.registry import RegistryServer

pytestmark = pytest.mark.slow

PIPELINE = '''
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import sematic


@dataclass
class Point:
    x: float
    y: float


@sematic.func
def centroid(points: list[Point]) -> Point:
    """Type-checked list of dataclasses in, a binary wheel (numpy) used inside."""
    middle = np.array([[p.x, p.y] for p in points]).mean(axis=0)
    return Point(float(middle[0]), float(middle[1]))
'''

_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        _OCI_INDEX,
    ]
)


def project(
    folder: Path,
    registry: RegistryServer,
    bases: dict[str, str],
    *,
    repository: str,
    requirements: str | None = "numpy>=1.26,<3\n",
    extra: str = "",
) -> Path:
    folder.mkdir(parents=True)
    (folder / "targets_pipeline.py").write_text(PIPELINE)
    lines = [
        f'registry = "{registry.address}"',
        f'repository = "{repository}"',
        f'insecure_registries = ["{registry.address}"]',
    ]
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
        lines.append('requirements = "requirements.txt"')
    else:
        lines.append("distributions = []")
    lines.append(extra)
    lines.append("[bases]")
    lines.extend(f'{tag} = "{image}"' for tag, image in sorted(bases.items()))
    (folder / "sematic.toml").write_text("\n".join(lines) + "\n")
    return folder / "targets_pipeline.py"


def build_it(script: Path, cache: Path, **overrides: Any) -> BuildResult:
    config: PackagingConfig = replace(find_config(script), **overrides)
    return build(script, config, cache=cache)


def tags(registry: RegistryServer, repository: str) -> list[str]:
    answer = httpx.get(f"{registry.url}/v2/{repository}/tags/list")
    return [] if answer.status_code == 404 else sorted(answer.json()["tags"] or [])


def get_json(registry: RegistryServer, repository: str, kind: str, ref: str) -> Any:
    answer = httpx.get(
        f"{registry.url}/v2/{repository}/{kind}/{ref}",
        headers={"Accept": _ACCEPT},
        follow_redirects=True,
    )
    answer.raise_for_status()
    return answer.json()


def layer_files(registry: RegistryServer, repository: str, digest: str) -> dict[str, bytes]:
    """Files of one layer (ours are small), by path in the image."""
    blob = httpx.get(
        f"{registry.url}/v2/{repository}/blobs/{digest}", follow_redirects=True
    ).content
    files = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files["/" + member.name] = extracted.read()
    return files


def run_centroid(
    runner: ContainerRunner, image: str, work: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Runs ``targets_pipeline.centroid`` in ``image`` through the worker entry point."""
    monkeypatch.syspath_prepend(str(work.parent / "project"))
    import targets_pipeline  # the project's module, for the dataclass on this side

    points = [targets_pipeline.Point(0.0, 1.0), targets_pipeline.Point(2.0, 5.0)]
    inputs = {"points": (points, list[targets_pipeline.Point])}
    return run_function(
        runner, image, work, "targets_pipeline.centroid", inputs, targets_pipeline.Point
    )


@pytest.mark.parametrize(
    ("base", "python"), [("py310", "3.10"), ("py311", "3.11"), ("py313", "3.13")]
)
def test_an_image_for_each_python_runs_a_typed_step_with_numpy(
    base: str,
    python: str,
    registry: RegistryServer,
    target_bases: dict[str, str],
    container_runner: ContainerRunner,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = project(
        tmp_path / "project", registry, {"default": target_bases[base]},
        repository=f"targets/{base}",
    )  # fmt: skip
    result = build_it(script, tmp_path_factory.mktemp("cache"))
    (built,) = result.images
    (target,) = built.targets
    assert target.python_version == python
    point = run_centroid(container_runner, built.image, tmp_path / "work", monkeypatch)
    assert (point.x, point.y) == (1.0, 3.0)
    version = container_runner.run(
        built.image,
        ["python3", "-c", "import sys, numpy, pydantic_core; print(sys.version_info[:2], "
         "numpy.__file__, pydantic_core._pydantic_core.__file__)"],
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    tag = f"cpython-{python.replace('.', '')}-x86_64-linux-gnu.so"
    assert version.stdout.count(tag) == 1, version.stdout  # pydantic_core for this Python


def test_two_bases_with_the_same_target_share_the_dependency_layer_and_another_python_gets_its_own(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    script = project(
        tmp_path / "project",
        registry,
        {"default": target_bases["py311"], "same": target_bases["multi"],
         "cuda": target_bases["py313"]},
        repository="targets/shared",
        requirements=None,
    )  # fmt: skip
    result = build_it(script, tmp_path / "cache")
    dependency_layers = {
        built.tag: layers[-4]
        for built in result.images
        for layers in [
            get_json(registry, "targets/shared", "manifests", built.image.rpartition("@")[2])[
                "layers"
            ]
        ]
    }
    assert dependency_layers["default"] == dependency_layers["same"]
    assert dependency_layers["cuda"] != dependency_layers["default"]
    again = build_it(script, tmp_path / "cache")
    assert again.bytes_uploaded == 0
    assert not any(fresh for _, fresh in again.layers)


def test_an_arm64_image_carries_aarch64_wheels_and_no_x86_64_file(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    script = project(
        tmp_path / "project", registry, {"default": target_bases["arm64"]},
        repository="targets/arm64", extra='platforms = ["linux/arm64"]',
    )  # fmt: skip
    result = build_it(script, tmp_path / "cache")
    (built,) = result.images
    assert built.targets[0].platform.startswith("linux/arm64")
    manifest = get_json(registry, "targets/arm64", "manifests", built.image.rpartition("@")[2])
    config = get_json(registry, "targets/arm64", "blobs", manifest["config"]["digest"])
    assert config["architecture"] == "arm64"
    files = layer_files(registry, "targets/arm64", manifest["layers"][-4]["digest"])
    compiled = {path: data for path, data in files.items() if ".so" in path.rsplit("/", 1)[-1]}
    assert any("pydantic_core" in path for path in compiled)
    machines = {int.from_bytes(data[18:20], "little") for data in compiled.values()}
    assert machines == {183}  # EM_AARCH64 only; EM_X86_64 would be 62
    assert not [p for p in compiled if "x86_64" in p]


def test_an_index_base_gives_an_index_of_both_platforms(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    script = project(
        tmp_path / "project", registry, {"default": target_bases["multi"]},
        repository="targets/multi", requirements=None,
        extra='platforms = ["linux/amd64", "linux/arm64"]',
    )  # fmt: skip
    result = build_it(script, tmp_path / "cache")
    (built,) = result.images
    index = get_json(registry, "targets/multi", "manifests", built.image.rpartition("@")[2])
    assert index["mediaType"] == _OCI_INDEX
    platforms = {entry["platform"]["architecture"] for entry in index["manifests"]}
    assert platforms == {"amd64", "arm64"}
    assert {t.machine for t in built.targets} == {"x86_64", "aarch64"}


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("nopython", "no Python|no python|not find|found no"),
        ("py39", "3\\.9"),
    ],
)
def test_a_base_sematic_cannot_run_on_is_refused_naming_it_and_nothing_is_pushed(
    base: str,
    message: str,
    registry: RegistryServer,
    target_bases: dict[str, str],
    tmp_path: Path,
) -> None:
    script = project(
        tmp_path / "project",
        registry,
        {"default": target_bases["py311"], "odd": target_bases[base]},
        repository=f"targets/refused-{base}",
    )
    with pytest.raises(ConfigurationError, match=message) as raised:
        build_it(script, tmp_path / "cache")
    assert target_bases[base] in str(raised.value)
    assert tags(registry, f"targets/refused-{base}") == []


def test_a_dependency_with_no_wheel_for_the_target_is_named_and_nothing_is_pushed(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    script = project(
        tmp_path / "project",
        registry,
        {"default": target_bases["py311"], "cuda": target_bases["py313"]},
        repository="targets/no-wheel",
        requirements="numpy==1.24.4\n",  # wheels up to CPython 3.11
    )
    with pytest.raises(ConfigurationError, match="numpy") as raised:
        build_it(script, tmp_path / "cache")
    assert "3.13" in str(raised.value)
    assert tags(registry, "targets/no-wheel") == []


def test_a_base_not_built_for_the_cluster_platform_is_refused_naming_it(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    script = project(
        tmp_path / "project", registry, {"default": target_bases["arm64"]},
        repository="targets/wrong-platform",
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="linux/amd64") as raised:
        build_it(script, tmp_path / "cache")
    assert target_bases["arm64"] in str(raised.value)
    assert tags(registry, "targets/wrong-platform") == []


def sematic_build_check(script: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sematic.cli", "build", "--check", str(script)],
        env={**os.environ, "SEMATIC_CACHE": str(cache)},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def check_build(script: Path, cache: Path) -> tuple[list[str], dict[str, str]]:
    """``sematic build --check SCRIPT``: its check lines and the image map it printed."""
    done = sematic_build_check(script, cache)
    assert done.returncode == 0, done.stderr
    checks = [line for line in done.stderr.splitlines() if line.startswith("check ")]
    return checks, json.loads(done.stdout)


def test_sematic_build_check_runs_the_self_check_in_each_image_it_can_run(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    two = project(
        tmp_path / "two", registry,
        {"default": target_bases["py311"], "cuda": target_bases["py313"]},
        repository="targets/check",
    )  # fmt: skip
    checks, images = check_build(two, tmp_path / "cache")
    assert images.keys() == {"default", "cuda"}
    assert len(checks) == 2 and all(": ok in" in line for line in checks), checks
    assert any('"python": "3.13' in line for line in checks), checks
    multi = project(
        tmp_path / "multi", registry, {"default": target_bases["multi"]},
        repository="targets/check-multi", requirements=None,
        extra='platforms = ["linux/amd64", "linux/arm64"]',
    )  # fmt: skip
    checks, _ = check_build(multi, tmp_path / "cache")
    assert [line for line in checks if "linux/amd64" in line and ": ok in" in line], checks
    assert [line for line in checks if "linux/arm64" in line and "skipped" in line], checks


def test_a_failing_self_check_fails_the_build(
    registry: RegistryServer, target_bases: dict[str, str], tmp_path: Path
) -> None:
    # An environment variable of the settings that breaks the worker's imports inside the
    # image: the build pushes, then the check fails and says why.
    script = project(
        tmp_path / "project", registry, {"default": target_bases["py311"]},
        repository="targets/check-fails",
    )  # fmt: skip
    with (tmp_path / "project" / "sematic.toml").open("a") as settings:
        settings.write('[env]\nPYTHONSAFEPATH = "1"\nPYTHONNOUSERSITE = "1"\n'
                       'PYTHONHOME = "/nowhere"\n')  # fmt: skip
    done = sematic_build_check(script, tmp_path / "cache")
    assert done.returncode != 0
    assert "self-check failed" in done.stderr
