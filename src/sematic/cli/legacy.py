"""Sematic 0.41's commands whose work is done differently here: each does the nearest thing
this tool has, or says what replaced it (``server-settings``, ``github``, ``advanced``)."""

from __future__ import annotations

import click

from sematic.cli.errors import CliError


@click.command()
def migrate() -> None:
    """Bring the database's schema up to date (0.41's `sematic migrate`).

    The server and the resolvers also do it whenever they open the database.
    """
    from sematic.resolvers.settings import LocalSettings
    from sematic.resolvers.stores import open_stores

    settings = LocalSettings.from_environment()
    if settings.server_url:
        raise CliError(
            "server_url is set: the Sematic server migrates its own database when it starts"
        )
    metadata, _ = open_stores(settings)  # opening migrates
    metadata.close()
    click.echo("the database's schema is up to date")


@click.command()
@click.option("--orphaned-runs", is_flag=True, help="Accepted (0.41): all of it is done.")
@click.option("--stale-pipeline-runs", is_flag=True, help="Accepted (0.41): all of it is done.")
@click.option("--zombie-pipeline-runs", is_flag=True, help="Accepted (0.41): all of it is done.")
@click.option("--orphaned-jobs", is_flag=True, help="Accepted (0.41): all of it is done.")
@click.option("--orphaned-resources", is_flag=True, help="Accepted (0.41): all of it is done.")
@click.option("--force", is_flag=True, help="Accepted (0.41): all of it is done.")
def clean(**_flags: bool) -> None:
    """Fail the pipelines whose driver is gone for good and delete what finished pipelines
    left in the cluster (0.41's `sematic clean`).

    `sematic runs` and a server started with --kubeconfig do the same on their own.
    """
    from sematic.cli.runs import reap_with_store

    reap_with_store()


def _replaced(name: str, replacement: str) -> click.Command:
    def explain() -> None:
        raise CliError(f"`sematic {name}` is Sematic 0.41's; {replacement}")

    return click.Command(
        name,
        callback=explain,
        help=f"Sematic 0.41's command: {replacement}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


server_settings = _replaced(
    "server-settings",
    "the server is configured by its options (sematic server --help) and the environment "
    "variables the README lists",
)
github = _replaced(
    "github", "commit checks are not provided; run the pipeline from your CI instead"
)
advanced = _replaced("advanced", "log storage is the artifact store; read logs with sematic logs")
