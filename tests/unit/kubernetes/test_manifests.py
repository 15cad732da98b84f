"""Job manifests: what a function asks for becomes the pod Kubernetes runs."""

from __future__ import annotations

import pytest

from sematic import (
    KubernetesCapabilities,
    KubernetesHostPathMount,
    KubernetesRequirements,
    KubernetesResourceRequirements,
    KubernetesSecret,
    KubernetesSecurityContext,
    KubernetesToleration,
)
from sematic.core.errors import ConfigurationError
from sematic.kubernetes.manifests import (
    ClusterSettings,
    api_key_secret_manifest,
    job_manifest,
    merge,
)

SETTINGS = ClusterSettings(namespace="ml", env={"SEMATIC_SERVER_URL": "http://s"})


def pod_of(job: dict) -> dict:  # type: ignore[type-arg]
    return job["spec"]["template"]  # type: ignore[no-any-return]


def test_a_plain_job_runs_once_with_the_image_command_and_environment() -> None:
    job = job_manifest(
        name="run-1", image="r/p@sha256:ab", command=["sematic-worker", "job"],
        settings=SETTINGS, labels={"sematic.dev/run-id": "1"}, env={"A": "b"},
        deadline_seconds=60,
    )  # fmt: skip
    assert job["metadata"]["name"] == "run-1" and job["metadata"]["namespace"] == "ml"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 60
    pod = pod_of(job)
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "sematic", "sematic.dev/run-id": "1"
    }  # fmt: skip
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["hostNetwork"] is False
    (container,) = spec["containers"]
    assert container["image"] == "r/p@sha256:ab"
    assert container["command"] == ["sematic-worker", "job"]
    assert container["env"] == [
        {"name": "SEMATIC_SERVER_URL", "value": "http://s"}, {"name": "A", "value": "b"},
        {"name": "SEMATIC_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "SEMATIC_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]  # fmt: skip
    assert container["resources"] == {} and spec["nodeSelector"] == {}


def test_requirements_become_resources_placement_secrets_and_shared_memory() -> None:
    wanted = KubernetesRequirements(
        node_selector={"pool": "gpu"},
        requests={"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
        limits={"memory": "6Gi"},
        tolerations=(KubernetesToleration(key="gpu", operator="Exists", effect="NoSchedule"),),
        secrets=(KubernetesSecret(name="s3", environment={"key": "AWS_KEY"},
                                  files={"cfg": "/etc/s3/config"}),),
        shared_memory="1Gi",
        labels={"team": "ml"},
        annotations={"owner": "me"},
        service_account="trainer",
    )  # fmt: skip
    job = job_manifest(name="w", image="i", command=["c"], settings=SETTINGS, requirements=wanted)
    spec = pod_of(job)["spec"]
    (container,) = spec["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "6Gi", "nvidia.com/gpu": "1"},  # GPUs: limit = request
    }
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["serviceAccountName"] == "trainer"
    assert {"name": "AWS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "key"}}} in (
        container["env"]
    )
    assert spec["volumes"] == [
        {"name": "secret-0", "secret": {"secretName": "s3"}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
    ]
    assert container["volumeMounts"] == [
        {"name": "secret-0", "mountPath": "/etc/s3/config", "subPath": "cfg", "readOnly": True},
        {"name": "shm", "mountPath": "/dev/shm"},
    ]
    assert pod_of(job)["metadata"]["labels"]["team"] == "ml"
    assert job["metadata"]["annotations"] == {"owner": "me"}


def test_pod_templates_merge_over_the_generated_pod_cluster_first_then_function() -> None:
    settings = ClusterSettings(
        host_network=True,
        pod_template={"spec": {"priorityClassName": "low", "dnsPolicy": "Default"}},
    )
    wanted = KubernetesRequirements(
        pod_template={
            "spec": {
                "priorityClassName": "high",
                "containers": [
                    {"name": "main", "imagePullPolicy": "Always"},
                    {"name": "sidecar", "image": "proxy"},
                ],
            },
            "metadata": {"labels": {"extra": "1"}},
        }
    )
    pod = pod_of(job_manifest(name="w", image="i", command=["c"], settings=settings,
                              requirements=wanted))  # fmt: skip
    spec = pod["spec"]
    assert spec["priorityClassName"] == "high" and spec["dnsPolicy"] == "Default"
    assert spec["hostNetwork"] is True
    main, sidecar = spec["containers"]
    assert main["image"] == "i" and main["imagePullPolicy"] == "Always"
    assert sidecar == {"name": "sidecar", "image": "proxy"}
    assert pod["metadata"]["labels"]["extra"] == "1"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sematic"


def test_merge_does_not_touch_its_inputs() -> None:
    base = {"a": {"b": [1]}}
    merged = merge(base, {"a": {"c": 2}})
    merged["a"]["b"].append(3)
    assert base == {"a": {"b": [1]}}


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "x" * 64, ""])
def test_a_job_name_must_be_a_dns_label(name: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a DNS label"):
        job_manifest(name=name, image="i", command=["c"], settings=SETTINGS)


def test_a_key_from_a_secret_appears_only_as_the_secrets_name() -> None:
    job = job_manifest(
        name="w", image="i", command=["c"], settings=SETTINGS,
        secret_env={"SEMATIC_API_KEY": ("sematic-key-abc", "api-key")},
        annotations={"sematic.dev/root-id": "abc"},
    )  # fmt: skip
    (container,) = pod_of(job)["spec"]["containers"]
    assert {
        "name": "SEMATIC_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "sematic-key-abc", "key": "api-key"}},
    } in container["env"]
    assert all("value" not in v for v in container["env"] if v["name"] == "SEMATIC_API_KEY")
    assert job["metadata"]["annotations"] == {"sematic.dev/root-id": "abc"}


def test_the_key_secret_holds_the_key_and_may_be_owned_by_a_job() -> None:
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "d", "uid": "u-1"}
    secret = api_key_secret_manifest(
        name="sematic-key-abc", namespace="ml", api_key="k3y",
        labels={"sematic.dev/root-id": "abc"}, owner=owner,
    )  # fmt: skip
    assert secret["kind"] == "Secret" and secret["stringData"] == {"api-key": "k3y"}
    meta = secret["metadata"]
    assert meta["namespace"] == "ml" and meta["labels"]["sematic.dev/root-id"] == "abc"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "sematic"
    assert meta["ownerReferences"] == [{**owner, "blockOwnerDeletion": False}]
    plain = api_key_secret_manifest(name="s", namespace="ml", api_key="k")
    assert "ownerReferences" not in plain["metadata"]


def test_cluster_settings_name_a_key_secret_and_whether_finished_jobs_stay() -> None:
    assert ClusterSettings().api_key_secret is None
    assert ClusterSettings().keep_finished_jobs is False
    settings = ClusterSettings.from_dict({"api_key_secret": "team.key", "keep_finished_jobs": True})
    assert ClusterSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigurationError, match="keep_finished_jobs takes a bool"):
        ClusterSettings.from_dict({"keep_finished_jobs": "yes"})
    with pytest.raises(ConfigurationError, match="is not a Secret's name"):
        ClusterSettings(api_key_secret="Bad Name")


