"""``sematic deploy``: a team's server in a Kubernetes cluster.

``sematic deploy render`` prints the manifests (YAML, or a JSON ``List``) for an operator to
review and ``kubectl apply``; they never hold a secret value.
"""

from __future__ import annotations

import json
from typing import Any

import click

from sematic.cli.errors import CliError


@click.group()
def deploy() -> None:
    """Run the Sematic server for a team in a Kubernetes cluster."""


def _quantities(raw: str, option: str) -> dict[str, str]:
    """``cpu=250m,memory=512Mi`` -> ``{"cpu": "250m", "memory": "512Mi"}``; "" -> none."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CliError(f"{option}: {item!r} is not NAME=QUANTITY (e.g. cpu=250m,memory=1Gi)")
        result[name.strip()] = value.strip()
    return result


def _ports(raw: str | None) -> tuple[int, ...]:
    if not raw:
        return ()
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as error:
        raise CliError(
            f"--host-network-ports: {raw!r} is not a list of ports (8081,8082)"
        ) from error


def render_text(objects: list[dict[str, Any]], output: str, notes: list[str]) -> str:
    """The objects as YAML documents (notes as comments first) or as one JSON ``List``."""
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError as error:
        raise CliError(
            "PyYAML is not installed: use --output json (kubectl reads it too)"
        ) from error
    header = "".join(f"# {line}\n" if line else "#\n" for line in notes)
    body = yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True, width=100)
    return header + str(body)


@deploy.command("render")
@click.option("--image", required=True, help="The server's image (see `sematic deploy image`).")
@click.option(
    "--artifact-url",
    required=True,
    help="The artifact store every replica shares (e.g. s3://bucket/sematic).",
)
@click.option(
    "--namespace", default="sematic", show_default=True, help="Where the server and its Jobs live."
)
@click.option("--name", default="sematic-server", show_default=True, help="Objects' name.")
@click.option(
    "--replicas",
    default=2,
    show_default=True,
    type=click.IntRange(1, None),
    help="Servers behind the Service (they share the database and artifact store).",
)
@click.option(
    "--secret-name",
    default="sematic-server",
    show_default=True,
    help="The Secret you create, holding database-url and api-key (see the output's notes).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name clients reach the server by (repeatable); then only those names and "
    "loopback ones are answered. Default: any name (the API key guards the server).",
)
@click.option(
    "--host-network-ports",
    default=None,
    metavar="P1,P2",
    help="For a cluster without a pod network (the local test cluster): one Deployment per "
    "port, each pod on the node's network listening on 127.0.0.1:PORT.",
)
@click.option(
    "--requests",
    default="cpu=250m,memory=512Mi",
    show_default=True,
    help='Each replica\'s resource requests (NAME=QUANTITY,...; "" for none).',
)
@click.option(
    "--limits",
    default="memory=1Gi",
    show_default=True,
    help='Each replica\'s resource limits (NAME=QUANTITY,...; "" for none).',
)
@click.option(
    "--driver-service-account",
    default="sematic-driver",
    show_default=True,
    help="The account of driver Jobs the server starts for reruns (rendered with its Role).",
)
@click.option(
    "--server-url",
    default=None,
    help="The server as driver and worker pods reach it (default: the Service's address).",
)
@click.option(
    "--logs-claim",
    default=None,
    metavar="PVC",
    help="A ReadWriteMany PersistentVolumeClaim for run logs, shared by the replicas "
    "(default: each replica keeps those it received, in an emptyDir).",
)
@click.option(
    "--image-pull-secret",
    "pull_secrets",
    multiple=True,
    metavar="NAME",
    help="A Secret the kubelet pulls the images with (repeatable; drivers get it too).",
)
@click.option(
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="YAML documents, or one JSON List (both read by kubectl apply).",
)
@click.pass_context
def render(
    ctx: click.Context,
    image: str,
    artifact_url: str,
    namespace: str,
    name: str,
    replicas: int,
    secret_name: str,
    allowed_hosts: tuple[str, ...],
    host_network_ports: str | None,
    requests: str,
    limits: str,
    driver_service_account: str,
    server_url: str | None,
    logs_claim: str | None,
    pull_secrets: tuple[str, ...],
    output: str,
) -> None:
    """Print the manifests of a team's server: `sematic deploy render ... | kubectl apply -f -`.

    A ServiceAccount, Role and RoleBinding for the server (driver Jobs, their pods and
    logs, key Secrets in its namespace), the same for rerun drivers, a ConfigMap of
    settings, the Deployment (readiness and liveness on /api/v1/health, non-root, read-only
    root filesystem) and a ClusterIP Service (port 80). The database URL and the API key
    come from a Secret you create first; the output's first lines say how.
    """
    from sematic.kubernetes.deployment import ServerDeployment, secret_command, server_objects

    ports = _ports(host_network_ports)
    given = ctx.get_parameter_source("replicas") != click.core.ParameterSource.DEFAULT
    if ports and given and replicas != len(ports):
        raise CliError(
            f"--replicas {replicas} and {len(ports)} --host-network-ports: with host-network "
            "ports, each replica is one port"
        )
    spec = ServerDeployment(
        image=image,
        artifact_url=artifact_url,
        namespace=namespace,
        name=name,
        replicas=len(ports) or replicas,
        secret_name=secret_name,
        allowed_hosts=allowed_hosts,
        host_network_ports=ports,
        requests=_quantities(requests, "--requests"),
        limits=_quantities(limits, "--limits"),
        driver_service_account=driver_service_account,
        server_url=server_url,
        logs_claim=logs_claim,
        image_pull_secrets=pull_secrets,
    )
    notes = [
        f"Sematic server {name!r} in namespace {namespace!r}. Before applying, create the",
        "namespace and the Secret (database URL and API key; never in these manifests):",
        f"  kubectl create namespace {namespace}",
        f"  {secret_command(spec)}",
        "Then: kubectl apply -f THIS_FILE. Clients: sematic settings set server_url URL,",
        "and the same api-key (echo KEY | sematic settings set api_key -).",
    ]
    if not logs_claim and spec.replicas > 1:
        notes.append("Run logs: each replica keeps those it received (emptyDir); use --logs-claim.")
    click.echo(render_text(server_objects(spec), output, notes))


@deploy.command("image")
@click.option("--base", required=True, help="A base image with Python 3.10 to 3.13.")
@click.option("--registry", required=True, help="Where to push (host[:port]).")
@click.option(
    "--repository", default="sematic/server", show_default=True, help="The image's repository."
)
@click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    metavar="HOST",
    help="A registry reached over plain HTTP (repeatable; e.g. 127.0.0.1:5000).",
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="The cluster's platform (repeatable: an index); default linux/amd64.",
)
@click.option("--python", default="python3", show_default=True, help="The base's interpreter.")
@click.option(
    "--distribution",
    "extra",
    multiple=True,
    metavar="NAME",
    help="Another distribution for the image, at its version here (e.g. gcsfs; repeatable).",
)
def image(
    base: str,
    registry: str,
    repository: str,
    insecure: tuple[str, ...],
    platforms: tuple[str, ...],
    python: str,
    extra: tuple[str, ...],
) -> None:
    """Build the server's image with Sematic's own builder (no Docker daemon) and push it.

    The base plus the dependencies for its own Python and platform (Sematic's, psycopg,
    s3fs, the kubernetes client), Sematic, and an entry point running `sematic server`
    on port 8080. Prints REGISTRY/REPOSITORY@sha256:... on stdout (give it to `render`).
    """
    from sematic.core.errors import SematicError
    from sematic.packaging.config import DEFAULT_PLATFORMS
    from sematic.packaging.server_image import build_server_image
    from sematic.resolvers.settings import cache_folder

    try:
        built = build_server_image(
            base=base,
            registry=registry,
            repository=repository,
            cache=cache_folder(),
            insecure_registries=insecure,
            platforms=platforms or DEFAULT_PLATFORMS,
            python=python,
            extra_distributions=extra,
            report=lambda line: click.echo(line, err=True),
        )
    except SematicError as error:
        raise CliError(str(error)) from error
    click.echo(
        f"server image {built.tag} in {built.seconds:.2f} s; {built.layers_built} layer(s) "
        f"built, {built.bytes_uploaded:,} bytes uploaded",
        err=True,
    )
    click.echo(built.image)
