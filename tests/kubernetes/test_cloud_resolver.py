"""CloudResolver(detach=False) on the real cluster: the two-bases example, built by
``sematic build`` into the cluster's registry, runs its ``inline=False`` functions as Jobs
(each on its base's image) and records everything through a Sematic server; failures in
pods come back as the function's own exception."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import sematic
from sematic.core.errors import ConfigurationError
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ClusterSettings
from sematic.packaging.builder import build
from sematic.packaging.config import find_config
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings
from tests.cluster import Cluster
from tests.images import push_test_bases
from tests.registry import RegistryServer
from tests.unit.server.conftest import Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXTRA = """

@sematic.func(inline=False)
def fails(n: int) -> int:
    raise KeyError(f"no row {n}")


@sematic.func
def failing_pipeline(n: int) -> int:
    return fails(n)
"""


@pytest.fixture(scope="module")
def images(cluster_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> ImageMap:
    registry = cluster_registry
    bases = push_test_bases(registry)
    project = tmp_path_factory.mktemp("cloud")
    script = project / "cloudpipe.py"
    shutil.copy(ROOT / "examples" / "two_bases" / "pipeline.py", script)
    with script.open("a") as f:
        f.write(EXTRA)
    (project / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "tests/cloud"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\n'
        f'[bases]\ndefault = "{bases["default"]}"\ncuda = "{bases["cuda"]}"\n'
    )
    sys.path.insert(0, str(project))
    built = build(script, find_config(script), cache=tmp_path_factory.mktemp("cache"))
    return ImageMap(built.image_map)


def resolver(
    kubernetes_cluster: Cluster, images: ImageMap, server: Server, tmp_path: Path
) -> CloudResolver:
    settings = LocalSettings(
        home=tmp_path / "home", database_url="unused://", artifact_url="unused://",
        server_url=server.url,
    )  # fmt: skip
    return CloudResolver(
        detach=False,
        images=images,
        cluster=ClusterSettings(host_network=True),
        kubeconfig=str(kubernetes_cluster.kubeconfig),
        settings=settings,
    )


def test_each_inline_false_function_runs_in_a_job_on_its_base(
    kubernetes_cluster: Cluster, images: ImageMap, server: Server, tmp_path: Path
) -> None:
    import cloudpipe  # type: ignore[import-not-found]

    future = cloudpipe.pipeline(8)
    value = future.resolve(resolver(kubernetes_cluster, images, server, tmp_path))
    assert value == "mean 0.438 computed on cuda"  # train ran on the cuda base's image
    graph: dict[str, Any] = httpx.get(f"{server.url}/api/v1/runs/{future.id}/graph").json()
    runs = {run["name"]: run for run in graph["runs"]}
    assert {name: run["state"] for name, run in runs.items()} == {
        "pipeline": "RESOLVED", "prepare": "RESOLVED", "train": "RESOLVED"
    }  # fmt: skip
    assert runs["prepare"]["container_image"] == images.images["default"]
    assert runs["train"]["container_image"] == images.images["cuda"]
    assert runs["pipeline"]["container_image"] is None  # inline: ran in this process


def test_a_failure_in_a_pod_is_the_functions_own_exception(
    kubernetes_cluster: Cluster, images: ImageMap, server: Server, tmp_path: Path
) -> None:
    import cloudpipe

    with pytest.raises(sematic.PipelineFailedError) as raised:
        cloudpipe.failing_pipeline(3).resolve(
            resolver(kubernetes_cluster, images, server, tmp_path)
        )
    cause = raised.value.__cause__
    assert isinstance(cause, KeyError) and cause.args == ("no row 3",), cause


def test_a_missing_tag_or_server_is_refused_before_anything_runs(
    kubernetes_cluster: Cluster, images: ImageMap, tmp_path: Path
) -> None:
    import cloudpipe

    only_default = ImageMap({"default": images.images["default"]})
    settings = LocalSettings(home=tmp_path, database_url="unused://", artifact_url="unused://",
                             server_url="http://127.0.0.1:9")  # fmt: skip
    with pytest.raises(ConfigurationError, match="cuda"):
        cloudpipe.pipeline(8).resolve(CloudResolver(detach=False, images=only_default,
                                                    settings=settings))  # fmt: skip
    no_server = LocalSettings(home=tmp_path, database_url="unused://", artifact_url="unused://")
    with pytest.raises(ConfigurationError, match="server_url"):
        cloudpipe.pipeline(8).resolve(CloudResolver(detach=False, images=images,
                                                    settings=no_server))  # fmt: skip
    with pytest.raises(ConfigurationError, match="detach=False"):
        CloudResolver()
