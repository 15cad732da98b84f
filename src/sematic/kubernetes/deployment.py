"""The objects of a team's Sematic server in a cluster, as plain JSON data (pure).

``server_objects`` turns a ``ServerDeployment`` into what an operator reviews and applies
(``sematic deploy render | kubectl apply -f -``):

- a ServiceAccount, Role and RoleBinding for the server: it starts reruns as driver Jobs
  and its reaper deletes the Jobs, pods and key Secrets that pipelines leave behind;
- the drivers' own ServiceAccount, Role and RoleBinding (``driver_rbac``): a driver the
  server starts runs its worker Jobs with it;
- a ConfigMap of the server's non-secret settings;
- the Deployment (or, with ``host_network_ports``, one Deployment per port) and a Service.

Secret values never appear here: the database URL and the API key come from a Secret the
operator creates (``secret_command`` prints the command). The SQL store migrates its schema
when it opens, under a database-wide lock (a PostgreSQL advisory lock), so replicas that
start together after an upgrade migrate once: the first waits for nothing, the others wait
for it and find the schema up to date.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from sematic.core import variables
from sematic.core.errors import ConfigurationError
from sematic.kubernetes.manifests import API_KEY_SECRET_KEY, ClusterSettings, driver_rbac

HEALTH_PATH = "/api/v1/health"
PORT = 8080
SERVICE_PORT = 80
DATABASE_URL_KEY = "database-url"  # the Secret's key holding the database URL
# Optional keys of the same Secret: credentials for an s3:// artifact store.
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "aws-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
}
HOME = "/var/lib/sematic"  # SEMATIC_HOME: an emptyDir (run logs: a claim, see logs_claim)
# ConfigMap keys that only the kubelet reads (the $(VAR) expansion of the command line);
# not SEMATIC_* variables: sematic never reads them.
KUBECONFIG_VARIABLE = "SERVER_KUBECONFIG"
ALLOWED_HOST_VARIABLE = "SERVER_ALLOWED_HOST_{}"
CONTAINER = "server"
# `sematic`, run by the image's Python (images built by `sematic build` have no script).
SEMATIC = ("python3", "-m", "sematic.cli")
USER_ID = 10001
STARTUP_S = 300  # how long a replica may take to answer its first health check
RBAC_API = "rbac.authorization.k8s.io/v1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# What the server does in its namespace: reruns create driver Jobs (and, when no key Secret
# is configured, a Secret per pipeline that the Job then owns); the reaper lists Jobs and
# key Secrets and deletes them, with the Jobs' pods (a delete-collection by job name).
SERVER_RULES: tuple[Mapping[str, Any], ...] = (
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"],
     "verbs": ["get", "list", "watch", "delete", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"],
     "verbs": ["create", "get", "list", "watch", "delete", "update", "patch"]},
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ServerDeployment:
    """A team's server: what ``sematic deploy render`` asks for.

    - ``image``: an image with Sematic and its ``postgres`` extra (``sematic deploy image``).
    - ``artifact_url``: the artifact store every replica shares (``s3://...``); a folder
      would be each pod's own.
    - ``secret_name``: the operator's Secret: ``database-url`` and ``api-key`` (and,
      optionally, ``aws-access-key-id``/``aws-secret-access-key``). Driver Jobs the server
      starts read ``api-key`` from it too.
    - ``host_network_ports``: for a cluster without a pod network (the local test
      cluster): each replica is a Deployment of its own, on the node's network, listening
      on 127.0.0.1 on its own port; ``replicas`` is then the number of ports.
    - ``logs_claim``: a ReadWriteMany PersistentVolumeClaim for the run logs the server
      keeps under ``$SEMATIC_HOME/logs``; without one each replica keeps those it received
      in an emptyDir, lost when the pod goes.
    """

    image: str
    artifact_url: str
    namespace: str = "sematic"
    name: str = "sematic-server"
    replicas: int = 2
    secret_name: str = "sematic-server"
    allowed_hosts: tuple[str, ...] = ()
    host_network_ports: tuple[int, ...] = ()
    requests: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"cpu": "250m", "memory": "512Mi"})
    )
    limits: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"memory": "1Gi"}))
    driver_service_account: str = "sematic-driver"
    server_url: str | None = None  # the server as driver pods reach it (default: the Service)
    logs_claim: str | None = None
    image_pull_secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what in ("namespace", "name", "secret_name", "driver_service_account"):
            value = getattr(self, what)
            if not _NAME.match(value):
                raise ConfigurationError(
                    f"{what} {value!r} is not a DNS label (lowercase letters, digits and '-')"
                )
        if not self.image.strip():
            raise ConfigurationError("image is empty: name the server's image")
        if not self.artifact_url.strip():
            raise ConfigurationError("artifact_url is empty: name the shared artifact store")
        if self.host_network_ports:
            if len(set(self.host_network_ports)) != len(self.host_network_ports):
                raise ConfigurationError("host_network_ports: each replica needs its own port")
            for port in self.host_network_ports:
                if not 1 <= port <= 65535:
                    raise ConfigurationError(f"host_network_ports: {port} is not a TCP port")
        elif self.replicas < 1:
            raise ConfigurationError(f"replicas must be at least 1, got {self.replicas}")
        for host in self.allowed_hosts:
            if not host.strip() or any(c.isspace() for c in host):
                raise ConfigurationError(f"allowed host {host!r} is not a host name")

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "sematic-server",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/managed-by": "sematic-deploy",
        }

    @property
    def service_url(self) -> str:
        """The server as pods reach it: the Service's name, or 127.0.0.1 on the host network."""
        if self.server_url:
            return self.server_url
        if self.host_network_ports:
            return f"http://127.0.0.1:{self.host_network_ports[0]}"
        return f"http://{self.name}.{self.namespace}.svc"

    @property
    def answered_hosts(self) -> tuple[str, ...]:
        """The ``--allowed-host`` names: none (any name) unless some are asked for; then
        those, and the names pods use (the Service's, or ``server_url``'s host)."""
        if not self.allowed_hosts:
            return ()
        if self.server_url:
            own = [urlsplit(self.server_url).hostname or ""]
        else:
            service = f"{self.name}.{self.namespace}"
            own = [self.name, service, f"{service}.svc", f"{service}.svc.cluster.local"]
        return tuple(dict.fromkeys(h for h in (*self.allowed_hosts, *own) if h))

    def cluster_settings(self) -> ClusterSettings:
        """Where the server's reruns run and what its reaper looks after: this namespace."""
        return ClusterSettings(
            namespace=self.namespace,
            service_account=self.driver_service_account,
            image_pull_secrets=self.image_pull_secrets,
            host_network=bool(self.host_network_ports),
            server_url=self.service_url,
            api_key_secret=self.secret_name,
        )


