"""Reruns asked of a server with a cluster: a driver Job on the pipeline's recorded image.

``ClusterRerun`` is a server's ``start_rerun(root_id, from_run_id) -> new root id``. It
reads metadata only: it records the new root run as a copy of the old one (same function,
same input artifact ids: no payload is read, nothing is imported or unpickled) and creates
a driver Job on the image the old root recorded (``container_image``), with the image map
rebuilt from the images its runs recorded. The driver pod loads the inputs, and re-executes
``from_run_id`` and what it influenced, reusing every other recorded output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from sematic.core.engine import State
from sematic.core.errors import ConfigurationError
from sematic.core.images import DEFAULT_TAG
from sematic.core.ports import MetadataStore
from sematic.core.records import RunRecord
from sematic.core.resources import KubernetesRequirements
from sematic.kubernetes.manifests import ClusterSettings
from sematic.resolvers.cancel import end_unfinished
from sematic.resolvers.rerun import check_rerun, record_rerun_root


def recorded_images(runs: Iterable[RunRecord], driver_image: str) -> dict[str, str]:
    """The image map a pipeline ran with, as far as its runs recorded it."""
    images = {DEFAULT_TAG: driver_image}
    for run in runs:
        if not run.inline and run.container_image:
            images[run.base_image_tag or DEFAULT_TAG] = run.container_image
    return images


class ClusterRerun:
    """Starts each rerun as a driver Job. ``server_url`` is the server as pods reach it;
    ``api_key`` its key (pods read it from a Secret); ``kubeconfig`` the cluster (default:
    ``$KUBECONFIG`` or ~/.kube/config; ``"in-cluster"`` for a server in a pod)."""

    def __init__(
        self,
        metadata: MetadataStore,
        cluster: ClusterSettings,
        *,
        server_url: str,
        api_key: str | None,
        kubeconfig: str | None = None,
        driver_requirements: KubernetesRequirements | None = None,
        driver_restarts: int = 3,
        max_parallelism: int = 10,
        unschedulable_after: float = 60.0,
    ) -> None:
        self.metadata = metadata
        self.cluster = cluster
        self.server_url = server_url
        self.api_key = api_key
        self.kubeconfig = kubeconfig
        self.driver_requirements = driver_requirements
        self.driver_restarts = driver_restarts
        self.max_parallelism = max_parallelism
        self.unschedulable_after = unschedulable_after

    def __call__(self, run_id: str, start: str | None) -> str:
        from sematic.kubernetes.pipelines import api_client
        from sematic.resolvers.driver import DriverSpec, start_driver

        root = check_rerun(self.metadata, run_id, start)
        driver_image = root.container_image
        if not driver_image:
            raise ConfigurationError(
                f"{root.name} ({root.id}) was not resolved by a driver Job in the cluster "
                "(CloudResolver(detach=True)), so it has no image to rerun on: rerun it "
                f"from the command line, where its code is: `sematic rerun {root.id}`"
            )
        images = recorded_images(self.metadata.runs_of_root(root.id), driver_image)
        new_id = os.urandom(16).hex()
        record_rerun_root(self.metadata, root, new_id)
        spec = DriverSpec(
            root_id=new_id,
            images=images,
            driver_image=driver_image,
            script=None,  # reruns are of importable modules only (check_rerun)
            cluster=self.cluster.to_dict(),
            max_parallelism=self.max_parallelism,
            unschedulable_after=self.unschedulable_after,
            rerun_of=root.id,
            rerun_from=start,
        )
        try:
            start_driver(
                api_client(self.kubeconfig),
                spec,
                server_url=self.cluster.server_url or self.server_url,
                api_key=self.api_key,
                requirements=self.driver_requirements,
                restarts=self.driver_restarts,
            )
        except Exception as error:
            why = f"cannot start the rerun's driver Job: {type(error).__name__}: {error}"
            error_type = f"{ConfigurationError.__module__}.{ConfigurationError.__qualname__}"
            end_unfinished(self.metadata, new_id, State.FAILED, why, exception_type=error_type)
            raise ConfigurationError(f"{why} (check the server's cluster settings)") from error
        return new_id
