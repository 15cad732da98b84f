"""What goes into an image's layers besides the dependencies (``dependencies.py``): Sematic,
the worker entry point, the user's code.

Paths in the image::

    /opt/sematic/site-packages   third-party distributions, then Sematic itself
    /opt/sematic/bin/sematic-worker   the worker entry point (python -m sematic.worker JOB)
    /app                         the user's code: the script's package or folder, and the
                                 configured source paths; the working directory
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sematic.core.errors import ConfigurationError
from sematic.core.images import APP, code_root
from sematic.packaging.layers import Entry, tree_entries

SITE_PACKAGES = "/opt/sematic/site-packages"
WORKER = "/opt/sematic/bin/sematic-worker"


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
