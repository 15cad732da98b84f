"""Pre-flight schedulability: can any node of the cluster, as it is, ever take a pod?

It judges the pod that will actually be submitted: ``pod_spec_of`` builds it with
``job_manifest`` (the function's requirements merged with the cluster's settings and pod
templates), and ``why_unschedulable`` checks its spec against ``Node`` values, plain data:

- what is wrong whatever the nodes: a limit below its request, a memory-backed
  ``/dev/shm`` larger than the container's memory;
- per node: ``nodeSelector`` labels (and required node affinity from a pod template),
  taints with effect ``NoSchedule``/``NoExecute`` no toleration matches, requests
  (cpu, memory, ephemeral storage, extended resources such as ``nvidia.com/gpu``) above
  the node's allocatable. Current usage is not subtracted: the question is whether the
  node could *ever* take the pod. Taints the cluster sets for passing conditions (not
  ready, pressure, cordoned) are ignored for the same reason.

Only ``cluster_nodes`` and ``nodes_of`` (and ``NodeCheck``, the same check at run time,
through it) talk to a cluster; they import the client lazily.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sematic.core.resources import KubernetesRequirements, quantity
from sematic.kubernetes.manifests import ClusterSettings, job_manifest

REFUSING_EFFECTS = ("NoSchedule", "NoExecute")  # PreferNoSchedule only discourages
# Taints the node lifecycle controller sets and lifts with a node's conditions.
PASSING_TAINTS = frozenset(
    f"node.kubernetes.io/{name}"
    for name in ("not-ready", "unreachable", "memory-pressure", "disk-pressure",
                 "pid-pressure", "network-unavailable", "unschedulable")
)  # fmt: skip
# Resources every node has; a node that does not report one is not judged on it.
STANDARD = ("cpu", "memory", "ephemeral-storage")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None
    effect: str

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


@dataclass(frozen=True)
class Node:
    """A node as the scheduler sees it: ``allocatable`` maps resource names to quantities."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    taints: tuple[Taint, ...] = ()
    allocatable: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def pod_spec_of(
    requirements: KubernetesRequirements | None, cluster: ClusterSettings
) -> dict[str, Any]:
    """The spec of the pod a Job with ``requirements`` gets under ``cluster``'s settings."""
    manifest = job_manifest(
        name="preflight", image="preflight", command=["preflight"],
        settings=cluster, requirements=requirements,
    )  # fmt: skip
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """Kubernetes' rule: an empty effect matches every effect, an empty key with
    ``Exists`` every taint; ``Equal`` (the default) also compares the values."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if key and key != taint.key:
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.value or "")


def spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """What is wrong with the pod whatever the nodes: limits below requests, a
    memory-backed volume larger than the memory of a container mounting it."""
    problems: list[str] = []
    memory_volumes = {
        volume["name"]: volume["emptyDir"]["sizeLimit"]
        for volume in spec.get("volumes") or []
        if (volume.get("emptyDir") or {}).get("medium") == "Memory"
        and (volume.get("emptyDir") or {}).get("sizeLimit")
    }
    for container in _containers(spec):
        where = _where(container)
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name in sorted(set(requests) & set(limits)):
            if quantity(limits[name]) < quantity(requests[name]):
                problems.append(
                    f"{where}limits {name}={limits[name]} is below its request "
                    f"{name}={requests[name]}"
                )
        memory = limits.get("memory") or requests.get("memory")
        for mount in container.get("volumeMounts") or []:
            size = memory_volumes.get(mount.get("name"))
            if size is not None and memory and quantity(size) > quantity(memory):
                problems.append(
                    f"{where}shared memory ({mount.get('mountPath')}) of {size} exceeds the "
                    f"container's memory {memory} (the volume counts against it)"
                )
    return problems


def node_refusals(spec: Mapping[str, Any], node: Node) -> list[str]:
    """Why ``node`` can never take a pod of ``spec`` (empty: it can)."""
    reasons: list[str] = []
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            has = f" (it has {key}={node.labels[key]})" if key in node.labels else ""
            reasons.append(f"lacks label {key}={value}{has}")
    reasons.extend(_affinity_refusals(spec, node))
    tolerations = spec.get("tolerations") or []
    for taint in node.taints:
        if taint.effect not in REFUSING_EFFECTS or taint.key in PASSING_TAINTS:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            reasons.append(f"has taint {taint} that it does not tolerate")
    for name, (amount, shown) in pod_requests(spec).items():
        available = node.allocatable.get(name)
        if available is None and name in STANDARD:
            continue
        allocatable = quantity(available) if available is not None else Decimal(0)
        if amount > allocatable:
            reasons.append(f"requests {name}={shown} but can allocate {available or 0}")
    return reasons


def pod_requests(spec: Mapping[str, Any]) -> dict[str, tuple[Decimal, str]]:
    """What the scheduler reserves for the pod: the sum over its containers (a limit
    stands for a missing request), at least any init container's, plus its overhead;
    each with how to show it."""
    total: dict[str, tuple[Decimal, str]] = {}
    for container in spec.get("containers") or []:
        for name, text in _effective(container).items():
            if name in total:
                amount = total[name][0] + quantity(text)
                total[name] = (amount, _shown(amount))
            else:
                total[name] = (quantity(text), str(text))
    for container in spec.get("initContainers") or []:
        for name, text in _effective(container).items():
            if name not in total or quantity(text) > total[name][0]:
                total[name] = (quantity(text), str(text))
    for name, text in (spec.get("overhead") or {}).items():
        amount = total.get(name, (Decimal(0), ""))[0] + quantity(text)
        total[name] = (amount, _shown(amount))
    return {name: value for name, value in total.items() if value[0] > 0}


def why_unschedulable(
    what: str, spec: Mapping[str, Any], nodes: Sequence[Node] | None
) -> str | None:
    """Why no node can take ``what`` (e.g. "pipeline.train"), naming each node's reasons;
    None when one can. ``nodes=None`` (unknown) checks only what needs no node."""
    problems = spec_problems(spec)
    if problems:
        return f"{what} cannot be scheduled: {'; '.join(problems)}"
    if nodes is None:
        return None
    if not nodes:
        return f"{what} cannot be scheduled: the cluster has no nodes"
    refused = []
    for node in nodes:
        reasons = node_refusals(spec, node)
        if not reasons:
            return None
        refused.append(f'node "{node.name}": {", ".join(reasons)}')
    return f"{what} cannot be scheduled: no node can take it: {'; '.join(refused)}"


def refusals(
    requirements: KubernetesRequirements | None,
    nodes: Iterable[Node],
    cluster: ClusterSettings | None = None,
) -> dict[str, list[str]]:
    """Each node's reasons to refuse a pod with ``requirements`` (an empty list: it takes
    it), after the problems that need no node, under the key ``""``."""
    spec = pod_spec_of(requirements, cluster or ClusterSettings())
    found = {node.name: node_refusals(spec, node) for node in nodes}
    problems = spec_problems(spec)
    return {"": problems, **found} if problems else found


def node_of(item: Any) -> Node:
    """A ``Node`` from the kubernetes client's ``V1Node``."""
    metadata, spec, status = item.metadata, item.spec, item.status
    taints = tuple(
        Taint(taint.key, taint.value, taint.effect) for taint in (spec and spec.taints) or ()
    )
    return Node(
        name=metadata.name,
        labels=MappingProxyType(dict(metadata.labels or {})),
        taints=taints,
        allocatable=MappingProxyType(dict((status and status.allocatable) or {})),
    )


