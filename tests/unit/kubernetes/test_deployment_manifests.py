"""A team's server in a cluster: what `sematic deploy render` prints, read back as YAML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

try:  # PyYAML comes with the kubernetes client (the dev extra); else the JSON output
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None

from sematic.cli.server_control import server as server_command
from sematic.core import variables
from sematic.kubernetes.deployment import (
    HEALTH_PATH,
    SEMATIC,
    SERVER_RULES,
    ServerDeployment,
    secret_command,
    server_objects,
)
from sematic.kubernetes.manifests import ClusterSettings
from tests.unit.cli.conftest import invoke

SRC = Path(__file__).parents[3] / "src" / "sematic"
BASE = ("deploy", "render", "--image", "registry.example/sematic-server:1",
        "--artifact-url", "s3://team-bucket/sematic", "--namespace", "ml")  # fmt: skip
SECRET_MARKERS = ("postgresql://admin:hunter2@db:5432/sematic", "key-that-must-not-leak")


def render(*extra: str) -> list[dict[str, Any]]:
    """The rendered objects, read back from the YAML output (JSON without PyYAML)."""
    if yaml is None:
        result = invoke(*BASE, *extra, "--output", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["items"]  # type: ignore[no-any-return]
    result = invoke(*BASE, *extra)
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def env_of(box: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in box["env"]}


def test_render_prints_every_object_in_apply_order_and_yaml_has_no_aliases() -> None:
    result = invoke(*BASE)
    if yaml is None:  # pragma: no cover - depends on the environment
        assert result.exit_code != 0 and "--output json" in result.stderr
    else:
        assert result.exit_code == 0, result.output
        assert "&id" not in result.stdout and "*id" not in result.stdout
    kinds = [o["kind"] for o in render()]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding"] * 2 + [
        "ConfigMap", "Deployment", "Service"
    ]  # fmt: skip
    assert all(o["metadata"]["namespace"] == "ml" for o in render())


def test_no_secret_value_is_rendered_and_both_come_from_the_operators_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Even with the values in this process's environment, nothing reads them.
    monkeypatch.setenv(variables.DATABASE_URL, SECRET_MARKERS[0])
    monkeypatch.setenv(variables.API_KEY, SECRET_MARKERS[1])
    for output in ("yaml", "json"):
        text = invoke(*BASE, "--secret-name", "team-db", "--output", output).stdout
        assert not any(marker in text for marker in SECRET_MARKERS)
    objects = render("--secret-name", "team-db")
    assert not of_kind(objects, "Secret")
    env = env_of(container(of_kind(objects, "Deployment")[0]))
    assert env[variables.DATABASE_URL]["valueFrom"]["secretKeyRef"] == {
        "name": "team-db", "key": "database-url"
    }  # fmt: skip
    assert env[variables.API_KEY]["valueFrom"]["secretKeyRef"] == {
        "name": "team-db", "key": "api-key"
    }  # fmt: skip
    assert all("value" not in env[name] for name in (variables.DATABASE_URL, variables.API_KEY))
    # The notes say how to create that Secret, with placeholders only.
    assert "kubectl -n ml create secret generic team-db --from-literal=database-url=" in (
        invoke(*BASE, "--secret-name", "team-db").stdout
    )


def test_security_context_and_writable_folders() -> None:
    deployment = of_kind(render(), "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    box = container(deployment)
    assert box["securityContext"]["runAsNonRoot"] is True
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["allowPrivilegeEscalation"] is False
    assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert box["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    home = env_of(box)[variables.HOME]["value"]
    for path in (home, "/tmp"):
        assert "emptyDir" in volumes[mounts[path]]
    assert env_of(box)["TMPDIR"]["value"] == "/tmp"


def test_probes_hit_the_health_endpoint_on_the_named_port() -> None:
    box = container(of_kind(render(), "Deployment")[0])
    assert box["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = box[probe]["httpGet"]
        assert (get["path"], get["port"]) == (HEALTH_PATH, "http")
        # A name the server answers even when --allowed-host narrows the names.
        assert {"name": "Host", "value": "localhost"} in get["httpHeaders"]
    # A replica waiting for another's migration has minutes before liveness counts.
    startup = box["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_labels_and_selectors_match() -> None:
    objects = render("--replicas", "3")
    (deployment,) = of_kind(objects, "Deployment")
    (service,) = of_kind(objects, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_rbac_lets_the_server_run_and_reap_jobs_in_its_namespace_only() -> None:
    objects = render()
    account, role, binding = objects[:3]
    assert [o["kind"] for o in objects[:3]] == ["ServiceAccount", "Role", "RoleBinding"]
    allowed = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    for verb in ("create", "get", "list", "watch", "delete"):
        assert ("jobs", verb) in allowed
        assert ("secrets", verb) in allowed
    assert ("pods/log", "get") in allowed
    assert ("pods", "create") not in allowed  # pods come from Jobs only
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": "ml"}]  # fmt: skip
    pod = of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


_CALL = re.compile(
    r"\.(create|delete_collection|delete|list|read|patch|replace)_namespaced_"
    r"(job_status|job|pod_log|pod|secret|event)\b"
)
_VERB = {"create": "create", "delete": "delete", "delete_collection": "deletecollection",
         "list": "list", "read": "get", "patch": "patch", "replace": "update"}  # fmt: skip
_RESOURCE = {"job": "jobs", "job_status": "jobs/status", "pod": "pods", "pod_log": "pods/log",
             "secret": "secrets", "event": "events"}  # fmt: skip


def test_the_role_covers_every_call_the_servers_cluster_code_makes() -> None:
    """Reruns (start_driver) and the reaper go through PipelineObjects; the watcher's reads
    are covered too. A new call there without its verb here fails this test."""
    allowed = {(r, v) for rule in SERVER_RULES for r in rule["resources"] for v in rule["verbs"]}
    calls = set()
    for module in ("kubernetes/pipelines.py", "kubernetes/watcher.py"):
        calls |= set(_CALL.findall((SRC / module).read_text()))
    assert len(calls) >= 8
    missing = {(_RESOURCE[r], _VERB[v]) for v, r in calls} - allowed
    assert not missing


def test_every_reference_resolves_and_the_command_parses_as_sematic_server() -> None:
    objects = render("--allowed-host", "sematic.team.example", "--allowed-host", "sematic")
    (config,) = of_kind(objects, "ConfigMap")
    box = container(of_kind(objects, "Deployment")[0])
    env = env_of(box)
    for entry in env.values():
        ref = entry.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            assert ref["name"] == config["metadata"]["name"] and ref["key"] in config["data"]
    # The kubelet expands $(VAR) from the container's environment: every one is defined.
    command = box["command"]
    assert command[: len(SEMATIC)] == list(SEMATIC)
    referenced = {m for arg in command for m in re.findall(r"\$\((\w+)\)", arg)}
    assert referenced <= env.keys()
    expanded = [
        re.sub(r"\$\((\w+)\)", lambda m: str(config["data"][m.group(1)]), arg)
        for arg in command[len(SEMATIC) + 1 :]
    ]
    # The names asked for, then the Service's: driver pods reach the server by those.
    service_names = ("sematic-server", "sematic-server.ml", "sematic-server.ml.svc",
                     "sematic-server.ml.svc.cluster.local")  # fmt: skip
    hosts = ("sematic.team.example", "sematic", *service_names)
    assert expanded == [
        "--host", "0.0.0.0", "--port", "8080", "--kubeconfig", "in-cluster",
        *(arg for host in hosts for arg in ("--allowed-host", host)),
    ]  # fmt: skip
    parsed = server_command.make_context("server", expanded)
    assert parsed.params["kubeconfig"] == "in-cluster"
    assert parsed.params["allowed_hosts"] == hosts
    assert config["data"][variables.ARTIFACT_URL] == "s3://team-bucket/sematic"
    cluster = ClusterSettings.from_json(config["data"][variables.CLUSTER], "test")
    assert cluster.namespace == "ml" and cluster.api_key_secret == "sematic-server"
    assert cluster.service_account == "sematic-driver" and not cluster.host_network
    assert cluster.server_url == "http://sematic-server.ml.svc"
    # No name asked for: any name is answered (the key guards the server).
    box = container(of_kind(render(), "Deployment")[0])
    assert "--allowed-host" not in box["command"]
    spec = ServerDeployment(image="i", artifact_url="s3://b", allowed_hosts=("a.example",),
                            server_url="http://sematic.internal:8000")  # fmt: skip
    assert spec.answered_hosts == ("a.example", "sematic.internal")


def test_host_network_ports_give_one_deployment_per_port_on_loopback() -> None:
    objects = render("--host-network-ports", "18081,18082")
    deployments = of_kind(objects, "Deployment")
    (service,) = of_kind(objects, "Service")
    assert [d["metadata"]["name"] for d in deployments] == ["sematic-server-0", "sematic-server-1"]
    ports = []
    for deployment in deployments:
        pod = deployment["spec"]["template"]
        box = container(deployment)
        assert deployment["spec"]["replicas"] == 1
        assert pod["spec"]["hostNetwork"] is True
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        args = box["command"]
        assert args[args.index("--host") + 1] == "127.0.0.1"
        ports.append(int(args[args.index("--port") + 1]))
        assert box["ports"][0]["containerPort"] == ports[-1]
        assert box["readinessProbe"]["httpGet"]["host"] == "127.0.0.1"
        # The old pod holds the port: a surge pod could never be scheduled.
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert ports == [18081, 18082]
    labels = [frozenset(d["spec"]["selector"]["matchLabels"].items()) for d in deployments]
    assert not labels[0] <= labels[1] and not labels[1] <= labels[0]  # each its own pods
    (config,) = of_kind(objects, "ConfigMap")
    cluster = json.loads(config["data"][variables.CLUSTER])
    assert cluster["host_network"] is True
    assert cluster["server_url"] == "http://127.0.0.1:18081"


def test_resources_logs_claim_and_json_output() -> None:
    objects = render("--requests", "cpu=1,memory=2Gi", "--limits", "cpu=2,memory=4Gi",
                     "--logs-claim", "sematic-logs")  # fmt: skip
    deployment = of_kind(objects, "Deployment")[0]
    box = container(deployment)
    assert box["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"},
                                "limits": {"cpu": "2", "memory": "4Gi"}}  # fmt: skip
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "logs", "persistentVolumeClaim": {"claimName": "sematic-logs"}} in volumes
    assert {"name": "logs", "mountPath": "/var/lib/sematic/logs"} in box["volumeMounts"]
    listed = json.loads(invoke(*BASE, "--output", "json").stdout)
    assert listed["kind"] == "List" and listed["items"] == render()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--host-network-ports", "18081,18082", "--replicas", "3"), "each replica is one port"),
        (("--host-network-ports", "18081,18081"), "its own port"),
        (("--host-network-ports", "80a"), "not a list of ports"),
        (("--requests", "cpu"), "not NAME=QUANTITY"),
        (("--secret-name", "Team_DB"), "not a DNS label"),
    ],
)
def test_mistakes_are_one_line_errors(extra: tuple[str, ...], message: str) -> None:
    result = invoke(*BASE, *extra)
    assert result.exit_code != 0
    assert message in result.stderr and result.stdout == ""


def test_the_pure_module_takes_values_and_the_secret_command_has_placeholders_only() -> None:
    spec = ServerDeployment(image="i", artifact_url="s3://b", namespace="ns", replicas=1)
    objects = server_objects(spec)
    assert of_kind(objects, "Deployment")[0]["spec"]["replicas"] == 1
    objects[0]["metadata"]["labels"]["x"] = "y"  # copies: nothing else changes
    assert "x" not in objects[1]["metadata"]["labels"]
    assert "PASSWORD" in secret_command(spec) and "secrets.token_urlsafe" in secret_command(spec)


def test_the_server_images_entry_point_is_sematic_server_with_the_rendered_options() -> None:
    from sematic.packaging.server_image import PORT, server_entrypoint

    entrypoint, command = server_entrypoint("python3")
    assert entrypoint == [*SEMATIC, "server"]
    parsed = server_command.make_context("server", list(command))
    assert (parsed.params["host"], parsed.params["port"]) == ("0.0.0.0", PORT)
    assert parsed.params["kubeconfig"] == "in-cluster"
    rendered = container(of_kind(render(), "Deployment")[0])["command"]
    assert rendered[: len(entrypoint) + 4] == [*entrypoint, *command[:4]]
