"""Other CPython versions of this machine, for the tests that build or check for them.

They are looked up as ``pythonX.Y`` on PATH when that is the exact version asked for, else
under pyenv's root (``$PYENV_ROOT``, default ``~/.pyenv``), where ``scripts/setup``'s
``pyenv install`` puts them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def pyenv_versions() -> Path:
    """Where pyenv keeps its interpreters."""
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"


def find_python(version: str) -> Path | None:
    """The interpreter of CPython ``version`` (``X.Y.Z``), or None when there is none."""
    short = ".".join(version.split(".")[:2])
    on_path = shutil.which(f"python{short}")
    if on_path is not None and _version_of(on_path) == version:
        return Path(on_path)
    installed = pyenv_versions() / version / "bin" / f"python{short}"
    return installed if installed.is_file() else None


def _version_of(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None
