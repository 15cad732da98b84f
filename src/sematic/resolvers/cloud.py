"""CloudResolver: the pipeline on Kubernetes. ``inline=False`` functions run as Jobs, each
on the image of its ``base_image_tag`` with its resource requirements; inline functions run
in the driver: this process (``detach=False``) or a driver Job (``detach=True``, the
default). Runs and artifacts are recorded through a Sematic server the pods reach too.
"""

from __future__ import annotations

import sys
from typing import Any

from sematic.core.errors import ConfigurationError
from sematic.core.future import Future
from sematic.core.images import ImageMap, called_from, functions_of
from sematic.core.resources import KubernetesRequirements
from sematic.kubernetes.manifests import ClusterSettings
from sematic.kubernetes.warm import WarmPods
from sematic.resolvers.driver import DriverSpec, kubernetes_placement, record_root, start_driver
from sematic.resolvers.settings import (
    LocalSettings,
    built_images,
    cluster_from_environment,
    script_in_images,
)
from sematic.resolvers.tracked import TrackedResolution, parallelism

PREFLIGHT_MODES = ("error", "warn", "off")


class CloudResolver:
    """Resolves on Kubernetes.

    - ``detach``: ``True`` (default) records the root run, submits a driver Job that
      resolves the pipeline in the cluster, prints the run's URL and returns the root run
      id at once; ``False`` drives the pipeline from this process and returns its value.
    - ``images``: the image map (default: ``SEMATIC_IMAGES``, set by ``sematic run
      --build`` and the Bazel rule).
    - ``cluster``: namespace, service account, pull secrets, host network, the server URL
      seen from pods, pod template (default: ``$SEMATIC_CLUSTER``, a JSON object of them).
    - ``kubeconfig``: the cluster (default: ``$KUBECONFIG`` or ~/.kube/config).
    - ``max_parallelism``: worker Jobs at once (default 10).
    - ``driver_requirements``: the driver Job's resources, node selector, account...
    - ``driver_restarts``: how often a killed or evicted driver pod is replaced; the new
      one re-enters the pipeline without re-running completed steps.
    - ``unschedulable_after``: seconds a pod may wait for a node before its run fails.
    - ``check_registry``: check that every image is in its registry before submitting.
    - ``preflight``: before submitting, check that some node of the cluster, as it is, can
      take each ``inline=False`` function's pod (and the driver's): ``"error"`` (default)
      refuses the pipeline naming each function, requirement and node; ``"warn"`` prints
      the same and goes on (a cluster with an autoscaler grows nodes on demand); ``"off"``.
    - ``warm_pods``: ``True`` (default) runs steps that share an image and Kubernetes
      requirements one after another in pods kept up for a while (each step in a fresh
      process); ``False`` gives every step a Job of its own; ``WarmPods(idle_seconds=...,
      gpu_idle_seconds=...)`` says how long an idle pod is kept. A function decorated
      with ``own_pod=True`` (or a call ``.set(own_pod=True)``) always gets its own Job.
    """

    def __init__(
        self,
        *,
        detach: bool = True,
        images: ImageMap | None = None,
        cluster: ClusterSettings | None = None,
        kubeconfig: str | None = None,
        max_parallelism: int | None = None,
        settings: LocalSettings | None = None,
        driver_requirements: KubernetesRequirements | None = None,
        driver_restarts: int = 3,
        unschedulable_after: float = 60.0,
        check_registry: bool = True,
        preflight: str = "error",
        warm_pods: bool | WarmPods = True,
    ) -> None:
        if not isinstance(detach, bool):
            raise ConfigurationError(f"CloudResolver(detach=...) takes a bool, got {detach!r}")
        if not isinstance(driver_restarts, int) or driver_restarts < 0:
            raise ConfigurationError(
                f"CloudResolver(driver_restarts=...) takes an int >= 0, got {driver_restarts!r}"
            )
        if driver_requirements is not None and not isinstance(
            driver_requirements, KubernetesRequirements
        ):
            raise ConfigurationError(
                "CloudResolver(driver_requirements=...) takes a KubernetesRequirements, got "
                f"{driver_requirements!r}"
            )
        if preflight not in PREFLIGHT_MODES:
            raise ConfigurationError(
                f"CloudResolver(preflight=...) takes one of {', '.join(map(repr, PREFLIGHT_MODES))}"
                f", got {preflight!r}"
            )
        if isinstance(warm_pods, bool):
            warm_pods = WarmPods(enabled=warm_pods)
        if not isinstance(warm_pods, WarmPods):
            raise ConfigurationError(
                f"CloudResolver(warm_pods=...) takes True, False or a WarmPods, got {warm_pods!r}"
            )
        self.warm_pods = warm_pods
        self.preflight = preflight
        self.detach = detach
        self.images = images
        self.cluster = cluster or cluster_from_environment()
        self.kubeconfig = kubeconfig
        self.driver_requirements = driver_requirements
        self.driver_restarts = driver_restarts
        self.unschedulable_after = unschedulable_after
        self.check_registry = check_registry
        self.max_parallelism = parallelism("CloudResolver", max_parallelism, default=10)
        self.settings = settings

    def resolve(self, future: Future) -> Any:
        """``detach=False``: the pipeline's value. ``detach=True``: the root run's id, once
        the driver Job is submitted."""
        settings = self.settings or LocalSettings.from_environment()
        images, script = self.checked(future, settings)
        if not self.detach:
            tracked = TrackedResolution(settings, self.max_parallelism, progress=False)
            place = kubernetes_placement(
                images,
                self.cluster,
                settings,
                kubeconfig=self.kubeconfig,
                script=script,
                unschedulable_after=self.unschedulable_after,
                preflight=self.preflight,
                warm=self.warm_pods,
            )
            return tracked.resolve(future, place)
        return self._submit_driver(future, settings, images, script)

    def _submit_driver(
        self, future: Future, settings: LocalSettings, images: ImageMap, script: str | None
    ) -> str:
        """Record the root run, submit the driver Job; return the root run's id."""
        upstream = [name for name, value in future.kwargs.items() if isinstance(value, Future)]
        if upstream:
            raise ConfigurationError(
                f"CloudResolver(detach=True) resolves {future.props.name}() in the cluster from "
                f"recorded values, but its argument(s) {', '.join(upstream)} are futures: call "
                "them inside a pipeline function, or use detach=False"
            )
        # The root run names the driver's image: the pipeline is driven in a Job (the reaper
        # looks for that Job; a rerun from the server starts another on the same image).
        record_root(future, settings, ImageMap(images.images, images.driver))
        from sematic.kubernetes.pipelines import api_client

        start_driver(
            api_client(self.kubeconfig),
            DriverSpec(
                root_id=future.id,
                images=dict(images.images),
                driver_image=images.driver,
                script=script,
                cluster=self.cluster.to_dict(),
                max_parallelism=self.max_parallelism,
                unschedulable_after=self.unschedulable_after,
                preflight=self.preflight,
                warm=self.warm_pods.to_dict(),
            ),
            server_url=self.cluster.server_url or settings.server_url,
            api_key=settings.api_key,
            requirements=self.driver_requirements,
            restarts=self.driver_restarts,
        )
        first = (settings.server_url or "").split(",")[0].strip().rstrip("/")  # checked: set
        url = f"{first}/#/runs/{future.id}"
        print(f"{future.props.name}: submitted to the cluster; follow it at {url}", file=sys.stderr)
        return future.id

    def checked(self, future: Future, settings: LocalSettings) -> tuple[ImageMap, str | None]:
        """Everything that can be checked before a Job is submitted, or a clear error; the
        images and where the user's script is in them."""
        if not isinstance(future, Future):
            raise ConfigurationError(
                f"resolve() takes the Future returned by calling a @sematic.func, got {future!r}"
            )
        images = self.images or built_images()
        if images is None:
            raise ConfigurationError(
                "CloudResolver needs container images and none were built: run the script "
                "with `sematic run --build`, or the Bazel target NAME (NAME_local packages "
                "nothing), or pass images=ImageMap(...)"
            )
        images.check_pipeline(future)
        for function in functions_of(future):
            requirements = function.props.resource_requirements
            refused = self.cluster.refusal(requirements.kubernetes if requirements else None)
            if refused is not None:
                raise ConfigurationError(f"{function.dotted_path} cannot run: {refused}")
        if not settings.server_url:
            raise ConfigurationError(
                "CloudResolver records through a Sematic server its pods can reach: set "
                "server_url (sematic settings set server_url URL, or SEMATIC_SERVER_URL)"
            )
        self._preflight(future)
        if self.check_registry:
            from sematic.packaging.presence import check_images_present

            check_images_present(
                [*images.images.values(), images.driver], insecure=images.insecure_registries
            )
        return images, script_in_images()

    def _preflight(self, future: Future) -> None:
        """Refuse (or warn of) pods no node of the cluster, as it is, can ever take."""
        if self.preflight == "off":
            return
        from sematic.kubernetes.preflight import cluster_nodes, pod_spec_of, why_unschedulable

        pods = {
            function.dotted_path: pod_spec_of(
                function.props.resource_requirements.kubernetes
                if function.props.resource_requirements
                else None,
                self.cluster,
            )
            for function in called_from(future.function)
            if not function.props.inline
        }
        if self.detach:
            pods["the driver Job (driver_requirements)"] = pod_spec_of(
                self.driver_requirements, self.cluster
            )
        if not pods:
            return
        nodes = cluster_nodes(self.kubeconfig)
        if isinstance(nodes, str):
            print(f"warning: pre-flight check of the cluster's nodes skipped: {nodes}",
                  file=sys.stderr)  # fmt: skip
        found = [why_unschedulable(what, spec, None if isinstance(nodes, str) else nodes)
                 for what, spec in pods.items()]  # fmt: skip
        refused = [reason for reason in found if reason is not None]
        if not refused:
            return
        explanation = "\n".join(f"- {reason}" for reason in refused)
        if self.preflight == "error":
            raise ConfigurationError(
                "pre-flight: the cluster's nodes, as they are, cannot take every step; nothing "
                "was submitted (on a cluster with an autoscaler, use "
                f"CloudResolver(preflight='warn') or 'off'):\n{explanation}"
            )
        print(f"warning: pre-flight: the cluster's nodes, as they are, cannot take every "
              f"step (going on: preflight='warn'):\n{explanation}", file=sys.stderr)  # fmt: skip

    def run(self, future: Future) -> Any:
        """Sematic 0.41's spelling of ``resolve``."""
        return self.resolve(future)

    def __repr__(self) -> str:
        return f"CloudResolver(detach={self.detach}, max_parallelism={self.max_parallelism})"
