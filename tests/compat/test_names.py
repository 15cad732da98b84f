"""Sematic 0.41's public names, used the way a 0.41 program uses them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import sematic
from sematic import (
    CloudRunner,
    KubernetesCapabilities,
    KubernetesError,
    KubernetesHostPathMount,
    KubernetesResourceRequirements,
    KubernetesSecretMount,
    KubernetesSecurityContext,
    KubernetesToleration,
    KubernetesTolerationEffect,
    KubernetesTolerationOperator,
    LocalRunner,
    PipelineRunError,
    RerunMode,
    ResourceRequirements,
    Runner,
    SematicContext,
    SilentRunner,
    has_container_image,
)
from sematic.kubernetes.manifests import ClusterSettings, job_manifest
from tests.unit.resolvers.conftest import recorded_runs

# A 0.41 program's requirements, in 0.41's spelling.
GPU_REQUIREMENTS = ResourceRequirements(
    kubernetes=KubernetesResourceRequirements(
        node_selector={"node.kubernetes.io/instance-type": "g4dn.xlarge"},
        requests={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        secret_mounts=KubernetesSecretMount(
            environment_secrets={"wandb-key": "WANDB_API_KEY"},
            file_secrets={"gcp-json": "gcp/credentials.json"},
        ),
        tolerations=[
            KubernetesToleration(
                key="nvidia.com/gpu",
                operator=KubernetesTolerationOperator.Exists,
                effect=KubernetesTolerationEffect.NoSchedule,
            ),
            KubernetesToleration(key="team", value="ml"),
        ],
        mount_expanded_shared_memory=True,
        security_context=KubernetesSecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            capabilities=KubernetesCapabilities(add=["SYS_PTRACE"], drop=["ALL"]),
        ),
        host_path_mounts=[
            KubernetesHostPathMount(node_path="/mnt/cache", pod_mount_path="/root/.cache")
        ],
    )
)


@sematic.func
def whoami() -> list[str]:
    context: SematicContext = sematic.context()
    assert isinstance(context, SematicContext)
    return [context.run_id, context.root_id]


@sematic.func(standalone=True, resource_requirements=GPU_REQUIREMENTS)
def train(x: int) -> int:
    return x + 1


@sematic.func
def broken(x: int) -> int:
    raise ValueError(f"bad {x}")


def _mark(witness: str, name: str) -> None:
    folder = Path(witness)
    folder.mkdir(parents=True, exist_ok=True)
    count = len(list(folder.glob(f"{name}.*")))
    (folder / f"{name}.{count}").write_text("")


def executions(witness: str, name: str) -> int:
    return len(list(Path(witness).glob(f"{name}.*")))


@sematic.func
def prepare(x: int, witness: str) -> int:
    _mark(witness, "prepare")
    return x * 10


@sematic.func
def flaky(x: int, witness: str) -> int:
    _mark(witness, "flaky")
    if not (Path(witness) / "ready").exists():
        raise ConnectionError("not ready yet")
    return x + 1


@sematic.func
def add(a: int, b: int) -> int:
    return a + b


@sematic.func
def rerunnable(x: int, witness: str) -> int:
    return add(prepare(x, witness), flaky(x, witness))


def test_runners_have_run_and_are_runners() -> None:
    assert isinstance(SilentRunner(), Runner)
    assert isinstance(LocalRunner(), Runner)
    assert isinstance(LocalRunner(), sematic.LocalResolver)
    assert isinstance(CloudRunner(detach=False), Runner)
    assert isinstance(CloudRunner(detach=False), sematic.CloudResolver)
    assert not isinstance(object(), Runner)


def test_context_and_pipeline_run_error_under_silent_runner() -> None:
    future = whoami()
    assert SilentRunner().run(future) == [future.id, future.id]
    with pytest.raises(PipelineRunError) as raised:
        SilentRunner().run(broken(1))
    assert raised.type is sematic.PipelineFailedError
    assert isinstance(raised.value.__cause__, ValueError)


def test_kubernetes_error_is_an_infrastructure_error() -> None:
    assert issubclass(KubernetesError, sematic.InfrastructureError)
    assert not issubclass(KubernetesError, sematic.UserError)


def test_toleration_enums_are_the_strings_kubernetes_takes() -> None:
    assert [e.value for e in KubernetesTolerationOperator] == ["Equal", "Exists"]
    assert {e.value for e in KubernetesTolerationEffect} == {
        "NoSchedule",
        "PreferNoSchedule",
        "NoExecute",
        "All",
    }
    toleration = KubernetesToleration(
        key="k",
        operator=KubernetesTolerationOperator.Equal,
        value="v",
        effect=KubernetesTolerationEffect.NoExecute,
        toleration_seconds=30,
    )
    assert json.loads(json.dumps(toleration.to_dict())) == {
        "key": "k",
        "operator": "Equal",
        "value": "v",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }


def test_041_requirements_reach_the_job_manifest() -> None:
    wanted = train.props.resource_requirements
    assert wanted is GPU_REQUIREMENTS and train.props.inline is False
    kubernetes = wanted.kubernetes
    assert isinstance(kubernetes, sematic.KubernetesRequirements)
    rebuilt = dataclasses.replace(kubernetes)  # construction runs again: same value
    assert rebuilt == kubernetes and hash(rebuilt) == hash(kubernetes)
    job = job_manifest(
        name="train-1",
        image="registry/train@sha256:aa",
        command=["python"],
        settings=ClusterSettings(allow_host_path_mounts=True, allow_security_contexts=True),
        requirements=kubernetes,
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    requested = {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert container["resources"] == {"requests": requested, "limits": requested}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert {"key": "team", "operator": "Equal", "value": "ml"} in pod["tolerations"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["WANDB_API_KEY"] == {
        "secretKeyRef": {"name": "sematic-func-secrets", "key": "wandb-key"}
    }
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/secrets/gcp/credentials.json"]["subPath"] == "gcp-json"
    assert "/dev/shm" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    recorded = kubernetes.to_dict()
    assert recorded["host_path_mounts"] == [
        {
            "node_path": "/mnt/cache",
            "pod_mount_path": "/root/.cache",
            "name": "volume-root-cache",
            "type": "",
        }
    ]
    assert recorded["security_context"]["capabilities"] == {
        "add": ["SYS_PTRACE"],
        "drop": ["ALL"],
    }
    assert volumes["volume-root-cache"]["hostPath"] == {"path": "/mnt/cache"}
    assert mounts["/root/.cache"]["name"] == "volume-root-cache"
    assert container["securityContext"]["capabilities"] == {"add": ["SYS_PTRACE"], "drop": ["ALL"]}
    with pytest.raises(sematic.ConfigurationError, match="allow_host_path_mounts"):
        job_manifest(name="train-1", image="i", command=["python"], settings=ClusterSettings(),
                     requirements=kubernetes)  # fmt: skip


def test_041_requirement_values_are_checked() -> None:
    with pytest.raises(ValueError, match="relative"):
        KubernetesSecretMount(file_secrets={"k": "/etc/abs"})
    with pytest.raises(ValueError, match="absolute"):
        KubernetesHostPathMount(node_path="relative", pod_mount_path="/x")
    long = KubernetesHostPathMount(node_path="/n", pod_mount_path="/very" * 30)
    assert len(long.name) <= 63 and long.name.startswith("volume-")
    assert KubernetesHostPathMount(node_path="/n", pod_mount_path="/p", name="mine").name == "mine"
    plain = KubernetesResourceRequirements(mount_expanded_shared_memory=True)
    assert plain.shared_memory is None and plain.secrets == () and plain.limits == {}
    explicit = KubernetesResourceRequirements(requests={"cpu": "1"}, limits={"cpu": "2"})
    assert explicit.limits == {"cpu": "2"}
    assert KubernetesResourceRequirements().clone() == KubernetesResourceRequirements()


def test_has_container_image_follows_the_built_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMATIC_IMAGES", raising=False)
    monkeypatch.delenv("SEMATIC_IMAGES_FILE", raising=False)
    assert has_container_image() is False
    monkeypatch.setenv("SEMATIC_IMAGES", json.dumps({"default": "registry/p@sha256:aa"}))
    assert has_container_image() is True


def test_cloud_runner_takes_041_arguments() -> None:
    runner = CloudRunner(False, 3, GPU_REQUIREMENTS)
    assert runner.detach is False and runner.max_parallelism == 3
    assert runner.driver_requirements is GPU_REQUIREMENTS.kubernetes
    with pytest.raises(sematic.ConfigurationError, match="rerun_from"):
        CloudRunner(rerun_from="abc")


def test_local_runner_rerun_modes(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    first = rerunnable(1, witness)
    with pytest.raises(PipelineRunError):
        LocalRunner().run(first)
    assert executions(witness, "prepare") == 1 and executions(witness, "flaky") == 1
    (Path(witness) / "ready").write_text("")

    # CONTINUE: a new pipeline run that reuses what the first one resolved.
    again = rerunnable(1, witness)
    assert LocalRunner(rerun_from=first.id, rerun_mode=RerunMode.CONTINUE).run(again) == 12
    assert executions(witness, "prepare") == 1 and executions(witness, "flaky") == 2
    assert {run.root_id for run in recorded_runs(again.id)} == {again.id}

    # SPECIFIC_RUN (the default): that run and what it influenced execute again.
    prepared = next(r for r in recorded_runs(again.id) if r.name == "prepare")
    third = rerunnable(1, witness)
    assert LocalRunner(None, prepared.id).run(third) == 12
    assert executions(witness, "prepare") == 2 and executions(witness, "flaky") == 2

    # REENTER: the first pipeline run itself is finished.
    assert LocalRunner(rerun_from=first.id, rerun_mode=RerunMode.REENTER).run(first) == 12
    assert executions(witness, "prepare") == 2 and executions(witness, "flaky") == 3


def test_local_runner_rerun_mode_mistakes(home: Path, tmp_path: Path) -> None:
    witness = str(tmp_path / "w")
    (Path(witness)).mkdir()
    (Path(witness) / "ready").write_text("")
    first = rerunnable(1, witness)
    assert LocalRunner().run(first) == 12
    step = next(r for r in recorded_runs(first.id) if r.name == "prepare")
    with pytest.raises(sematic.ConfigurationError, match="root run"):
        LocalRunner(rerun_from=step.id, rerun_mode=RerunMode.CONTINUE).run(rerunnable(1, witness))
    with pytest.raises(sematic.ConfigurationError, match="not of"):
        LocalRunner(rerun_from=first.id, rerun_mode=RerunMode.CONTINUE).run(add(1, 2))
    with pytest.raises(sematic.ConfigurationError, match="RerunMode"):
        LocalRunner(rerun_mode="CONTINUE")  # type: ignore[arg-type]
