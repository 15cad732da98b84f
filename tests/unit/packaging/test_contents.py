"""What the layers hold besides the dependencies (test_dependencies.py): Sematic itself, the
worker entry point, the user's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging import contents
from sematic.packaging.config import find_config

SITE = contents.SITE_PACKAGES


def top_folders(entries: list[contents.Entry]) -> set[str]:
    return {e.path.removeprefix(SITE + "/").split("/")[0] for e in entries}


def test_requirements_and_distributions_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("idna\n")
    (tmp_path / "sematic.toml").write_text(
        'registry = "r"\nrepository = "p"\nbase = "b"\n'
        'requirements = "requirements.txt"\ndistributions = []\n'
    )
    (tmp_path / "pipeline.py").write_text("")
    with pytest.raises(ConfigurationError, match="keep one"):
        find_config(tmp_path / "pipeline.py")


def test_code_is_the_scripts_top_package_and_the_sources_by_name(tmp_path: Path) -> None:
    package = tmp_path / "project" / "acme" / "pipelines"
    package.mkdir(parents=True)
    (tmp_path / "project" / "acme" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text("")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "util.py").write_text("")
    single = tmp_path / "settings.json"
    single.write_text("{}")
    paths = {e.path for e in contents.code_entries(package / "main.py", (lib, single))}
    assert {"/app/acme/__init__.py", "/app/acme/pipelines/main.py"} <= paths
    assert {"/app/lib/util.py", "/app/settings.json"} <= paths


def test_sematic_layer_holds_the_worker_module() -> None:
    paths = {e.path for e in contents.sematic_entries()}
    assert f"{SITE}/sematic/worker/__main__.py" in paths
    (worker,) = contents.worker_entries("python3")
    assert worker.path == contents.WORKER
    assert worker.data == b'#!/bin/sh\nexec python3 -m sematic.worker "$@"\n'