def server_objects(spec: ServerDeployment) -> list[dict[str, Any]]:
    """Every object of the server, in the order ``kubectl apply`` should create them."""
    objects = [*server_rbac(spec), *driver_rbac(spec.namespace, spec.driver_service_account)]
    objects.append(config_map(spec))
    if spec.host_network_ports:
        objects.extend(
            deployment(spec, name=f"{spec.name}-{index}", replicas=1, port=port)
            for index, port in enumerate(spec.host_network_ports)
        )
    else:
        objects.append(deployment(spec, name=spec.name, replicas=spec.replicas, port=PORT))
    objects.append(service(spec))
    # Independent copies: no two objects share a mapping (a YAML dump would alias it).
    copied: list[dict[str, Any]] = json.loads(json.dumps(objects))
    return copied


def _meta(spec: ServerDeployment, name: str | None = None) -> dict[str, Any]:
    return {"name": name or spec.name, "namespace": spec.namespace, "labels": spec.labels}


def server_rbac(spec: ServerDeployment) -> list[dict[str, Any]]:
    """The server's ServiceAccount, and a Role and RoleBinding limited to its namespace."""
    meta = _meta(spec)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": RBAC_API, "kind": "Role", "metadata": meta,
         "rules": [dict(rule) for rule in SERVER_RULES]},
        {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": spec.name},
         "subjects": [{"kind": "ServiceAccount", "name": spec.name,
                       "namespace": spec.namespace}]},
    ]  # fmt: skip


def config_map(spec: ServerDeployment) -> dict[str, Any]:
    """The non-secret settings; the Deployment reads every one of them from here."""
    data = {
        variables.ARTIFACT_URL: spec.artifact_url,
        variables.CLUSTER: json.dumps(spec.cluster_settings().to_dict(), sort_keys=True),
        KUBECONFIG_VARIABLE: "in-cluster",
        **{ALLOWED_HOST_VARIABLE.format(i): host for i, host in enumerate(spec.answered_hosts)},
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(spec), "data": data}


