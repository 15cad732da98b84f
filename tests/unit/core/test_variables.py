"""Every environment variable is spelled once (sematic.core.variables), read in one module
(sematic.resolvers.settings) or an entry point, and listed in the README."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sematic.core import variables

SRC = Path(__file__).resolve().parents[3] / "src" / "sematic"
README = SRC.parents[1] / "README.md"
# Modules that may read the environment: the settings module and the entry points; and the
# readers of other tools' conventions (Docker's and podman's credential files, uv's and
# pip's package indexes), which are forwarded as those tools define them.
READERS = {
    "resolvers/settings.py",
    "cli",
    "server/__main__.py",
    "worker",
    "packaging/credentials.py",
    "packaging/dependencies.py",
}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(SRC).as_posix(), ast.parse(path.read_text()))
        for path in sorted(SRC.rglob("*.py"))
    ]


def _allowed(module: str) -> bool:
    return any(module == r or module.startswith(f"{r}/") for r in READERS)


def test_each_variable_is_spelled_only_in_the_table() -> None:
    spelled = [
        f"{module}:{node.lineno} {node.value}"
        for module, tree in _modules()
        if module != "core/variables.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"SEMATIC_[A-Z_]+=?", node.value)
    ]
    assert spelled == []


def test_only_the_settings_module_and_entry_points_read_the_environment() -> None:
    reads = []
    for module, tree in _modules():
        if _allowed(module):
            continue
        for node in ast.walk(tree):
            reading = (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "getenv"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            )
            if reading and not _passes_environment_on(tree, node):
                reads.append(f"{module}:{node.lineno}")
    assert reads == []


def _passes_environment_on(tree: ast.Module, environ: ast.Attribute) -> bool:
    """``{**os.environ, ...}``: a child process's environment built from this one's (not a
    setting read)."""
    return any(
        isinstance(node, ast.Dict)
        and any(
            key is None and value is environ
            for key, value in zip(node.keys, node.values, strict=True)
        )
        for node in ast.walk(tree)
    )


def test_the_readme_lists_every_variable() -> None:
    listed = re.findall(r"^\| `(SEMATIC_[A-Z_]+)` \|", README.read_text(), flags=re.M)
    assert listed == [variable.name for variable in variables.TABLE]
    assert len(set(listed)) == len(listed)
