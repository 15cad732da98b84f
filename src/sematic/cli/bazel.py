"""What ``bazel run //pkg:NAME`` runs (the launcher ``sematic_pipeline`` generates calls
``launch``): package the target's runfiles into one image per base, push what changed,
then run ``NAME.py`` with the image map, as ``sematic run --build`` does."""

from __future__ import annotations

import json
import os
import runpy
import sys
from dataclasses import replace
from pathlib import Path

from sematic.core.errors import SematicError
from sematic.core.images import APP


def launch(launcher: str, *, script: str, package: str, settings: str, check: bool = False) -> int:
    """``launcher``: the generated file's ``__file__``, in the runfiles tree (its links are
    not resolved: they point into the source tree). ``check``: the images' self-check runs
    after the build (``sematic_pipeline(check = True)``)."""
    from sematic.cli.errors import CliError
    from sematic.cli.packaging import build_images, use_images
    from sematic.packaging.config import parse_config, read_toml

    here = Path(os.path.abspath(launcher)).parent
    workspace = here
    for _ in Path(package).parts:
        workspace = workspace.parent
    entry = here / script
    origin = here / settings
    try:
        config = replace(parse_config(read_toml(origin), origin), code_root=workspace)
        images, _ = build_images(entry, config=config, check=check)
    except SematicError as error:
        CliError(str(error)).show()
        return 1
    except CliError as error:
        error.show()
        return 1
    print(f"image map: {json.dumps(images, sort_keys=True)}", file=sys.stderr)
    in_images = f"{APP}/{package}/{script}" if package else f"{APP}/{script}"
    sys.argv = [str(entry), *sys.argv[1:]]
    sys.path.insert(0, str(here))  # as `python NAME.py` does
    with use_images(images, config, in_images):
        runpy.run_path(str(entry), run_name="__main__")
    return 0