def cluster_nodes(kubeconfig: str | None, timeout: float = 10.0) -> list[Node] | str:
    """The nodes of the cluster ``kubeconfig`` names, or why they cannot be read."""
    from kubernetes import config
    from sematic.kubernetes.pipelines import api_client

    try:
        api = api_client(kubeconfig)
    except (config.ConfigException, OSError) as error:
        return f"no cluster configuration: {error}"
    try:
        return nodes_of(api, timeout)
    finally:
        api.close()


def nodes_of(api: Any, timeout: float = 10.0) -> list[Node] | str:
    """The nodes of the cluster ``api`` (a kubernetes ApiClient) talks to, or why they
    cannot be read (e.g. RBAC forbids listing them)."""
    from urllib3.exceptions import HTTPError

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        core: Any = client.CoreV1Api(api)
        listed = core.list_node(_request_timeout=timeout)
        return [node_of(item) for item in listed.items]
    except ApiException as error:
        why = f"{error.status} {error.reason}"
        if error.status == 403:
            why += " (listing nodes needs a ClusterRole with 'list' on 'nodes')"
        return f"cannot list the cluster's nodes: {why}"
    except (HTTPError, OSError) as error:
        return f"cannot reach the cluster: {type(error).__name__}: {error}"


class NodeCheck:
    """The same check for steps found only at run time (``KubernetesWorkers.start``): the
    nodes are read at most every ``ttl`` seconds; ``mode`` as ``CloudResolver(preflight=)``.
    ``refusal`` is None when the pod may be submitted; when the nodes cannot be read it says
    so once on stderr and lets every pod through."""

    def __init__(
        self,
        api: Any,
        mode: str = "error",
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api, self._mode, self._ttl = api, mode, ttl
        self._clock = clock
        self._nodes: list[Node] | str | None = None
        self._read_at = 0.0

    def refusal(self, what: str, spec: Mapping[str, Any]) -> str | None:
        if self._mode == "off":
            return None
        now = self._clock()
        if self._nodes is None or (
            not isinstance(self._nodes, str) and now - self._read_at >= self._ttl
        ):
            self._nodes, self._read_at = nodes_of(self._api), now
            if isinstance(self._nodes, str):
                print(f"warning: pre-flight check of the cluster's nodes skipped: {self._nodes}",
                      file=sys.stderr)  # fmt: skip
        why = why_unschedulable(what, spec, None if isinstance(self._nodes, str) else self._nodes)
        if why is not None and self._mode == "warn":
            print(f"warning: pre-flight (going on: preflight='warn'): {why}", file=sys.stderr)
            return None
        return why


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _where(container: Mapping[str, Any]) -> str:
    name = container.get("name")
    return "" if name == "main" else f"container {name}: "


def _effective(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's requests, a limit standing for a missing request (as Kubernetes
    defaults them)."""
    resources = container.get("resources") or {}
    return {**(resources.get("limits") or {}), **(resources.get("requests") or {})}


def _shown(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _affinity_refusals(spec: Mapping[str, Any], node: Node) -> list[str]:
    """Required node affinity (from a pod template): one of its terms must match."""
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    if not terms:
        return []
    if any(_term_matches(term, node) for term in terms):
        return []
    return ["matches no term of the required node affinity"]


def _term_matches(term: Mapping[str, Any], node: Node) -> bool:
    expressions = [
        *((e, node.labels.get(e.get("key", ""))) for e in term.get("matchExpressions") or []),
        *(
            (e, node.name if e.get("key") == "metadata.name" else None)
            for e in term.get("matchFields") or []
        ),
    ]
    if not expressions:
        return False  # an empty term matches nothing
    return all(_expression_holds(e, value) for e, value in expressions)


def _expression_holds(expression: Mapping[str, Any], value: str | None) -> bool:
    operator, values = expression.get("operator"), list(expression.get("values") or [])
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False
