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
from sematic.core.images import APP, IMAGES_VARIABLE, INSECURE_VARIABLE, SCRIPT_VARIABLE


def launch(launcher: str, *, script: str, package: str, settings: str) -> int:
    """``launcher``: the generated file's ``__file__``, in the runfiles tree (its links are
    not resolved: they point into the source tree)."""
    from sematic.cli.packaging import cache_folder
    from sematic.packaging.builder import build
    from sematic.packaging.config import parse_config, read_toml

    here = Path(os.path.abspath(launcher)).parent
    workspace = here
    for _ in Path(package).parts:
        workspace = workspace.parent
    entry = here / script
    origin = here / settings
    try:
        config = replace(parse_config(read_toml(origin), origin), code_root=workspace)
        result = build(
            entry, config, cache=cache_folder(), report=lambda line: print(line, file=sys.stderr)
        )
    except SematicError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"built {len(result.images)} image(s) in {result.seconds:.2f} s; "
        f"uploaded {result.bytes_uploaded:,} bytes",
        file=sys.stderr,
    )
    print(f"image map: {json.dumps(result.image_map, sort_keys=True)}", file=sys.stderr)
    os.environ[IMAGES_VARIABLE] = json.dumps(result.image_map)
    os.environ[INSECURE_VARIABLE] = ",".join(config.insecure_registries)
    os.environ[SCRIPT_VARIABLE] = f"{APP}/{package}/{script}" if package else f"{APP}/{script}"
    sys.argv = [str(entry), *sys.argv[1:]]
    sys.path.insert(0, str(here))  # as `python NAME.py` does
    runpy.run_path(str(entry), run_name="__main__")
    return 0
