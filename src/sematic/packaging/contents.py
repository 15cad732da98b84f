"""What goes into an image's layers: third-party distributions, Sematic, the user's code.

Paths in the image::

    /opt/sematic/site-packages   third-party distributions, then Sematic itself
    /opt/sematic/bin/sematic-worker   the worker entry point (python -m sematic.worker JOB)
    /app                         the user's code: the script's package or folder, and the
                                 configured source paths; the working directory
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from sematic.core.errors import ConfigurationError
from sematic.core.images import APP, code_root
from sematic.packaging.layers import Entry, tree_entries

SITE_PACKAGES = "/opt/sematic/site-packages"
WORKER = "/opt/sematic/bin/sematic-worker"
# Not needed to run a pipeline: Sematic comes from its own layer, the rest are installers.
_LEFT_OUT = frozenset({"sematic", "pip", "setuptools", "wheel"})


def environment_entries(only: tuple[str, ...] | None = None) -> Iterator[Entry]:
    """Files of distributions installed in this environment, from their RECORD, at their
    place under site-packages: every one (but Sematic and installers), or with ``only``,
    those named, Sematic's own requirements, and what they require in turn. The images run
    on Kubernetes, where the driver follows its Jobs: its client (Sematic's ``cloud``
    extra) is in every image when it is installed here."""
    installed = {_normal(d.metadata["Name"] or ""): d for d in metadata.distributions()}
    cloud = ("kubernetes",) if "kubernetes" in installed else ()
    wanted = None if only is None else _closure(installed, ("sematic", *cloud, *only))
    for name, dist in sorted(installed.items()):
        if name in _LEFT_OUT or not dist.files or (wanted is not None and name not in wanted):
            continue
        base = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files:
            if file.parts[:1] == ("..",) or file.name.startswith("__editable__"):
                continue  # scripts outside site-packages; editable-install hooks
            if file.suffix in (".pyc", ".pyo"):
                continue
            source = base / file
            if source.is_file() or source.is_symlink():
                yield Entry.file(f"{SITE_PACKAGES}/{file.as_posix()}", source)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(installed: dict[str, metadata.Distribution], roots: tuple[str, ...]) -> set[str]:
    """``roots`` and every installed distribution they require (markers evaluated here,
    extras left out)."""
    missing = [r for r in roots if _normal(r) not in installed]
    if missing:
        raise ConfigurationError(
            f"distributions {', '.join(missing)} are not installed in this environment "
            f"({sys.prefix}); install them or remove them from the settings"
        )
    found: set[str] = set()
    pending = [_normal(r) for r in roots]
    while pending:
        name = pending.pop()
        if name in found or name not in installed:
            continue
        found.add(name)
        for text in installed[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_normal(requirement.name))
    return found


def requirements_entries(requirements: Path, cache: Path, python: str) -> Iterator[Entry]:
    """The distributions ``requirements`` pins, installed with pip for CPython ``python``
    ("3.11") on manylinux x86-64 into a cache folder keyed by the file's contents."""
    key = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()[:24]
    target = cache / "requirements" / key
    if not (target / ".complete").exists():
        partial = target.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--target", str(partial), "--requirement", str(requirements),
            "--python-version", python, "--implementation", "cp",
            "--platform", "manylinux2014_x86_64", "--only-binary=:all:",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            last = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise ConfigurationError(f"pip could not install {requirements}:\n{last}")
        (partial / ".complete").write_text("")
        partial.rename(target)
    yield from tree_entries(target, SITE_PACKAGES, skip=frozenset({".complete", "bin"}))


def sematic_entries() -> Iterator[Entry]:
    """Sematic's own package (the worker entry point imports it)."""
    package = Path(__file__).resolve().parents[1]  # this file is sematic/packaging/...
    yield from tree_entries(package, f"{SITE_PACKAGES}/sematic")


def worker_entries(python: str) -> list[Entry]:
    script = f'#!/bin/sh\nexec {python} -m sematic.worker "$@"\n'
    return [Entry(WORKER, data=script.encode(), executable=True)]


def code_entries(
    script: Path, sources: tuple[Path, ...], root: Path | None = None
) -> Iterator[Entry]:
    """The user's code: the script's code root (or ``root``, e.g. a Bazel runfiles tree,
    whose links are followed), then each configured source path under /app by its name."""
    if not script.is_file():
        raise ConfigurationError(f"{script} is not a file: name the pipeline script to package")
    if root is None:
        yield from tree_entries(code_root(script), APP)
    else:
        yield from tree_entries(root, APP, follow_links=True)
    for source in sources:
        if source.is_dir():
            yield from tree_entries(source, f"{APP}/{source.name}")
        else:
            yield Entry.file(f"{APP}/{source.name}", source)
