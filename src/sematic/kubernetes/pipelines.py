"""The cluster objects of Sematic's pipelines, found and removed by their root run's label.

Every Job Sematic creates carries ``sematic.dev/root-id`` (the root run, as a label value
and, in full, as an annotation) and a ``sematic.dev/role``: ``driver`` or ``worker``. The
Secret holding a pipeline's API key carries the same label with the role ``api-key``.
``PipelineObjects`` lists and deletes them; ``JobState`` is how a Job looks to the reaper.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from sematic.kubernetes.manifests import (
    KEEP_ANNOTATION,
    MANAGED_BY,
    ROLE_LABEL,
    ROOT_LABEL,
    api_key_secret_manifest,
    label_value,
    owner_reference,
)

_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
KEY_ROLE = "api-key"
IN_CLUSTER = "in-cluster"  # a kubeconfig meaning: the pod's own service account


def api_client(kubeconfig: str | None = None) -> Any:
    """A client of the cluster ``kubeconfig`` names (default: ``$KUBECONFIG`` or
    ~/.kube/config; ``"in-cluster"``: from inside a pod)."""
    from kubernetes import config

    if kubeconfig == IN_CLUSTER:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    return config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call]


class JobStatus(Enum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a driver's: its restarts are exhausted


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    root: str | None  # the root run's label value
    root_id: str | None  # the root run's id (its annotation), when the Job has one
    role: str  # "driver" or "worker"
    status: JobStatus
    keep: bool = False  # its resolver keeps finished Jobs (keep_finished_jobs)


def key_secret_name(root_id: str) -> str:
    """The Secret created for the pipeline ``root_id`` to hold its API key."""
    return f"sematic-key-{label_value(root_id).lower()[:40]}"


class PipelineObjects:
    """Sematic's Jobs and key Secrets in one namespace. Every call gives up after
    ``timeout`` seconds (a command talking to the cluster must not hang on it)."""

    def __init__(self, api: Any, namespace: str, *, timeout: float = 10.0) -> None:
        self._batch: Any = client.BatchV1Api(api)
        self._core: Any = client.CoreV1Api(api)
        self.namespace = namespace
        self._timeout = timeout

    # -- reading -------------------------------------------------------------------------

    def jobs(self) -> list[JobState]:
        listed = self._batch.list_namespaced_job(
            self.namespace, label_selector=_SELECTOR, _request_timeout=self._timeout
        )
        return [_state(job) for job in listed.items]

    def key_secrets(self) -> dict[str, str]:
        """The Secrets created for pipelines: name -> root label."""
        listed = self._core.list_namespaced_secret(
            self.namespace,
            label_selector=f"{_SELECTOR},{ROLE_LABEL}={KEY_ROLE}",
            _request_timeout=self._timeout,
        )
        return {
            s.metadata.name: (s.metadata.labels or {}).get(ROOT_LABEL, "") for s in listed.items
        }

    # -- writing -------------------------------------------------------------------------

    def delete_job(self, name: str) -> None:
        """Delete the Job and its pods now (the pods without their grace period: what
        they run is of a pipeline that is over); a Job already gone is fine."""
        with contextlib.suppress(ApiException):
            self._batch.delete_namespaced_job(
                name,
                self.namespace,
                propagation_policy="Background",
                grace_period_seconds=0,
                _request_timeout=self._timeout,
            )
        with contextlib.suppress(ApiException):
            self._core.delete_collection_namespaced_pod(
                self.namespace,
                label_selector=f"job-name={name}",
                grace_period_seconds=0,
                _request_timeout=self._timeout,
            )

    def delete_secret(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self._core.delete_namespaced_secret(
                name, self.namespace, _request_timeout=self._timeout
            )

    def create_key_secret(self, root_id: str, api_key: str) -> str:
        """The pipeline's key Secret (replaced if it exists: a resumed pipeline); its name."""
        name = key_secret_name(root_id)
        manifest = api_key_secret_manifest(
            name=name,
            namespace=self.namespace,
            api_key=api_key,
            labels={ROOT_LABEL: label_value(root_id), ROLE_LABEL: KEY_ROLE},
        )
        try:
            self._core.create_namespaced_secret(
                self.namespace, manifest, _request_timeout=self._timeout
            )
        except ApiException as error:
            if error.status != 409:
                raise
            self._core.replace_namespaced_secret(
                name, self.namespace, manifest, _request_timeout=self._timeout
            )
        return name

    def give_secret_to(self, name: str, job: Mapping[str, str]) -> None:
        """Make the Job (apiVersion, kind, name, uid) own the Secret: the cluster deletes
        the Secret with it."""
        patch = {"metadata": {"ownerReferences": [owner_reference(job)]}}
        self._core.patch_namespaced_secret(
            name, self.namespace, patch, _request_timeout=self._timeout
        )

    def create_job(self, manifest: dict[str, Any]) -> dict[str, str]:
        """Create the Job; its reference (apiVersion, kind, name, uid) for owners."""
        created = self._batch.create_namespaced_job(
            self.namespace, manifest, _request_timeout=self._timeout
        )
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": str(created.metadata.name),
            "uid": str(created.metadata.uid),
        }


def _state(job: Any) -> JobState:
    meta = job.metadata
    labels = meta.labels or {}
    status = JobStatus.ACTIVE
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.status != "True":
            continue
        if condition.type == "Failed":
            status = JobStatus.FAILED
        elif condition.type == "Complete":
            status = JobStatus.SUCCEEDED
    annotations = meta.annotations or {}
    return JobState(
        name=str(meta.name),
        root=labels.get(ROOT_LABEL),
        root_id=annotations.get(ROOT_LABEL),
        role=labels.get(ROLE_LABEL, "worker"),
        status=status,
        keep=annotations.get(KEEP_ANNOTATION) == "true",
    )
