"""Setting up the local cluster for CloudResolver (the tests and benchmarks/cloud_resolver.py):
the pipelines packaged into the cluster's registry, the driver's account, the node's label,
and the cluster settings pods need here."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client
from sematic.core.images import ImageMap
from sematic.kubernetes.manifests import ClusterSettings, driver_rbac
from sematic.packaging.builder import build
from sematic.packaging.config import find_config
from tests.harness.cluster import Cluster
from tests.harness.images import push_test_bases
from tests.harness.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[2]
DRIVER_ACCOUNT = "sematic-driver"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
NODE = "localhost"


def build_project(registry: RegistryServer, project: Path, cache: Path) -> ImageMap:
    """tests/kubernetes/cloudpipe.py and the seed example (as seed_pipeline.py) in
    ``project``, packaged on the two test bases; their image map."""
    bases = push_test_bases(registry)
    shutil.copy(ROOT / "tests" / "kubernetes" / "cloudpipe.py", project / "cloudpipe.py")
    shutil.copy(ROOT / "examples" / "cloud" / "pipeline.py", project / "seed_pipeline.py")
    (project / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "tests/cloud"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\n'
        f'[bases]\ndefault = "{bases["default"]}"\ncuda = "{bases["cuda"]}"\n'
    )
    script = project / "cloudpipe.py"
    built = build(script, find_config(script), cache=cache)
    return ImageMap(built.image_map, insecure_registries=(registry.address,))


def prepare_cluster(api: Any) -> None:
    """The seed's node selector matches the node; the driver's account may run Jobs."""
    core: Any = client.CoreV1Api(api)
    core.patch_node(NODE, {"metadata": {"labels": {INSTANCE_TYPE: "g4dn.xlarge"}}})
    rbac: Any = client.RbacAuthorizationV1Api(api)
    create = {
        "ServiceAccount": core.create_namespaced_service_account,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
    }
    for manifest in driver_rbac("default", DRIVER_ACCOUNT):
        try:
            create[manifest["kind"]]("default", manifest)
        except client.ApiException as error:
            if error.status != 409:
                raise
    deadline = time.monotonic() + 30  # the token controller gives the account its secret
    while not core.read_namespaced_service_account(DRIVER_ACCOUNT, "default").secrets:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service account {DRIVER_ACCOUNT} got no token")
        time.sleep(0.2)


def unlabel_node(api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    core.patch_node(NODE, {"metadata": {"labels": {INSTANCE_TYPE: None}}})


def cluster_settings(cluster: Cluster) -> ClusterSettings:
    """Pods on the host network; no kube-proxy here, so the driver reaches the API server
    where the host does."""
    address = urlsplit(cluster.api_url)
    return ClusterSettings(
        host_network=True,
        service_account=DRIVER_ACCOUNT,
        env={"KUBERNETES_SERVICE_HOST": address.hostname or "",
             "KUBERNETES_SERVICE_PORT": str(address.port)},
    )  # fmt: skip
