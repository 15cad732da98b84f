"""`sematic deploy` against a real cluster (Kubernetes 1.20, tests/harness/cluster.py).

- The API server's validation and admission accept every rendered object (dry run), and its
  RBAC authorizer grants the server's account what reruns and the reaper do, nothing more.
- End to end: the server's image, built by `sematic deploy image`'s builder into the
  cluster's registry, runs as two host-network replicas (this cluster has no pod network)
  on a PostgreSQL database of tests/harness/postgres.py; both become ready and answer.
- The issue's "done when": the two replicas on PostgreSQL and S3-protocol artifacts (moto,
  tests/harness/s3.py; its credentials in the operator's Secret) run seed 003's CloudResolver
  example, submitted with both replicas as the server URL, as its driver and worker pods
  reach them too. One replica's pod is deleted mid-run (its Deployment recreates it): the
  pipeline still resolves, each run and transition is in PostgreSQL once, each output's
  payload is in the bucket, and the restarted replica answers the pipeline's graph.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sematic.core.images import ImageMap
from sematic.kubernetes.deployment import ServerDeployment, secret_command, server_objects
from tests.harness.cluster import Cluster
from tests.harness.registry import RegistryServer
from tests.harness.s3 import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(kubernetes_cluster: Cluster) -> Iterator[Any]:
    from kubernetes import config

    client = config.new_client_from_config(str(kubernetes_cluster.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    """A namespace of its own, deleted with all it holds (waited for, at most 180 s: the
    namespace controller retries with a backoff while pods are still stopping)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    name = f"sematic-deploy-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if name not in {n.metadata.name for n in core.list_namespace().items}:
            return
        time.sleep(0.5)
    raise AssertionError(f"namespace {name} was not deleted within 180 s")


def spec(namespace: str, **extra: Any) -> ServerDeployment:
    return ServerDeployment(
        image="127.0.0.1:5000/sematic/server:test",
        artifact_url="s3://team-bucket/sematic",
        namespace=namespace,
        allowed_hosts=("sematic.team.example",),
        logs_claim="sematic-logs",
        **extra,
    )


@pytest.mark.parametrize("ports", [(), (18081, 18082)], ids=["service", "host-network"])
def test_the_api_server_accepts_every_rendered_object(
    api: Any, namespace: str, ports: tuple[int, ...]
) -> None:
    """Server-side dry run: schema validation, defaulting and admission, nothing stored."""
    from kubernetes import client, utils

    objects = server_objects(spec(namespace, host_network_ports=ports))
    for manifest in objects:
        utils.create_from_dict(api, manifest, namespace=namespace, dry_run="All")
    stored = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    assert stored == []
    assert len(objects) == 9 + (len(ports) - 1 if ports else 0)