def _environment(spec: ServerDeployment) -> list[dict[str, Any]]:
    def from_config(name: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": spec.name, "key": name}}}

    def from_secret(name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": spec.secret_name, "key": key}
        if optional:
            ref["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}

    return [
        {"name": variables.HOME, "value": HOME},
        {"name": "HOME", "value": HOME},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        from_config(variables.ARTIFACT_URL),
        from_config(variables.CLUSTER),
        from_config(KUBECONFIG_VARIABLE),
        *(from_config(ALLOWED_HOST_VARIABLE.format(i)) for i in range(len(spec.answered_hosts))),
        from_secret(variables.DATABASE_URL, DATABASE_URL_KEY),
        from_secret(variables.API_KEY, API_KEY_SECRET_KEY),
        *(from_secret(name, key, optional=True) for name, key in S3_KEYS.items()),
    ]


def server_command(spec: ServerDeployment, port: int) -> list[str]:
    """``sematic server`` with its settings; ``$(VAR)`` is expanded by the kubelet from the
    container's environment (the ConfigMap's values), so no value is baked in twice."""
    host = "127.0.0.1" if spec.host_network_ports else "0.0.0.0"  # a pod of its own
    command = [*SEMATIC, "server", "--host", host, "--port", str(port)]
    command += ["--kubeconfig", f"$({KUBECONFIG_VARIABLE})"]
    for index in range(len(spec.answered_hosts)):
        command += ["--allowed-host", f"$({ALLOWED_HOST_VARIABLE.format(index)})"]
    return command


def _probe(host: str | None, *, period: int, failures: int) -> dict[str, Any]:
    get: dict[str, Any] = {
        "path": HEALTH_PATH,
        "port": "http",
        # A name the server always answers to, whatever --allowed-host says.
        "httpHeaders": [{"name": "Host", "value": "localhost"}],
    }
    if host:
        get["host"] = host
    return {
        "httpGet": get,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(spec: ServerDeployment, *, name: str, replicas: int, port: int) -> dict[str, Any]:
    """A Deployment of ``replicas`` servers listening on ``port``."""
    host_network = bool(spec.host_network_ports)
    selector = {**spec.labels, "sematic.dev/deployment": name}
    probe_host = "127.0.0.1" if host_network else None
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "command": server_command(spec, port),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": _environment(spec),
        "resources": {
            **({"requests": dict(spec.requests)} if spec.requests else {}),
            **({"limits": dict(spec.limits)} if spec.limits else {}),
        },
        # Up to 5 minutes to start: a replica waiting for another's migration (or running
        # a long one) must not be killed for it. Liveness and readiness count after that.
        "startupProbe": _probe(probe_host, period=5, failures=STARTUP_S // 5),
        "readinessProbe": _probe(probe_host, period=5, failures=3),
        "livenessProbe": _probe(probe_host, period=10, failures=3),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "home", "mountPath": HOME},
            {"name": "tmp", "mountPath": "/tmp"},
            *([{"name": "logs", "mountPath": f"{HOME}/logs"}] if spec.logs_claim else []),
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "home", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if spec.logs_claim:
        volumes.append({"name": "logs", "persistentVolumeClaim": {"claimName": spec.logs_claim}})
    pod_spec: dict[str, Any] = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": True,  # --kubeconfig in-cluster
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
    }
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]
    if host_network:
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    else:
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": selector},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": _strategy(host_network),
            "template": {"metadata": {"labels": selector}, "spec": pod_spec},
        },
    }


def _strategy(host_network: bool) -> dict[str, Any]:
    """One new pod at a time, none taken away before its replacement is ready; on the host
    network the old pod holds the port the new one needs, so it goes first (the other
    replicas, each a Deployment of its own, keep serving)."""
    if host_network:
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def service(spec: ServerDeployment) -> dict[str, Any]:
    """Port 80 to every replica's ``http`` port (by name: host-network replicas differ)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec),
        "spec": {
            "type": "ClusterIP",
            "selector": spec.labels,
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def secret_command(spec: ServerDeployment) -> str:
    """The command an operator runs once to create the Secret (values are theirs)."""
    return (
        f"kubectl -n {spec.namespace} create secret generic {spec.secret_name} "
        f"--from-literal={DATABASE_URL_KEY}='postgresql://USER:PASSWORD@HOST:5432/DB' "
        f"--from-literal={API_KEY_SECRET_KEY}=\"$(python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')\""
    )
