"""Kubernetes Job manifests for Sematic's driver and workers, as plain JSON data.

One function, ``job_manifest``, turns what a function asks for (its
``KubernetesRequirements``), the image, the command and the cluster settings into a
``batch/v1`` Job. Nothing here talks to a cluster; the executor submits the result with
the official client.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sematic.core import variables
from sematic.core.errors import ConfigurationError
from sematic.core.kubernetes_compat import KubernetesResourceRequirements
from sematic.core.resources import KubernetesRequirements

API_KEY_SECRET_KEY = "api-key"  # the key, in a Secret, that holds a Sematic API key
MANAGED_BY = {"app.kubernetes.io/managed-by": "sematic"}
RUN_LABEL = "sematic.dev/run-id"
ROOT_LABEL = "sematic.dev/root-id"  # also an annotation holding the full id
ROLE_LABEL = "sematic.dev/role"  # driver, worker or api-key
KEEP_ANNOTATION = "sematic.dev/keep-finished"  # "true": the reaper leaves it once finished
CONTAINER = "main"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def label_value(run_id: str) -> str:
    """A run id as a label value (at most 63 characters)."""
    return re.sub(r"[^A-Za-z0-9]", "", run_id)[:63]


def driver_job_name(root_id: str) -> str:
    """The driver Job of the pipeline ``root_id`` (one per pipeline)."""
    return f"sematic-driver-{label_value(root_id).lower()[:40]}"


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """Where and how Sematic's jobs run in a cluster.

    - ``namespace``: where the driver and worker Jobs are created.
    - ``service_account``: the pods' service account (a function's own
      ``KubernetesRequirements.service_account`` wins). The driver's needs the rights
      ``driver_rbac`` grants.
    - ``image_pull_secrets``: secrets the kubelet pulls images with.
    - ``host_network``: pods on the node's network (the local test cluster has no pod
      network).
    - ``server_url``: the Sematic server as pods reach it (default: the resolver's
      ``server_url``); pods read and write artifacts through it.
    - ``env``: variables every pod gets; ``pod_template``: a pod fragment merged into
      every pod (containers by name; Sematic's container is ``main``).
    - ``api_key_secret``: an existing Secret whose ``api-key`` holds the server's API key;
      pods read the key from it. Unset: a Secret is created for each pipeline (labelled
      with its root run) and deleted with it. The key is never written into a Job.
    - ``keep_finished_jobs``: keep worker Jobs (and their pods) once their result and log
      are recorded, for debugging; by default they are deleted.
    - ``allow_host_path_mounts`` / ``allow_security_contexts``: let functions mount a
      node's folders (``KubernetesHostPathMount``) or set their container's security
      context (``KubernetesSecurityContext``). Off by default: either gives a step power over
      the node, so it is the cluster admin's choice (as Sematic 0.41's server settings were).
    """

    namespace: str = "default"
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    host_network: bool = False
    server_url: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    pod_template: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    api_key_secret: str | None = None
    keep_finished_jobs: bool = False
    allow_host_path_mounts: bool = False
    allow_security_contexts: bool = False

    def __post_init__(self) -> None:
        for flag in ("keep_finished_jobs", "allow_host_path_mounts", "allow_security_contexts"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigurationError(f"{flag} takes a bool, got {getattr(self, flag)!r}")
        if self.api_key_secret is not None and not _SUBDOMAIN.match(str(self.api_key_secret)):
            raise ConfigurationError(
                f"api_key_secret {self.api_key_secret!r} is not a Secret's name (lowercase "
                "letters, digits, '-' and '.')"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "service_account": self.service_account,
            "image_pull_secrets": list(self.image_pull_secrets),
            "host_network": self.host_network,
            "server_url": self.server_url,
            "env": dict(self.env),
            "pod_template": _plain(self.pod_template),
            "api_key_secret": self.api_key_secret,
            "keep_finished_jobs": self.keep_finished_jobs,
            "allow_host_path_mounts": self.allow_host_path_mounts,
            "allow_security_contexts": self.allow_security_contexts,
        }

    def refusal(self, requirements: KubernetesRequirements | None) -> str | None:
        """Why these settings cannot run a function with ``requirements`` (None: they can)."""
        if not isinstance(requirements, KubernetesResourceRequirements):
            return None
        if requirements.host_path_mounts and not self.allow_host_path_mounts:
            return (
                "it mounts a node's folder (KubernetesHostPathMount), which the cluster "
                "settings do not allow: a cluster admin can set allow_host_path_mounts"
            )
        if requirements.security_context is not None and not self.allow_security_contexts:
            return (
                "it sets a security context (KubernetesSecurityContext), which the cluster "
                "settings do not allow: a cluster admin can set allow_security_contexts"
            )
        return None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "cluster settings") -> ClusterSettings:
        """Settings from a JSON object; keys left out keep their default."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "image_pull_secrets" in values:
            values["image_pull_secrets"] = tuple(values["image_pull_secrets"])
        for key in ("env", "pod_template"):
            if key in values:
                values[key] = MappingProxyType(dict(values[key]))
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigurationError(f"{where}: {error}") from error

    @classmethod
    def from_json(cls, text: str, where: str) -> ClusterSettings:
        """The settings in ``text`` (a JSON object of them, read from ``where``)."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConfigurationError(f"{where} is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise ConfigurationError(f"{where} must be a JSON object, got {text!r}")
        return cls.from_dict(data, where)


def job_manifest(
    *,
    name: str,
    image: str,
    command: list[str],
    settings: ClusterSettings,
    requirements: KubernetesRequirements | None = None,
    labels: Mapping[str, str] = MappingProxyType({}),
    env: Mapping[str, str] = MappingProxyType({}),
    secret_env: Mapping[str, tuple[str, str]] = MappingProxyType({}),
    annotations: Mapping[str, str] = MappingProxyType({}),
    deadline_seconds: int | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    """A Job running ``command`` in ``image``: once for a worker (Sematic retries per the
    function's settings), up to ``restarts`` more times for a driver (a new pod re-enters
    the pipeline). ``secret_env`` maps variables to ``(secret name, key)``: the pod reads
    them from Secrets, the Job holds only their names."""
    if not _NAME.match(name):
        raise ConfigurationError(
            f"job name {name!r} is not a DNS label (lowercase letters, digits and '-', "
            "at most 63 characters)"
        )
    wanted = requirements or KubernetesRequirements()
    refused = settings.refusal(wanted)
    if refused is not None:
        raise ConfigurationError(f"Job {name}: {refused}")
    all_labels = {**MANAGED_BY, **wanted.labels, **labels}
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    environment: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in {**settings.env, **env}.items()
    ]
    environment.extend(
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for variable, (secret, key) in secret_env.items()
    )
    environment.extend(  # which pod ran a step, on which node: for its log lines
        {"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for variable, path in ((variables.POD_NAME, "metadata.name"),
                               (variables.NODE_NAME, "spec.nodeName"))
    )  # fmt: skip
    for index, secret in enumerate(wanted.secrets):
        environment.extend(
            {"name": variable,
             "valueFrom": {"secretKeyRef": {"name": secret.name, "key": key}}}
            for key, variable in secret.environment.items()
        )  # fmt: skip
        if secret.files:
            volume = f"secret-{index}"
            volumes.append({"name": volume, "secret": {"secretName": secret.name}})
            mounts.extend(
                {"name": volume, "mountPath": path, "subPath": key, "readOnly": True}
                for key, path in secret.files.items()
            )
    if wanted.shared_memory is not None:
        volumes.append(
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": wanted.shared_memory}}
        )
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    compat = wanted if isinstance(wanted, KubernetesResourceRequirements) else None
    for mount in compat.host_path_mounts if compat else ():
        host_path = {"path": mount.node_path, **({"type": mount.type} if mount.type else {})}
        volumes.append({"name": mount.name, "hostPath": host_path})
        mounts.append({"name": mount.name, "mountPath": mount.pod_mount_path})
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": list(command),
        "env": environment,
        "resources": _resources(wanted),
        "volumeMounts": mounts,
    }
    if compat is not None and compat.security_context is not None:
        container["securityContext"] = compat.security_context.to_dict()
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "nodeSelector": dict(wanted.node_selector),
        "tolerations": [t.to_dict() for t in wanted.tolerations],
        "hostNetwork": settings.host_network,
        "imagePullSecrets": [{"name": s} for s in settings.image_pull_secrets],
    }
    account = wanted.service_account or settings.service_account
    if account:
        pod_spec["serviceAccountName"] = account
    pod: dict[str, Any] = {
        "metadata": {"labels": all_labels, "annotations": dict(wanted.annotations)},
        "spec": pod_spec,
    }
    for template in (settings.pod_template, wanted.pod_template):
        pod = merge(pod, template)
    job_spec: dict[str, Any] = {"backoffLimit": restarts, "template": pod}
    if deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": all_labels,
            "annotations": {**wanted.annotations, **annotations},
        },
        "spec": job_spec,
    }


def api_key_secret_manifest(
    *,
    name: str,
    namespace: str,
    api_key: str,
    labels: Mapping[str, str] = MappingProxyType({}),
    owner: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Secret holding ``api_key`` under ``api-key``; with ``owner`` (a Job's apiVersion,
    kind, name and uid) the cluster deletes it with that Job."""
    if not _NAME.match(name):
        raise ConfigurationError(f"secret name {name!r} is not a DNS label")
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**MANAGED_BY, **labels},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": {API_KEY_SECRET_KEY: api_key},
    }


