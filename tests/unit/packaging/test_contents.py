"""What the layers hold: installed distributions (all, or a closure), pip-installed
requirements, Sematic itself, the user's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging import contents
from sematic.packaging.config import find_config

SITE = contents.SITE_PACKAGES


def top_folders(entries: list[contents.Entry]) -> set[str]:
    return {e.path.removeprefix(SITE + "/").split("/")[0] for e in entries}


def test_named_distributions_bring_what_they_and_sematic_require_and_nothing_else() -> None:
    folders = top_folders(list(contents.environment_entries(("pandas",))))
    assert {"pandas", "numpy", "dateutil"} <= folders  # named, and what it requires
    assert {"httpx", "httpcore", "pydantic", "sqlalchemy", "click"} <= folders  # Sematic's
    assert not {"pytest", "mypy", "ruff", "playwright"} & folders  # installed, not needed
    assert "sematic" not in folders  # Sematic has its own layer
    assert not any(e.path.endswith(".pyc") for e in contents.environment_entries(()))


def test_without_a_list_every_installed_distribution_but_installers_goes_in() -> None:
    folders = top_folders(list(contents.environment_entries()))
    assert {"pytest", "pandas", "httpx"} <= folders
    assert not {"pip", "setuptools", "sematic"} & folders


def test_a_distribution_not_installed_is_named() -> None:
    with pytest.raises(ConfigurationError, match="distributions no-such-dist are not installed"):
        list(contents.environment_entries(("no-such-dist",)))


def test_requirements_and_distributions_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("idna\n")
    (tmp_path / "sematic.toml").write_text(
        'registry = "r"\nrepository = "p"\nbase = "b"\n'
        'requirements = "requirements.txt"\ndistributions = []\n'
    )
    (tmp_path / "pipeline.py").write_text("")
    with pytest.raises(ConfigurationError, match="keep one"):
        find_config(tmp_path / "pipeline.py")


@pytest.mark.slow
def test_requirements_are_installed_by_pip_for_the_image_once(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("idna==3.7\n")
    cache = tmp_path / "cache"
    first = list(contents.requirements_entries(requirements, cache, "3.11"))
    paths = {e.path for e in first}
    assert f"{SITE}/idna/__init__.py" in paths
    assert any(p.startswith(f"{SITE}/idna-3.7.dist-info/") for p in paths)
    (installed,) = (cache / "requirements").iterdir()
    marker = (installed / ".complete").stat().st_mtime_ns
    again = list(contents.requirements_entries(requirements, cache, "3.11"))
    assert again == first
    assert (installed / ".complete").stat().st_mtime_ns == marker  # not installed again


@pytest.mark.slow
def test_requirements_pip_cannot_install_are_a_clear_error(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-distribution-anywhere==1.0\n")
    with pytest.raises(ConfigurationError, match="pip could not install") as raised:
        list(contents.requirements_entries(requirements, tmp_path / "cache", "3.11"))
    assert "no-such-distribution-anywhere" in str(raised.value)
    folder = tmp_path / "cache" / "requirements"
    assert not folder.exists() or not list(folder.iterdir())  # nothing left behind


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
