"""Packaging settings: sematic.toml or [tool.sematic], validated with errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging.config import find_config


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def script_in(folder: Path) -> Path:
    return write(folder, "pipeline.py", "")


def test_sematic_toml_with_one_base_is_the_default_tag(tmp_path: Path) -> None:
    write(tmp_path, "sematic.toml", 'registry = "r:5000"\nrepository = "p"\nbase = "b:1"\n'
          '[env]\nA = "1"\n')  # fmt: skip
    config = find_config(script_in(tmp_path))
    assert (config.registry, config.repository) == ("r:5000", "p")
    assert config.bases == {"default": "b:1"}
    assert config.env == {"A": "1"}
    assert config.origin == tmp_path / "sematic.toml"


def test_pyproject_table_found_from_a_subfolder(tmp_path: Path) -> None:
    table = 'registry = "r"\nrepository = "p"\n[tool.sematic.bases]\ndefault = "a"\ncuda = "c"\n'
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n[tool.sematic]\n' + table)
    config = find_config(script_in(tmp_path / "pkg" / "sub"))
    assert config.bases == {"cuda": "c", "default": "a"}


def test_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    write(tmp_path, "sematic.toml", 'registry = "r"\nrepository = "p"\nbase = "b"\n')
    write(tmp_path / "inner", "pyproject.toml", '[project]\nname = "x"\n')
    assert find_config(script_in(tmp_path / "inner")).origin == tmp_path / "sematic.toml"


def test_base_and_bases_default_may_agree_but_not_differ(tmp_path: Path) -> None:
    head = 'registry = "r"\nrepository = "p"\n'
    write(tmp_path, "sematic.toml", head + 'base = "a"\n[bases]\ndefault = "a"\ncuda = "c"\n')
    assert find_config(script_in(tmp_path)).bases == {"cuda": "c", "default": "a"}
    write(tmp_path, "sematic.toml", head + 'base = "a"\n[bases]\ndefault = "b"\n')
    with pytest.raises(ConfigurationError, match="base = 'a' and bases.default = 'b' disagree"):
        find_config(script_in(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('repository = "p"\nbase = "b"\n', "registry is required"),
        ('registry = "r"\nrepository = "p"\n', "no base image"),
        ('registry = "r"\nrepository = "p"\nbase = 3\n', "base must be a string"),
        ('registry = "r"\nrepository = "p"\nbase = "b"\nbse = 1\n', "unknown setting"),
        ('registry = "r"\nrepository = "p"\nbase = "b"\nsources = ["nope"]\n', "does not exist"),
        ('registry = "r"\nrepository = "p"\nbase = "b"\nrequirements = "x.txt"\n', "x.txt"),
        ('registry = "r"\nrepository = "p"\nbase = "b"\n[env]\nA = 1\n', "env.A must be"),
        ("registry = \n", "cannot be read as TOML"),
    ],
)
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "sematic.toml", text)
    with pytest.raises(ConfigurationError, match=message) as raised:
        find_config(script_in(tmp_path))
    assert str(tmp_path / "sematic.toml") in str(raised.value)


def test_no_settings_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="add a sematic.toml beside it"):
        find_config(script_in(tmp_path / "a"))
