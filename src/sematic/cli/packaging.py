"""`sematic build`: package a pipeline into one image per base and push them."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sematic.cli.errors import CliError
from sematic.core.errors import SematicError

if TYPE_CHECKING:
    from sematic.packaging.config import PackagingConfig


def build_images(
    script: Path,
    *,
    quiet: bool = False,
    config: PackagingConfig | None = None,
    check: bool = False,
    cache: Path | None = None,
) -> tuple[dict[str, str], PackagingConfig]:
    """Build and push; returns the image map and the settings used (``config``, else the
    nearest sematic.toml). Progress lines go to stderr. ``check``: run each image's worker
    self-check under runc afterwards; a failure is an error. ``cache``: where layers and
    base blobs are kept (default: ``cache_folder()``)."""
    from sematic.packaging.builder import build
    from sematic.packaging.config import find_config
    from sematic.resolvers.settings import cache_folder

    if not script.is_file():
        raise CliError(f"no such script: {script}")
    try:
        config = config or find_config(script)
        if not quiet:
            click.echo(f"packaging {script} with {config.origin}", err=True)
        result = build(
            script,
            config,
            cache=cache or cache_folder(),
            report=(lambda _line: None) if quiet else (lambda line: click.echo(line, err=True)),
            check=check,
        )
    except SematicError as error:
        raise CliError(str(error)) from error
    if not quiet:
        click.echo(
            f"built {len(result.images)} image(s) in {result.seconds:.2f} s; "
            f"uploaded {result.bytes_uploaded:,} bytes",
            err=True,
        )
    return result.image_map, config


def use_images(
    images: dict[str, str], config: PackagingConfig, script: str | None = None
) -> AbstractContextManager[None]:
    """Hand the images to the resolvers this process creates within the block: the map,
    the registries reached over plain HTTP, and (when not where the usual layout puts it)
    where the script is in them."""
    from sematic.core.images import ImageMap
    from sematic.resolvers.settings import images_built

    image_map = ImageMap(images, insecure_registries=tuple(config.insecure_registries))
    return images_built(image_map, script)


@click.command()
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the image map (JSON) to this file; SEMATIC_IMAGES_FILE can name it.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option(
    "--check",
    is_flag=True,
    help="Then run each image's worker imports and a type check inside it with runc (as "
    "root, on Linux; images for another architecture are skipped). Fails if one fails.",
)
def build(script: Path, output: Path | None, quiet: bool, check: bool) -> None:
    """Package SCRIPT's pipeline: one image per base of its sematic.toml, pushed by content.

    Dependencies are installed for each base's own Python and platform (read from the
    base image). Prints the image map {base tag: image@digest} as JSON on stdout.
    """
    images, _ = build_images(script, quiet=quiet, check=check)
    text = json.dumps(images, indent=2, sort_keys=True)
    if output is not None:
        output.write_text(text + "\n")
    click.echo(text)