def _compat_requirements() -> KubernetesResourceRequirements:
    return KubernetesResourceRequirements(
        security_context=KubernetesSecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            capabilities=KubernetesCapabilities(add=("SYS_PTRACE",), drop=("ALL",)),
        ),
        host_path_mounts=(
            KubernetesHostPathMount(
                node_path="/mnt/data", pod_mount_path="/data", type="Directory"
            ),
        ),
    )


def test_security_contexts_and_host_paths_need_the_admins_consent() -> None:
    requirements = _compat_requirements()
    with pytest.raises(ConfigurationError, match="allow_host_path_mounts"):
        job_manifest(name="run-1", image="i", command=["c"], settings=SETTINGS,
                     requirements=requirements)  # fmt: skip
    mounts_only = ClusterSettings(namespace="ml", allow_host_path_mounts=True)
    with pytest.raises(ConfigurationError, match="allow_security_contexts"):
        job_manifest(name="run-1", image="i", command=["c"], settings=mounts_only,
                     requirements=requirements)  # fmt: skip


def test_allowed_security_contexts_and_host_paths_reach_the_pod() -> None:
    settings = ClusterSettings(
        namespace="ml", allow_host_path_mounts=True, allow_security_contexts=True
    )
    assert ClusterSettings.from_dict(settings.to_dict()) == settings
    job = job_manifest(name="run-1", image="i", command=["c"], settings=settings,
                       requirements=_compat_requirements())  # fmt: skip
    spec = pod_of(job)["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"add": ["SYS_PTRACE"], "drop": ["ALL"]},
    }
    assert {"name": "volume-data", "hostPath": {"path": "/mnt/data", "type": "Directory"}} in (
        spec["volumes"]
    )
    assert {"name": "volume-data", "mountPath": "/data"} in container["volumeMounts"]
