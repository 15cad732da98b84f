"""`sematic build`: package a pipeline into one image per base and push them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from sematic.cli.errors import CliError
from sematic.core.errors import SematicError


def cache_folder() -> Path:
    """Where layers and base blobs are kept between builds: $SEMATIC_CACHE, else
    $XDG_CACHE_HOME/sematic, else ~/.cache/sematic."""
    explicit = os.environ.get("SEMATIC_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sematic"


def build_images(script: Path, *, quiet: bool = False) -> dict[str, str]:
    """Build and push; returns the image map. Progress lines go to stderr."""
    from sematic.packaging.builder import build
    from sematic.packaging.config import find_config

    if not script.is_file():
        raise CliError(f"no such script: {script}")
    try:
        config = find_config(script)
        if not quiet:
            click.echo(f"packaging {script} with {config.origin}", err=True)
        result = build(
            script,
            config,
            cache=cache_folder(),
            report=(lambda _line: None) if quiet else (lambda line: click.echo(line, err=True)),
        )
    except SematicError as error:
        raise CliError(str(error)) from error
    if not quiet:
        click.echo(
            f"built {len(result.images)} image(s) in {result.seconds:.2f} s; "
            f"uploaded {result.bytes_uploaded:,} bytes",
            err=True,
        )
    return result.image_map


def insecure_registries(script: Path) -> tuple[str, ...]:
    """The registries the script's settings reach over plain HTTP."""
    from sematic.packaging.config import find_config

    return tuple(find_config(script).insecure_registries)


@click.command()
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the image map (JSON) to this file; SEMATIC_IMAGES_FILE can name it.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def build(script: Path, output: Path | None, quiet: bool) -> None:
    """Package SCRIPT's pipeline: one image per base of its sematic.toml, pushed by content.

    Prints the image map {base tag: image@digest} as JSON on stdout.
    """
    images = build_images(script, quiet=quiet)
    text = json.dumps(images, indent=2, sort_keys=True)
    if output is not None:
        output.write_text(text + "\n")
    click.echo(text)
