"""Pre-flight schedulability on plain data: which node could ever take a function's pod,
and why the others refuse it. (On the real cluster:
tests/kubernetes/test_preflight_on_cluster.py.)"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import sematic
from sematic import (
    KubernetesRequirements,
    KubernetesResourceRequirements,
    KubernetesToleration,
    ResourceRequirements,
)
from sematic.core.errors import ConfigurationError
from sematic.core.images import ImageMap, called_from
from sematic.core.resources import quantity
from sematic.kubernetes import preflight
from sematic.kubernetes.manifests import ClusterSettings
from sematic.kubernetes.preflight import (
    Node,
    Taint,
    pod_spec_of,
    refusals,
    tolerates,
    why_unschedulable,
)
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.settings import LocalSettings

CPU_NODE = Node(
    "cpu-1",
    labels={"kubernetes.io/hostname": "cpu-1", "pool": "cpu"},
    allocatable={"cpu": "3920m", "memory": "15Gi", "ephemeral-storage": "100G", "pods": "110"},
)
GPU_NODE = Node(
    "gpu-1",
    labels={"node.kubernetes.io/instance-type": "g4dn.xlarge", "pool": "gpu"},
    taints=(Taint("nvidia.com/gpu", "present", "NoSchedule"),),
    allocatable={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
)


def _spec(**kwargs: Any) -> dict[str, Any]:
    return pod_spec_of(KubernetesRequirements(**kwargs), ClusterSettings())


def _why(requirements: KubernetesRequirements, *nodes: Node) -> str | None:
    spec = pod_spec_of(requirements, ClusterSettings())
    return why_unschedulable("pipeline.train", spec, list(nodes))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Decimal(2)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")),
        ("4Gi", Decimal(4 * 1024**3)), ("512Mi", Decimal(512 * 1024**2)),
        ("1G", Decimal(10**9)), ("1e3", Decimal(1000)), ("8029868Ki", Decimal(8029868 * 1024)),
        ("100k", Decimal(100000)), ("250u", Decimal("0.00025")), (".5", Decimal("0.5")),
    ],
)  # fmt: skip
def test_quantities_are_read_as_kubernetes_reads_them(text: str, value: Decimal) -> None:
    assert quantity(text) == value


def test_a_quantity_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a Kubernetes quantity"):
        quantity("4GB")


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"},
         Taint("gpu", "yes", "NoSchedule"), True),
        ({"key": "gpu", "value": "yes"}, Taint("gpu", "yes", "NoExecute"), True),  # any effect
        ({"key": "gpu", "value": "no"}, Taint("gpu", "yes", "NoSchedule"), False),
        ({"key": "gpu", "operator": "Exists"}, Taint("gpu", "yes", "NoSchedule"), True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
         Taint("gpu", None, "NoSchedule"), False),
        ({"operator": "Exists"}, Taint("anything", "at-all", "NoExecute"), True),
        ({"key": "other", "operator": "Exists"}, Taint("gpu", None, "NoSchedule"), False),
        ({"key": "gpu"}, Taint("gpu", None, "NoSchedule"), True),  # Equal, both empty
    ],
)  # fmt: skip
def test_tolerations_match_taints_by_kubernetes_rules(
    toleration: dict[str, str], taint: Taint, tolerated: bool
) -> None:
    assert tolerates(toleration, taint) is tolerated


def test_a_taint_refuses_unless_tolerated_and_prefer_no_schedule_never_refuses() -> None:
    tainted = Node("n1", taints=(Taint("dedicated", "ml", "NoSchedule"),))
    why = _why(KubernetesRequirements(), tainted)
    assert why is not None and 'node "n1": has taint dedicated=ml:NoSchedule' in why
    tolerant = KubernetesRequirements(
        tolerations=(KubernetesToleration(key="dedicated", value="ml", effect="NoSchedule"),)
    )
    assert _why(tolerant, tainted) is None
    exists = KubernetesRequirements(tolerations=(KubernetesToleration(operator="Exists"),))
    assert _why(exists, Node("n2", taints=(Taint("x", None, "NoExecute"),))) is None
    preferred = Node("n3", taints=(Taint("spot", "true", "PreferNoSchedule"),))
    assert _why(KubernetesRequirements(), preferred) is None


def test_taints_of_passing_conditions_are_not_held_against_a_node() -> None:
    passing = (
        Taint("node.kubernetes.io/unschedulable", None, "NoSchedule"),
        Taint("node.kubernetes.io/not-ready", None, "NoExecute"),
    )
    cordoned = Node("n1", taints=passing)
    assert _why(KubernetesRequirements(), cordoned) is None


def test_a_node_selector_needs_every_label() -> None:
    wanted = KubernetesRequirements(node_selector={"pool": "gpu", "zone": "a"})
    assert refusals(wanted, [CPU_NODE, GPU_NODE]) == {
        "cpu-1": ["lacks label pool=gpu (it has pool=cpu)", "lacks label zone=a"],
        "gpu-1": ["lacks label zone=a", "has taint nvidia.com/gpu=present:NoSchedule that it "
                  "does not tolerate"],
    }  # fmt: skip
    assert _why(KubernetesRequirements(node_selector={"pool": "cpu"}), CPU_NODE) is None


def test_requests_are_compared_with_allocatable_including_extended_resources() -> None:
    gpu = KubernetesRequirements(
        requests={"nvidia.com/gpu": "1", "cpu": "2"},
        tolerations=(KubernetesToleration(key="nvidia.com/gpu", operator="Exists"),),
    )
    assert refusals(gpu, [CPU_NODE, GPU_NODE]) == {
        "cpu-1": ["requests nvidia.com/gpu=1 but can allocate 0"], "gpu-1": [],
    }  # fmt: skip
    big = KubernetesRequirements(requests={"cpu": "4", "memory": "16Gi"})
    assert refusals(big, [CPU_NODE]) == {
        "cpu-1": ["requests cpu=4 but can allocate 3920m", "requests memory=16Gi but can "
                  "allocate 15Gi"],
    }  # fmt: skip
    disk = KubernetesRequirements(requests={"ephemeral-storage": "200Gi"})
    assert refusals(disk, [CPU_NODE])["cpu-1"] == [
        "requests ephemeral-storage=200Gi but can allocate 100G"
    ]
    # A node that reports no ephemeral storage is not judged on it; one that reports no
    # GPU has none.
    assert refusals(disk, [GPU_NODE])["gpu-1"] == [
        "has taint nvidia.com/gpu=present:NoSchedule that it does not tolerate"
    ]


def test_a_limit_alone_counts_as_the_request() -> None:
    only_limit = KubernetesRequirements(limits={"memory": "32Gi"})
    assert refusals(only_limit, [CPU_NODE])["cpu-1"] == [
        "requests memory=32Gi but can allocate 15Gi"
    ]


def test_a_limit_below_its_request_is_refused_whatever_the_nodes() -> None:
    wanted = KubernetesRequirements(requests={"cpu": "2", "memory": "1Gi"}, limits={"cpu": "1"})
    why = _why(wanted, CPU_NODE)
    assert why == "pipeline.train cannot be scheduled: limits cpu=1 is below its request cpu=2"
    assert why_unschedulable("f", pod_spec_of(wanted, ClusterSettings()), None) is not None


def test_shared_memory_must_fit_in_the_memory_of_the_container() -> None:
    wanted = KubernetesRequirements(limits={"memory": "1Gi"}, shared_memory="2Gi")
    why = _why(wanted, CPU_NODE)
    assert why is not None and "shared memory (/dev/shm) of 2Gi exceeds the container's " \
        "memory 1Gi" in why  # fmt: skip
    by_request = KubernetesRequirements(requests={"memory": "1Gi"}, shared_memory="1024Mi")
    assert _why(by_request, CPU_NODE) is None
    assert _why(KubernetesRequirements(shared_memory="2Gi"), CPU_NODE) is None  # no bound
    compat = KubernetesResourceRequirements(
        requests={"memory": "2Gi"}, mount_expanded_shared_memory=True
    )
    assert _why(compat, CPU_NODE) is None  # 0.41's shm as large as the memory request


def test_the_message_names_the_function_the_requirement_and_each_node() -> None:
    wanted = KubernetesRequirements(
        node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"},
        requests={"nvidia.com/gpu": "2"},
    )
    why = _why(wanted, CPU_NODE, GPU_NODE)
    assert why == (
        "pipeline.train cannot be scheduled: no node can take it: "
        'node "cpu-1": lacks label node.kubernetes.io/instance-type=g4dn.xlarge, '
        "requests nvidia.com/gpu=2 but can allocate 0; "
        'node "gpu-1": has taint nvidia.com/gpu=present:NoSchedule that it does not tolerate, '
        "requests nvidia.com/gpu=2 but can allocate 1"
    )
    assert _why(wanted) == "pipeline.train cannot be scheduled: the cluster has no nodes"


def test_the_pod_judged_is_the_one_submitted_with_the_clusters_template() -> None:
    cluster = ClusterSettings(
        pod_template={"spec": {"nodeSelector": {"pool": "gpu"},
                               "tolerations": [{"operator": "Exists"}]}}
    )  # fmt: skip
    spec = pod_spec_of(KubernetesRequirements(requests={"cpu": "1"}), cluster)
    assert why_unschedulable("f", spec, [GPU_NODE]) is None
    why = why_unschedulable("f", spec, [CPU_NODE])
    assert why is not None and "lacks label pool=gpu" in why
    sidecar = ClusterSettings(
        pod_template={"spec": {"containers": [
            {"name": "proxy", "image": "p", "resources": {"requests": {"cpu": "3"}}}]}}
    )  # fmt: skip
    two = pod_spec_of(KubernetesRequirements(requests={"cpu": "1"}), sidecar)
    assert preflight.node_refusals(two, CPU_NODE) == ["requests cpu=4 but can allocate 3920m"]


def test_required_node_affinity_from_a_template_is_judged() -> None:
    def affinity(operator: str, *values: str) -> ClusterSettings:
        term = {"key": "pool", "operator": operator, "values": list(values)}
        required = {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
        node_affinity = {"requiredDuringSchedulingIgnoredDuringExecution": required}
        return ClusterSettings(pod_template={"spec": {"affinity": {"nodeAffinity": node_affinity}}})

    for cluster, takes in [
        (affinity("In", "cpu", "other"), True), (affinity("NotIn", "cpu"), False),
        (affinity("Exists"), True), (affinity("DoesNotExist"), False),
    ]:  # fmt: skip
        spec = pod_spec_of(None, cluster)
        assert (why_unschedulable("f", spec, [CPU_NODE]) is None) is takes, cluster


def test_nodes_are_read_from_the_clients_objects() -> None:
    item = SimpleNamespace(
        metadata=SimpleNamespace(name="n1", labels={"a": "b"}),
        spec=SimpleNamespace(taints=[SimpleNamespace(key="k", value=None, effect="NoSchedule")]),
        status=SimpleNamespace(allocatable={"cpu": "2"}),
    )
    node = preflight.node_of(item)
    assert (node.name, dict(node.labels), node.taints, dict(node.allocatable)) == (
        "n1", {"a": "b"}, (Taint("k", None, "NoSchedule"),), {"cpu": "2"},
    )  # fmt: skip
    bare = SimpleNamespace(metadata=SimpleNamespace(name="n2", labels=None),
                           spec=SimpleNamespace(taints=None), status=None)  # fmt: skip
    assert preflight.node_of(bare) == Node("n2")


def test_nodes_rbac_forbids_listing_give_a_reason_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    closed: list[bool] = []

    class Forbidding:
        def __init__(self, api: object) -> None:
            pass

        def list_node(self, **kwargs: object) -> object:
            raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(client, "CoreV1Api", Forbidding)
    monkeypatch.setattr(
        "sematic.kubernetes.pipelines.api_client",
        lambda kubeconfig: SimpleNamespace(close=lambda: closed.append(True)),
    )
    reason = preflight.cluster_nodes("unused")
    assert isinstance(reason, str) and reason.startswith("cannot list the cluster's nodes: 403")
    assert "ClusterRole" in reason and closed == [True]


# -- CloudResolver(preflight=...) -------------------------------------------------------

GPU = ResourceRequirements(kubernetes=KubernetesRequirements(requests={"nvidia.com/gpu": "1"}))


@sematic.func(inline=False, resource_requirements=GPU)
def train(x: int) -> int:
    return x


@sematic.func(inline=False)
def featurize(x: int) -> int:
    return x


@sematic.func
def gpu_pipeline(x: int) -> int:
    return train(featurize(x))


@sematic.func
def cpu_pipeline(x: int) -> int:
    return featurize(x)


def _resolver(tmp_path: Path, **kwargs: Any) -> tuple[CloudResolver, LocalSettings]:
    settings = LocalSettings(home=tmp_path, database_url="unused://", artifact_url="unused://",
                             server_url="http://127.0.0.1:9")  # fmt: skip
    resolver = CloudResolver(
        images=ImageMap({"default": "r/p@sha256:aa"}), cluster=ClusterSettings(),
        settings=settings, check_registry=False, detach=False, **kwargs,
    )  # fmt: skip
    return resolver, settings


@pytest.fixture
def cpu_cluster(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    asked: list[str | None] = []

    def nodes(kubeconfig: str | None) -> list[Node]:
        asked.append(kubeconfig)
        return [CPU_NODE]

    monkeypatch.setattr(preflight, "cluster_nodes", nodes)
    return asked


def test_preflight_takes_error_warn_or_off() -> None:
    with pytest.raises(ConfigurationError, match="'error', 'warn', 'off', got 'strict'"):
        CloudResolver(preflight="strict")


def test_only_the_functions_a_pipeline_names_are_checked() -> None:
    assert {f.dotted_path.rsplit(".", 1)[-1] for f in called_from(gpu_pipeline)} == {
        "gpu_pipeline", "train", "featurize",
    }  # fmt: skip
    assert {f.dotted_path.rsplit(".", 1)[-1] for f in called_from(cpu_pipeline)} == {
        "cpu_pipeline", "featurize",
    }  # fmt: skip


def test_error_refuses_before_anything_is_submitted(
    tmp_path: Path, cpu_cluster: list[str | None]
) -> None:
    resolver, settings = _resolver(tmp_path, kubeconfig="kc")
    with pytest.raises(ConfigurationError) as refused:
        gpu_pipeline(1).resolve(resolver)
    message = str(refused.value)
    assert f"{train.dotted_path} cannot be scheduled" in message
    assert 'node "cpu-1": requests nvidia.com/gpu=1 but can allocate 0' in message
    assert "featurize" not in message and "preflight='warn'" in message
    assert cpu_cluster == ["kc"] and not any(tmp_path.iterdir())  # nothing recorded
    resolver.checked(cpu_pipeline(1), settings)  # the same module's other pipeline passes


def test_warn_prints_the_same_explanation_and_goes_on(
    tmp_path: Path, cpu_cluster: list[str | None], capsys: pytest.CaptureFixture[str]
) -> None:
    resolver, settings = _resolver(tmp_path, preflight="warn")
    resolver.checked(gpu_pipeline(1), settings)
    err = capsys.readouterr().err
    assert "warning: pre-flight" in err and f"{train.dotted_path} cannot be scheduled" in err


def test_off_does_not_look_at_the_cluster(tmp_path: Path, cpu_cluster: list[str | None]) -> None:
    resolver, settings = _resolver(tmp_path, preflight="off")
    resolver.checked(gpu_pipeline(1), settings)
    assert cpu_cluster == []


def test_unreadable_nodes_skip_the_check_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(preflight, "cluster_nodes", lambda kubeconfig: "cannot list: 403")
    resolver, settings = _resolver(tmp_path)
    resolver.checked(gpu_pipeline(1), settings)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pre-flight check of the cluster's nodes skipped" in err
    # What needs no node is still checked.
    bad = KubernetesRequirements(requests={"cpu": "2"}, limits={"cpu": "1"})
    resolver, settings = _resolver(tmp_path, driver_requirements=bad)
    resolver.detach = True
    with pytest.raises(ConfigurationError, match="the driver Job .* limits cpu=1 is below"):
        resolver.checked(cpu_pipeline(1), settings)


# -- at run time: KubernetesWorkers.start (steps functions_of cannot see) -----------------


def test_the_run_time_check_reads_the_nodes_at_most_every_ttl_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reads: list[object] = []

    def nodes(api: object, timeout: float = 10.0) -> list[Node]:
        reads.append(api)
        return [CPU_NODE]

    monkeypatch.setattr(preflight, "nodes_of", nodes)
    now = [0.0]
    check = preflight.NodeCheck("api", ttl=30.0, clock=lambda: now[0])
    gpu = _spec(requests={"nvidia.com/gpu": "1"})
    why = check.refusal("pipeline.train", gpu)
    assert why is not None and why.startswith("pipeline.train cannot be scheduled")
    now[0] = 29.0
    assert check.refusal("pipeline.featurize", _spec(requests={"cpu": "1"})) is None
    assert reads == ["api"]
    now[0] = 30.0
    check.refusal("pipeline.train", gpu)
    assert reads == ["api", "api"]
    warning = preflight.NodeCheck("api", mode="warn")
    assert warning.refusal("pipeline.train", gpu) is None
    assert "warning: pre-flight (going on: preflight='warn'): pipeline.train" in (
        capsys.readouterr().err
    )
    assert preflight.NodeCheck("api", mode="off").refusal("pipeline.train", gpu) is None
    assert len(reads) == 3  # "off" reads nothing


def test_the_run_time_check_lets_pods_through_when_the_nodes_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(preflight, "nodes_of", lambda api, timeout=10.0: "cannot list: 403")
    check = preflight.NodeCheck("api")
    gpu = _spec(requests={"nvidia.com/gpu": "1"})
    assert check.refusal("a", gpu) is None and check.refusal("b", gpu) is None
    assert capsys.readouterr().err.count("pre-flight check of the cluster's nodes skipped") == 1
