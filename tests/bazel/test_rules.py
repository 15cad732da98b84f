"""rules_sematic with Bazel (Debian's bazel-bootstrap, offline) on examples/bazel, the seeds'
BUILD snippets adapted only in labels and the registry address: ``:main_local`` runs the
pipeline with no packaging; ``:main`` pushes one image per base (two) and runs it with the
image map; a second ``bazel run`` with nothing changed pushes nothing; ``base`` and
``bases["default"]`` disagreeing fails, naming the target."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sematic.packaging.reference import ImageReference
from sematic.packaging.registry import RegistryClient
from tests.harness.images import push_test_bases
from tests.harness.registry import RegistryServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bazel"
EXAMPLE_REGISTRY = "127.0.0.1:5000"


def _workspace_folder() -> Path:
    """A fixed place, so Bazel's output base (keyed by the workspace's path) is reused
    from one run of the suite to the next."""
    cache = Path(os.environ.get("SEMATIC_DEV_CACHE") or Path.home() / ".cache" / "sematic-dev")
    return cache / "bazel-example"


@pytest.fixture(scope="module")
def workspace(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("bazel") is None:
        pytest.fail("bazel is missing: scripts/setup installs bazel-bootstrap", pytrace=False)
    push_test_bases(registry)  # base/python:default and :cuda, as the example names them
    folder = _workspace_folder()
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(EXAMPLE, folder)
    build = folder / "my_pipeline" / "BUILD"
    rules = build.read_text().replace(EXAMPLE_REGISTRY, registry.address)
    # The rule's equivalent of `sematic build --check`: every image's self-check, under runc.
    build.write_text(
        rules.replace('env = {"VAR": "VALUE"},', 'env = {"VAR": "VALUE"},\n    check = True,')
    )
    space = folder / "WORKSPACE"
    space.write_text(space.read_text().replace('"../../bazel"', f'"{ROOT / "bazel"}"'))
    try:
        yield folder
    finally:
        subprocess.run(["bazel", "shutdown"], cwd=folder, capture_output=True, check=False)


def bazel(
    workspace: Path, tmp_path: Path, *args: str, cache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Bazel's Python is `python3` on PATH: this environment's, where Sematic is.
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "SEMATIC_HOME": str(tmp_path / "home"),
        "SEMATIC_CACHE": str(cache or tmp_path / "layers"),
    }
    return subprocess.run(
        ["bazel", *args], cwd=workspace, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


def test_the_local_target_runs_the_pipeline_without_packaging(
    workspace: Path, tmp_path: Path
) -> None:
    ran = bazel(workspace, tmp_path, "run", "//my_pipeline:main_local", "--", "10")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "mean 0.450 computed on this machine (VAR=None)"
    assert "built" not in ran.stderr  # nothing packaged


def test_the_local_target_cannot_submit_remote_jobs(workspace: Path, tmp_path: Path) -> None:
    ran = bazel(workspace, tmp_path, "run", "//my_pipeline:main_local", "--", "10", "--cloud")
    assert ran.returncode != 0
    assert "CloudResolver needs container images and none were built" in ran.stderr
    assert "NAME_local packages nothing" in ran.stderr


def test_the_target_pushes_one_image_per_base_then_nothing_when_unchanged(
    workspace: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    cache = tmp_path / "layers"
    first = bazel(workspace, tmp_path, "run", "//my_pipeline:main", "--", "10", cache=cache)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "mean 0.450 computed on this machine (VAR=None)"
    assert "built 2 image(s)" in first.stderr
    checks = [line for line in first.stderr.splitlines() if line.startswith("check ")]
    assert len(checks) == 2 and all(": ok in" in line for line in checks), first.stderr
    # The cuda base has another Python (Debian trixie's 3.13) than the default (3.11).
    assert any('"python": "3.13' in line for line in checks), checks
    uploaded = int(re.search(r"uploaded ([\d,]+) bytes", first.stderr)[1].replace(",", ""))  # type: ignore[index]
    assert uploaded > 0
    images = json.loads(re.search(r"image map: (\{.*\})", first.stderr)[1])  # type: ignore[index]
    assert set(images) == {"default", "cuda"}
    with RegistryClient(registry.address, insecure=True) as client:
        for image in images.values():
            ref = ImageReference.parse(image)
            assert ref.registry == registry.address and ref.repository == "examples/bazel"
            manifest = json.loads(client.get_manifest(ref.repository, ref.digest or "").body)
            config = json.loads(client.get_blob(ref.repository, manifest["config"]["digest"]))
            assert "VAR=VALUE" in config["config"]["Env"]  # the rule's env
            assert config["config"]["Entrypoint"] == ["/opt/sematic/bin/sematic-worker"]

    second = bazel(workspace, tmp_path, "run", "//my_pipeline:main", "--", "10", cache=cache)
    assert second.returncode == 0, second.stderr
    assert "uploaded 0 bytes" in second.stderr
    assert second.stderr.count("tag unchanged") == 2
    assert json.loads(re.search(r"image map: (\{.*\})", second.stderr)[1]) == images  # type: ignore[index]


def test_base_and_a_different_default_in_bases_fail_naming_the_target(
    workspace: Path, tmp_path: Path
) -> None:
    package = workspace / "conflict"
    package.mkdir(exist_ok=True)
    (package / "main.py").write_text("print('never')\n")
    (package / "BUILD").write_text(
        'load("@rules_sematic//:pipeline.bzl", "sematic_pipeline")\n'
        'sematic_pipeline(name = "main", deps = [], registry = "r.example", '
        'repository = "x", base = "r.example/a:1", bases = {"default": "r.example/b:1"})\n'
    )
    built = bazel(workspace, tmp_path, "build", "//conflict:main")
    assert built.returncode != 0
    assert 'sematic_pipeline //conflict:main: base = "r.example/a:1" and bases["default"]' in (
        built.stderr
    )
    assert "give the default base once" in built.stderr