def owner_reference(owner: Mapping[str, str]) -> dict[str, Any]:
    """A reference making an object live only as long as ``owner``."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["name"],
        "uid": owner["uid"],
        "blockOwnerDeletion": False,
    }


def _resources(wanted: KubernetesRequirements) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if wanted.requests:
        resources["requests"] = dict(wanted.requests)
    limits = dict(wanted.limits)
    for name, value in wanted.requests.items():
        if "/" in name:  # extended resources (GPUs) need limits equal to requests
            limits.setdefault(name, value)
    if limits:
        resources["limits"] = limits
    return resources


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, containers by name (a
    container named ``main`` is Sematic's), other lists and values are replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        elif key in ("containers", "initContainers") and isinstance(current, list):
            merged[key] = _merge_named(current, list(value))
        else:
            merged[key] = copy.deepcopy(_plain(value))
    return merged


def _merge_named(current: list[Any], extra: list[Any]) -> list[Any]:
    result = [copy.deepcopy(c) for c in current]
    for item in extra:
        name = item.get("name") if isinstance(item, Mapping) else None
        position = next((i for i, c in enumerate(result) if c.get("name") == name), None)
        if position is None:
            result.append(copy.deepcopy(_plain(item)))
        else:
            result[position] = merge(result[position], item)
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def driver_rbac(namespace: str, service_account: str) -> list[dict[str, Any]]:
    """A ServiceAccount, Role and RoleBinding letting a driver pod run its pipeline's
    worker Jobs in ``namespace``: create, watch and delete Jobs; watch pods, read their
    logs and events. Apply them once (``kubectl apply``) and name the account in ClusterSettings."""
    meta = {"name": service_account, "namespace": namespace, "labels": dict(MANAGED_BY)}
    rules = [
        {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status"],
         "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"],
         "verbs": ["get", "list", "watch", "delete"]},
        # what the scheduler and kubelet said of a pod, recorded with its run's attempt
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    ]  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": service_account},
         "subjects": [{"kind": "ServiceAccount", "name": service_account,
                       "namespace": namespace}]},
    ]  # fmt: skip
