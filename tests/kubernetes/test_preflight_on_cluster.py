"""CloudResolver's pre-flight check against the real node of the local cluster: a GPU
request, a node selector and a taint that nothing matches are refused within seconds of
``resolve()``, before anything is submitted; ones that match pass. No image is built: the
check runs before the registry check (``check_registry=False`` here) and before anything is
recorded (the server URL is never reached)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sematic
from kubernetes import client, config
from sematic import KubernetesRequirements, KubernetesToleration, ResourceRequirements
from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ROOT_LABEL, ClusterSettings, label_value
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings
from tests.harness.cloud import cluster_settings
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(kubernetes_cluster: Cluster) -> Iterator[Any]:
    made = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def node(api: Any) -> Any:
    """The cluster's node (the local cluster has one)."""
    nodes = client.CoreV1Api(api).list_node().items
    assert nodes, "the cluster has no node"
    return nodes[0]


def _pipeline(requirements: KubernetesRequirements) -> Future:
    """A pipeline whose one ``inline=False`` step asks for ``requirements``."""

    @sematic.func(inline=False, resource_requirements=ResourceRequirements(requirements))
    def step(x: int) -> int:
        return x

    @sematic.func
    def pipeline(x: int) -> int:
        return step(x)

    return pipeline(1)


def _resolver(
    kubernetes_cluster: Cluster, tmp_path: Path, **kwargs: Any
) -> tuple[CloudResolver, LocalSettings]:
    settings = LocalSettings(
        home=tmp_path / "home", database_url="unused://", artifact_url="unused://",
        server_url="http://127.0.0.1:9",  # never reached: the check comes first
    )  # fmt: skip
    kwargs.setdefault("detach", False)
    resolver = CloudResolver(
        images=ImageMap({"default": f"{kubernetes_cluster.registry}/preflight@sha256:" + "0" * 64}),
        cluster=cluster_settings(kubernetes_cluster) if kubernetes_cluster.local
        else ClusterSettings(),
        kubeconfig=str(kubernetes_cluster.kubeconfig), settings=settings,
        check_registry=False, **kwargs,
    )  # fmt: skip
    return resolver, settings


def _refused(resolver: CloudResolver, future: Future, api: Any, what: str) -> str:
    """The refusal of ``future``, timed from resolve(); nothing of it reached the cluster."""
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as refused:
        future.resolve(resolver)
    elapsed = time.monotonic() - started
    print(f"\npre-flight refusal ({what}): {elapsed:.2f} s from resolve()\n{refused.value}")
    selector = f"{ROOT_LABEL}={label_value(future.id)}"
    namespace = resolver.cluster.namespace
    assert not client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector).items
    core = client.CoreV1Api(api)
    assert not core.list_namespaced_secret(namespace, label_selector=selector).items
    return str(refused.value)


def test_a_gpu_request_no_node_has_is_refused_before_submitting(
    kubernetes_cluster: Cluster, api: Any, node: Any, tmp_path: Path
) -> None:
    gpu = _pipeline(KubernetesRequirements(requests={"nvidia.com/gpu": "1"}))
    for detach in (False, True):
        resolver, _ = _resolver(kubernetes_cluster, tmp_path, detach=detach)
        message = _refused(resolver, gpu, api, f"GPU, detach={detach}")
        assert "step cannot be scheduled: no node can take it" in message
        assert f'node "{node.metadata.name}": requests nvidia.com/gpu=1 but can allocate 0' in (
            message
        )
    assert not any((tmp_path / "home").glob("*"))  # nothing recorded either


def test_a_node_selector_is_judged_against_the_nodes_labels(
    kubernetes_cluster: Cluster, api: Any, node: Any, tmp_path: Path
) -> None:
    resolver, settings = _resolver(kubernetes_cluster, tmp_path)
    nowhere = _pipeline(KubernetesRequirements(node_selector={"sematic.dev/pool": "nowhere"}))
    message = _refused(resolver, nowhere, api, "node selector")
    assert f'node "{node.metadata.name}": lacks label sematic.dev/pool=nowhere' in message
    hostname = node.metadata.labels["kubernetes.io/hostname"]
    here = _pipeline(KubernetesRequirements(node_selector={"kubernetes.io/hostname": hostname}))
    resolver.checked(here, settings)  # accepted


def test_a_taint_refuses_a_step_unless_it_tolerates_it(
    kubernetes_cluster: Cluster, api: Any, node: Any, tmp_path: Path
) -> None:
    key = f"preflight.sematic.dev/t-{secrets.token_hex(4)}"
    core = client.CoreV1Api(api)
    name = node.metadata.name
    resolver, settings = _resolver(kubernetes_cluster, tmp_path)
    plain = _pipeline(KubernetesRequirements())
    tolerant = _pipeline(
        KubernetesRequirements(
            tolerations=(KubernetesToleration(key=key, value="yes", effect="NoSchedule"),)
        )
    )
    taints = list(core.read_node(name).spec.taints or [])
    # NoSchedule evicts nothing; the taint is removed whatever happens.
    core.patch_node(name, {"spec": {"taints": [*_plain(taints), _taint(key)]}})
    try:
        message = _refused(resolver, plain, api, "taint")
        assert f'node "{name}": has taint {key}=yes:NoSchedule that it does not tolerate' in (
            message
        )
        resolver.checked(tolerant, settings)  # accepted
    finally:
        now = core.read_node(name).spec.taints or []
        core.patch_node(name, {"spec": {"taints": [t for t in _plain(now) if t["key"] != key]}})
    assert all(t.key != key for t in core.read_node(name).spec.taints or [])
    resolver.checked(plain, settings)  # accepted once the taint is gone


def test_warn_prints_the_explanation_and_goes_on_and_off_does_not_check(
    kubernetes_cluster: Cluster, api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpu = _pipeline(KubernetesRequirements(requests={"nvidia.com/gpu": "1"}))
    warning, settings = _resolver(kubernetes_cluster, tmp_path, preflight="warn")
    warning.checked(gpu, settings)
    err = capsys.readouterr().err
    assert "warning: pre-flight" in err and "requests nvidia.com/gpu=1 but can allocate 0" in err
    off, settings = _resolver(kubernetes_cluster, tmp_path, preflight="off")
    off.checked(gpu, settings)
    assert "pre-flight" not in capsys.readouterr().err


def _taint(key: str) -> dict[str, str]:
    return {"key": key, "value": "yes", "effect": "NoSchedule"}


def _plain(taints: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in (
                ("key", t.key),
                ("value", t.value),
                ("effect", t.effect),
                ("timeAdded", t.time_added),
            )
            if v
        }  # fmt: skip
        for t in taints
    ]
