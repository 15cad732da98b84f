"""The parts of CloudResolver that need no cluster: settings, refusals, how a Job's end
becomes a run's error, the driver's spec. (On the cluster: tests/kubernetes.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sematic
from sematic.core.errors import (
    ConfigurationError,
    FunctionTimeoutError,
    InfrastructureError,
    UserError,
    WorkerFailedError,
    WorkerLostError,
)
from sematic.core.images import ImageMap, script_in_image
from sematic.kubernetes.manifests import ClusterSettings, driver_rbac, job_manifest
from sematic.kubernetes.watcher import JobOutcome
from sematic.kubernetes.workers import job_name, loss_of
from sematic.resolvers.cloud import CloudResolver
from sematic.resolvers.driver import DriverSpec, driver_job_name
from sematic.resolvers.settings import LocalSettings, cluster_from_environment
from sematic.worker.drive import drive_from_environment


@pytest.mark.parametrize(
    ("cause", "error", "infrastructure"),
    [
        ("OOMKilled", WorkerFailedError, False),
        ("ExitCode", WorkerFailedError, False),
        ("DeadlineExceeded", FunctionTimeoutError, False),
        ("Unschedulable", WorkerLostError, True),
        ("ImagePullFailed", WorkerLostError, True),
        ("Evicted", WorkerLostError, True),
        ("Deleted", WorkerLostError, True),
    ],
)
def test_each_cause_fails_the_run_with_its_error(
    cause: str, error: type[Exception], infrastructure: bool
) -> None:
    loss = loss_of(JobOutcome("sematic-abc-1", cause, "what the cluster said"))
    raised = loss.error(f"the worker of f() {loss.reason}")
    assert type(raised) is error
    assert isinstance(raised, InfrastructureError) is infrastructure
    assert isinstance(raised, UserError) is not infrastructure
    assert f"Job sematic-abc-1, which ended without a result: {cause}: what the cluster said" in (
        str(raised)
    )
    if error is not FunctionTimeoutError:
        assert raised.cause == cause  # type: ignore[attr-defined]


def test_cluster_settings_from_the_environment() -> None:
    assert cluster_from_environment({}) == ClusterSettings()
    text = json.dumps({"namespace": "ml", "host_network": True, "env": {"A": "1"}})
    settings = cluster_from_environment({"SEMATIC_CLUSTER": text})
    assert (settings.namespace, settings.host_network, dict(settings.env)) == (
        "ml",
        True,
        {"A": "1"},
    )
    assert ClusterSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigurationError, match=r"SEMATIC_CLUSTER: unknown key\(s\) nmespace"):
        cluster_from_environment({"SEMATIC_CLUSTER": '{"nmespace": "ml"}'})
    with pytest.raises(ConfigurationError, match="not JSON"):
        cluster_from_environment({"SEMATIC_CLUSTER": "{"})
    with pytest.raises(ConfigurationError, match="JSON object"):
        cluster_from_environment({"SEMATIC_CLUSTER": "[1]"})


def test_driver_jobs_restart_and_worker_jobs_do_not() -> None:
    settings = ClusterSettings()
    worker = job_manifest(name="w", image="i", command=["c"], settings=settings)
    driver = job_manifest(name="d", image="i", command=["c"], settings=settings, restarts=3)
    assert worker["spec"]["backoffLimit"] == 0 and driver["spec"]["backoffLimit"] == 3


def test_driver_rbac_grants_what_a_driver_does() -> None:
    account, role, binding = driver_rbac("ml", "driver")
    assert account["kind"] == "ServiceAccount" and account["metadata"]["namespace"] == "ml"
    verbs = {(group, res): set(rule["verbs"]) for rule in role["rules"]
             for group in rule["apiGroups"] for res in rule["resources"]}  # fmt: skip
    assert {"create", "watch", "delete"} <= verbs[("batch", "jobs")]
    assert {"list", "watch"} <= verbs[("", "pods")] and "get" in verbs[("", "pods/log")]
    assert binding["roleRef"]["name"] == "driver"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "driver", "namespace": "ml"}]


def test_names_are_dns_labels() -> None:
    for name in (job_name("A1b2" * 16, 3), driver_job_name("F00D" * 16)):
        assert len(name) <= 63 and name == name.lower()
        job_manifest(name=name, image="i", command=["c"], settings=ClusterSettings())


def test_the_driver_spec_round_trips_and_a_pod_without_one_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = DriverSpec("r", {"default": "i@sha256:" + "0" * 64}, "d", "/app/x.py",
                      ClusterSettings().to_dict(), 10, 60.0)  # fmt: skip
    assert DriverSpec.from_json(spec.to_json()) == spec
    monkeypatch.delenv("SEMATIC_DRIVER", raising=False)
    assert drive_from_environment() == 2
    assert "SEMATIC_DRIVER is not set" in capsys.readouterr().err


def test_the_script_is_found_in_the_image_as_it_was_packaged(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "main.py").write_text("")
    (tmp_path / "alone.py").write_text("")
    assert script_in_image(tmp_path / "pkg" / "sub" / "main.py") == "/app/pkg/sub/main.py"
    assert script_in_image(tmp_path / "alone.py") == "/app/alone.py"


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="detach"):
        CloudResolver(detach="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="driver_restarts"):
        CloudResolver(driver_restarts=-1)
    with pytest.raises(ConfigurationError, match="driver_requirements"):
        CloudResolver(driver_requirements={"cpu": "1"})  # type: ignore[arg-type]


@sematic.func(inline=False)
def _step(x: int) -> int:
    return x


def test_without_images_or_a_default_image_it_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEMATIC_IMAGES", raising=False)
    monkeypatch.delenv("SEMATIC_IMAGES_FILE", raising=False)
    settings = LocalSettings(home=tmp_path, database_url="unused://", artifact_url="unused://",
                             server_url="http://127.0.0.1:9")  # fmt: skip
    with pytest.raises(ConfigurationError, match="sematic run --build"):
        _step(1).resolve(CloudResolver(settings=settings))
    with pytest.raises(ConfigurationError, match="no default image for the driver"):
        _ = ImageMap({"cuda": "x"}).driver


MOUNTING = sematic.ResourceRequirements(
    kubernetes=sematic.KubernetesResourceRequirements(
        host_path_mounts=(
            sematic.KubernetesHostPathMount(node_path="/mnt/cache", pod_mount_path="/cache"),
        )
    )
)


@sematic.func(inline=False, resource_requirements=MOUNTING)
def reads_the_node_cache(n: int) -> int:
    return n


def test_a_host_path_mount_the_cluster_does_not_allow_is_refused_before_submitting(
    tmp_path: Path,
) -> None:
    settings = LocalSettings(
        home=tmp_path, database_url="unused://", artifact_url="unused://",
        server_url="http://127.0.0.1:9",  # never reached: refused before
    )  # fmt: skip
    resolver = CloudResolver(
        images=ImageMap({"default": "r/p@sha256:aa"}), cluster=ClusterSettings(),
        settings=settings, check_registry=False,
    )  # fmt: skip
    with pytest.raises(ConfigurationError) as refused:
        resolver.resolve(reads_the_node_cache(1))
    message = str(refused.value)
    assert "reads_the_node_cache cannot run" in message
    assert "allow_host_path_mounts" in message
    assert not any(tmp_path.iterdir())  # nothing recorded, nothing submitted