def allowed(api: Any, user: str, namespace: str, verb: str, resource: str, **more: str) -> bool:
    from kubernetes import client

    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {
                "namespace": more.pop("in_namespace", namespace),
                "verb": verb,
                "resource": resource,
                **more,
            },
        },
    }
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_rbac_grants_reruns_and_the_reaper_and_nothing_more(api: Any, namespace: str) -> None:
    from kubernetes import utils

    deployment = spec(namespace)
    for manifest in server_objects(deployment):
        if manifest["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            utils.create_from_dict(api, manifest, namespace=namespace)
    server = f"system:serviceaccount:{namespace}:{deployment.name}"
    driver = f"system:serviceaccount:{namespace}:{deployment.driver_service_account}"

    def can(user: str, verb: str, resource: str, **more: str) -> bool:
        return allowed(api, user, namespace, verb, resource, **more)

    for verb in ("create", "get", "list", "watch", "delete"):
        assert can(server, verb, "jobs", group="batch"), verb
        assert can(server, verb, "secrets"), verb
    assert can(server, "deletecollection", "pods")  # the reaper removes a Job's pods
    assert can(server, "get", "pods", subresource="log")
    assert can(server, "patch", "secrets")  # a pipeline's key Secret, given to its driver
    # Nothing beyond: no pods or Deployments of its own, no other namespace, no nodes.
    assert not can(server, "create", "pods")
    assert not can(server, "create", "deployments", group="apps")
    assert not can(server, "create", "jobs", group="batch", in_namespace="default")
    assert not can(server, "get", "secrets", in_namespace="kube-system")
    assert not can(server, "list", "nodes", in_namespace="")
    # Drivers the server starts run their workers' Jobs.
    assert can(driver, "create", "jobs", group="batch")
    assert can(driver, "get", "pods", subresource="log")
    assert not can(driver, "get", "secrets")


@pytest.fixture(scope="module")
def server_image(cluster_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server's image on the bookworm Python base, built with an empty builder cache."""
    from sematic.packaging.server_image import build_server_image
    from tests.harness.images import push_base

    base = push_base(cluster_registry, "base/server", "bookworm")
    built = build_server_image(
        base=base,
        registry=cluster_registry.address,
        repository="tests/sematic-server",
        cache=tmp_path_factory.mktemp("server-image-cache"),
        insecure_registries=(cluster_registry.address,),
        # The server imports prometheus_client (server/metrics.py), which Sematic's
        # installed requirements do not list yet: named here, as `--distribution` does.
        extra_distributions=("prometheus-client",),
    )
    print(f"server image built cold in {built.seconds:.1f} s: {built.image}")
    return built.image


def _diagnosis(api: Any, namespace: str) -> str:
    from kubernetes import client

    core = client.CoreV1Api(api)
    lines = []
    for pod in core.list_namespaced_pod(namespace).items:
        lines.append(f"{pod.metadata.name}: {pod.status.phase} {pod.status.container_statuses}")
        try:
            lines.append(core.read_namespaced_pod_log(pod.metadata.name, namespace)[-3000:])
        except client.ApiException as error:
            lines.append(f"(no log: {error.reason})")
    return "\n".join(lines)


def _apply(
    api: Any,
    cluster: Cluster,
    deployment: ServerDeployment,
    secret: dict[str, str],
    env: dict[str, str] | None = None,
) -> float:
    """The operator's steps, through the API: the Secret (``secret_command``), then every
    rendered object, each server container given ``env`` too; when it started."""
    from kubernetes import client, utils

    client.CoreV1Api(api).create_namespaced_secret(
        deployment.namespace,
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": deployment.secret_name}, "stringData": secret},
    )  # fmt: skip
    extra = dict(env or {})
    if cluster.local:
        # No kube-proxy here: "in-cluster" must find the API server where the host does.
        address = urlsplit(cluster.api_url)
        extra["KUBERNETES_SERVICE_HOST"] = address.hostname or ""
        extra["KUBERNETES_SERVICE_PORT"] = str(address.port)
    objects = server_objects(deployment)
    for manifest in objects:
        if manifest["kind"] == "Deployment":
            (box,) = manifest["spec"]["template"]["spec"]["containers"]
            box["env"] += [{"name": name, "value": value} for name, value in extra.items()]
    started = time.monotonic()
    for manifest in objects:
        utils.create_from_dict(api, manifest, namespace=deployment.namespace)
    return started


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_healthy(api: Any, namespace: str, urls: list[str], started: float) -> dict[str, float]:
    """Seconds from ``started`` until each of ``urls`` answered its health check."""
    ready: dict[str, float] = {}
    deadline = started + 180
    while len(ready) < len(urls) and time.monotonic() < deadline:
        for url in urls:
            if url not in ready and _healthy(url):
                ready[url] = time.monotonic() - started
        time.sleep(0.2)
    assert len(ready) == len(urls), _diagnosis(api, namespace)
    return ready


def _wait_kubelet_ready(api: Any, namespace: str, count: int) -> None:
    """Each of the ``count`` Deployments has its replica ready, per the kubelet's probe."""
    from kubernetes import client

    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [apps.read_namespaced_deployment_status(d.metadata.name, namespace).status
                  for d in apps.list_namespaced_deployment(namespace).items]  # fmt: skip
        if len(states) == count and all(s.ready_replicas == 1 for s in states):
            return
        time.sleep(0.5)
    raise AssertionError(f"not ready per the kubelet: {states}\n{_diagnosis(api, namespace)}")


def test_two_replicas_on_postgres_become_ready_and_answer(
    api: Any,
    kubernetes_cluster: Cluster,
    namespace: str,
    server_image: str,
    postgres_url: str,
    free_ports: tuple[int, int],
) -> None:
    from kubernetes import client

    deployment = ServerDeployment(
        image=server_image,
        artifact_url="/var/lib/sematic/artifacts",  # each pod's own: only health is read
        namespace=namespace,
        host_network_ports=free_ports,
        allowed_hosts=("sematic.team.example",),
    )
    key = secrets.token_urlsafe(24)
    assert "create secret generic sematic-server" in secret_command(deployment)
    started = _apply(
        api, kubernetes_cluster, deployment, {"database-url": postgres_url, "api-key": key}
    )
    urls = [f"http://127.0.0.1:{port}" for port in free_ports]
    ready = _wait_healthy(api, namespace, urls, started)
    print(f"apply -> healthy: {', '.join(f'{u} {t:.1f} s' for u, t in ready.items())}")
    _wait_kubelet_ready(api, namespace, 2)
    print(f"apply -> both Deployments ready: {time.monotonic() - started:.1f} s")
    for url in urls:
        assert httpx.get(f"{url}/api/v1/runs", timeout=5).status_code == 401
        listed = httpx.get(
            f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {key}"}, timeout=5
        )
        assert listed.status_code == 200, listed.text
        # --allowed-host reached the server through the ConfigMap and $(VAR) expansion.
        named = httpx.get(f"{url}/api/v1/health", headers={"Host": "sematic.team.example"})
        assert named.status_code == 200
        other = httpx.get(f"{url}/api/v1/health", headers={"Host": "elsewhere.example"})
        assert other.status_code == 421
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    assert len(pods) == 2
    for pod in pods:
        (status,) = pod.status.container_statuses
        assert status.restart_count == 0
        log = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, namespace)
        assert "Traceback" not in log, log
        # The reaper's first pass (at start) listed Jobs and Secrets with the pod's own
        # account: "in-cluster" and the Role work; a failure prints "sematic reaper: ...".
        assert "sematic reaper" not in log, log


@pytest.fixture
def free_ports() -> tuple[int, int]:
    from tests.harness.ports import free_port

    return free_port(below_ephemeral=True), free_port(below_ephemeral=True)


# -- the "done when": a pipeline through two replicas, one restarted mid-run ------

SEED_RUNS = {"pipeline", "load", "featurize", "train_model"}
SEED_VALUE = "mean 0.2734 computed on cuda"
TERMINAL = {"RESOLVED", "FAILED", "NESTED_FAILED", "CANCELED"}


@pytest.fixture(scope="module")
def seed_images(
    api: Any,
    cluster_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ImageMap]:
    """Seed 003's example packaged into the cluster's registry (as test_cloud_resolver.py
    has it: importable here as ``seed_pipeline``), and the node labelled for its GPU step."""
    from kubernetes import client
    from tests.harness.cloud import INSTANCE_TYPE, NODE, build_project, unlabel_node

    project = tmp_path_factory.mktemp("seed")
    images = build_project(cluster_registry, project, tmp_path_factory.mktemp("seed-cache"))
    client.CoreV1Api(api).patch_node(NODE, {"metadata": {"labels": {INSTANCE_TYPE: "g4dn.xlarge"}}})
    sys.path.insert(0, str(project))
    try:
        yield images
    finally:
        sys.path.remove(str(project))
        unlabel_node(api)


def _wait_account_token(api: Any, namespace: str, account: str) -> None:
    """Kubernetes 1.20's token controller gives a new service account its token Secret;
    a pod of that account is refused until then."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    deadline = time.monotonic() + 30
    while not core.read_namespaced_service_account(account, namespace).secrets:
        assert time.monotonic() < deadline, f"the service account {account} got no token"
        time.sleep(0.2)


def _replica_pods(api: Any, namespace: str, deployment: str) -> list[Any]:
    from kubernetes import client

    selector = f"sematic.dev/deployment={deployment}"
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _served(url: str, key: str) -> tuple[int, float]:
    """What one replica's own metrics say it did since it started: the writes it answered
    with success, and the artifact bytes it stored."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(
        f"{url}/api/v1/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    writes, stored = 0, 0.0
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if (
                sample.name == "sematic_http_request_duration_seconds_count"
                and sample.labels["method"] in WRITES
                and sample.labels["status"].startswith("2")
            ):
                writes += int(sample.value)
            elif sample.name == "sematic_artifact_bytes_written_total":
                stored += sample.value
    return writes, stored


def test_a_pipeline_through_both_replicas_survives_a_replica_restart_on_postgres_and_s3(
    api: Any,
    kubernetes_cluster: Cluster,
    namespace: str,
    server_image: str,
    postgres_url: str,
    s3_server: S3Server,
    s3_url: str,
    free_ports: tuple[int, int],
    seed_images: ImageMap,
    tmp_path: Path,
) -> None:
    import seed_pipeline  # type: ignore[import-not-found]

    from kubernetes import client
    from sematic.core.records import ArtifactRecord
    from sematic.kubernetes.deployment import DATABASE_URL_KEY, S3_KEYS
    from sematic.kubernetes.manifests import (
        API_KEY_SECRET_KEY,
        ROLE_LABEL,
        ROOT_LABEL,
        label_value,
    )
    from sematic.resolvers.cloud import CloudResolver
    from sematic.resolvers.settings import LocalSettings
    from sematic.storage.serialization import deserialize, verify
    from sematic.storage.sql import SqlMetadataStore
    from tests.harness.cloud import cluster_settings
    from tests.harness.payloads import stored_payloads

    urls = [f"http://127.0.0.1:{port}" for port in free_ports]
    both = ",".join(urls)
    deployment = ServerDeployment(
        image=server_image,
        artifact_url=s3_url,  # moto on 127.0.0.1: the host-network pods reach it there
        namespace=namespace,
        host_network_ports=free_ports,
        allowed_hosts=("sematic.team.example",),
        server_url=both,  # driver Jobs the server starts reach both replicas too
    )
    key = secrets.token_urlsafe(24)
    s3 = s3_server.environment()
    secret = {
        DATABASE_URL_KEY: postgres_url,
        API_KEY_SECRET_KEY: key,
        **{S3_KEYS[name]: s3[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }
    # Where the S3-protocol store is: no credential, so plain values.
    where = {name: s3[name] for name in ("AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")}
    applied = _apply(
        api, kubernetes_cluster, deployment, secret, {**where, "AWS_EC2_METADATA_DISABLED": "true"}
    )
    ready = _wait_healthy(api, namespace, urls, applied)
    print(f"apply -> healthy: {', '.join(f'{u} {t:.1f} s' for u, t in ready.items())}")
    _wait_kubelet_ready(api, namespace, 2)
    apps = client.AppsV1Api(api)
    for stored in apps.list_namespaced_deployment(namespace).items:
        (box,) = stored.spec.template.spec.containers
        plain = json.dumps([v.value for v in box.env if v.value is not None])
        assert all(value not in plain for value in secret.values())
        for name, secret_key in S3_KEYS.items():  # the credentials come from the Secret
            (variable,) = [v for v in box.env if v.name == name]
            assert variable.value_from.secret_key_ref.key == secret_key
    _wait_account_token(api, namespace, deployment.driver_service_account)

    # The resolver and every pod it starts reach the server as both replicas.
    settings = LocalSettings(
        home=tmp_path / "home", database_url="unused://", artifact_url="unused://",
        server_url=both, api_key=key,
    )  # fmt: skip
    cluster = dataclasses.replace(
        deployment.cluster_settings(),  # the namespace the server's reaper looks after
        env=cluster_settings(kubernetes_cluster).env,
        keep_finished_jobs=True,  # to count the Jobs after
    )
    assert cluster.server_url == both and cluster.api_key_secret == deployment.secret_name
    resolver = CloudResolver(
        images=seed_images, cluster=cluster, kubeconfig=str(kubernetes_cluster.kubeconfig),
        settings=settings, unschedulable_after=30.0,
    )  # fmt: skip
    watcher = httpx.Client(  # the replica left running: it watches the pipeline
        base_url=f"{urls[1]}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )

    def graph(root_id: str) -> dict[str, dict[str, Any]]:
        answer = watcher.get(f"/runs/{root_id}/graph")
        if answer.status_code == 404:  # not recorded yet
            return {}
        assert answer.status_code == 200, answer.text
        return {run["name"]: run for run in answer.json()["runs"]}

    submitted = time.monotonic()
    future = seed_pipeline.pipeline(8)
    root_id = future.resolve(resolver)
    assert root_id == future.id
    try:
        deadline = submitted + 180
        while "featurize" not in graph(root_id):  # a worker step is recorded
            assert time.monotonic() < deadline, f"featurize not recorded: {graph(root_id)}"
            time.sleep(0.1)
        # Restart the replica every client tries first (the first URL).
        (old,) = _replica_pods(api, namespace, f"{deployment.name}-0")
        assert graph(root_id)["pipeline"]["state"] not in TERMINAL
        victim_before = _served(urls[0], key)
        survivor_before = _served(urls[1], key)
        assert victim_before[0] > 0  # the clients wrote through the first replica
        client.CoreV1Api(api).delete_namespaced_pod(old.metadata.name, namespace)
        deleted, deleted_at = time.monotonic(), time.time()
        silent = gone = restarted = finished = 0.0
        state = ""
        deadline = deleted + 240
        while not (restarted and finished) and time.monotonic() < deadline:
            if not gone:
                names = {
                    pod.metadata.name
                    for pod in _replica_pods(api, namespace, f"{deployment.name}-0")
                }
                gone = 0.0 if old.metadata.name in names else time.monotonic()
            if not restarted:
                answers = _healthy(urls[0])
                if not answers and not silent:
                    silent = time.monotonic()
                # Its pod gone (its server stopped): an answer now is the new pod's.
                if gone and answers:
                    restarted = time.monotonic()
            if not finished:
                state = graph(root_id)["pipeline"]["state"]
                if state in TERMINAL:
                    finished = time.monotonic()
            time.sleep(0.2)
        assert restarted, f"{urls[0]} is not healthy again\n{_diagnosis(api, namespace)}"
        assert finished, f"the pipeline has not finished: {graph(root_id)}"
        assert state == "RESOLVED", f"{graph(root_id)}\n{_diagnosis(api, namespace)}"
        print(
            f"replica restart (pod deleted -> healthy again): {restarted - deleted:.1f} s "
            f"(not answering after {silent - deleted:.1f} s, its pod gone after "
            f"{gone - deleted:.1f} s)"
        )
        print(f"pipeline wall time (submitted -> RESOLVED): {finished - submitted:.1f} s")

        # While the first replica was away, the driver (its cancel watch polls all along,
        # on the connection its writes use) moved to the other one and wrote through it
        # (that replica's own counters: it never restarted). Payloads go there too when a
        # worker uploads during the outage, which depends on when its pod starts.
        survivor_after = _served(urls[1], key)
        print(
            f"writes answered by {urls[1]}: {survivor_before[0]} before the restart, "
            f"{survivor_after[0]} after; artifact bytes stored: {survivor_before[1]:.0f}, "
            f"{survivor_after[1]:.0f}"
        )
        assert survivor_after[0] > survivor_before[0]

        # In PostgreSQL: every run RESOLVED with its output, each transition once.
        with SqlMetadataStore(postgres_url) as metadata:
            runs = metadata.runs_of_root(root_id)
            transitions = {run.id: metadata.transitions_of(run.id) for run in runs}
            outputs: dict[str, ArtifactRecord] = {
                run.name: metadata.get_artifact(run.output or "") for run in runs
            }
        print(f"runs recorded: {len(runs)}")
        assert {run.name for run in runs} == SEED_RUNS and len(runs) == len(SEED_RUNS)
        by_name = {run.name: run for run in runs}
        for run in runs:
            assert run.state.value == "RESOLVED" and run.output, run
            states = [t.state.value for t in transitions[run.id]]
            assert len(states) == len(set(states)) and states[-1] == "RESOLVED", (run.name, states)
        # The restart happened while the pipeline ran: after featurize was recorded,
        # before the root resolved.
        assert by_name["featurize"].created_at < deleted_at
        (root_resolved,) = [t.at for t in transitions[root_id] if t.state.value == "RESOLVED"]
        assert root_resolved > deleted_at

        # In the bucket, or packed in PostgreSQL when small (sematic.storage.packed): every
        # output's payload, as recorded (its hash verified). This process's AWS_* name moto.
        with stored_payloads(postgres_url, s3_url) as artifacts:
            for artifact in outputs.values():
                verify(artifact.id, artifact.type_description, artifacts.get(artifact.id))
            root_output = outputs["pipeline"]
            value = deserialize(artifacts.get(root_output.id), root_output.type_description, str)
        assert value == SEED_VALUE

        # Neither the driver nor a worker ran twice: the outage was waited out.
        batch = client.BatchV1Api(api)
        selector = f"{ROOT_LABEL}={label_value(root_id)}"
        deadline = time.monotonic() + 60  # the driver exits once the root is recorded
        while True:
            jobs = batch.list_namespaced_job(namespace, label_selector=selector).items
            if all(job.status.succeeded or job.status.failed for job in jobs):
                break
            assert time.monotonic() < deadline, [job.status for job in jobs]
            time.sleep(0.5)
        roles = sorted(job.metadata.labels[ROLE_LABEL] for job in jobs)
        # featurize and train_model, each in a warm pod of its image's pool, through the
        # mailbox of both replicas (the restart included)
        assert roles == ["driver", "warm", "warm"], roles
        for job in jobs:
            assert job.status.succeeded == 1 and not job.status.failed, job.status

        # The restarted replica is healthy and answers the pipeline's graph.
        (new,) = _replica_pods(api, namespace, f"{deployment.name}-0")
        assert new.metadata.name != old.metadata.name
        answer = httpx.get(
            f"{urls[0]}/api/v1/runs/{root_id}/graph",
            headers={"Authorization": f"Bearer {key}"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        seen = {run["name"]: run["state"] for run in answer.json()["runs"]}
        assert seen == {name: "RESOLVED" for name in SEED_RUNS}
        assert answer.json() == watcher.get(f"/runs/{root_id}/graph").json()
        _wait_kubelet_ready(api, namespace, 2)
        for pod in (
            client.CoreV1Api(api)
            .list_namespaced_pod(
                namespace, label_selector="app.kubernetes.io/managed-by=sematic-deploy"
            )
            .items
        ):
            log = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, namespace)
            assert "Traceback" not in log, log
    finally:
        watcher.close()
