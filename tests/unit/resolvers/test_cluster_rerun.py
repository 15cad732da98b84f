"""A server's rerun in the cluster, the metadata half: the new root copies the old one's
input artifact ids (no payload read), the image map comes from what the runs recorded,
and a pipeline that never ran in a driver Job is refused. The cluster half:
tests/kubernetes/test_secrets_and_reaper.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError
from sematic.core.records import ArtifactRecord, RunRecord
from sematic.kubernetes.manifests import ClusterSettings
from sematic.resolvers.cluster_rerun import ClusterRerun, recorded_images
from sematic.resolvers.rerun import record_rerun_root
from sematic.storage.sql import SqlMetadataStore

OLD = "a" * 32


def _run(run_id: str, **changes: object) -> RunRecord:
    values: dict[str, object] = {
        "id": run_id, "root_id": OLD, "parent_id": None if run_id == OLD else OLD,
        "name": "pipeline", "function_path": "cloudpipe.parity_pipeline", "state": "RESOLVED",
        "created_at": 1.0, "updated_at": 2.0, "started_at": 1.5, "ended_at": 2.0,
        **changes,
    }  # fmt: skip
    return RunRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        yield store
    finally:
        store.close()


def test_the_image_map_is_what_the_runs_recorded() -> None:
    runs = [
        _run(OLD, container_image="r/p@sha256:d"),
        _run("b" * 32, inline=False, container_image="r/p@sha256:d"),
        _run("c" * 32, inline=False, base_image_tag="cuda", container_image="r/p@sha256:c"),
        _run("d" * 32, inline=True, container_image="r/p@sha256:d"),
    ]
    assert recorded_images(runs, "r/p@sha256:d") == {
        "default": "r/p@sha256:d", "cuda": "r/p@sha256:c"
    }  # fmt: skip


def test_the_new_root_copies_the_inputs_and_starts_afresh(metadata: SqlMetadataStore) -> None:
    old = _run(OLD, inputs={"n": "f" * 64}, output="e" * 64, container_image="r/p@sha256:d",
               exception_message="earlier")  # fmt: skip
    artifacts = [ArtifactRecord(i * 64, {"type_key": "int"}, 1, 1, 1.0) for i in "fe"]
    metadata.write(runs=[old], artifacts=artifacts)
    new = record_rerun_root(metadata, old, "9" * 32)
    stored = metadata.get_run("9" * 32)
    assert stored == new and stored.root_id == "9" * 32 and stored.state == "CREATED"
    assert stored.inputs == {"n": "f" * 64} and stored.output is None
    assert stored.container_image == "r/p@sha256:d" and stored.exception_message is None
    assert stored.started_at is None and stored.ended_at is None
    assert [(e.source_run_id, e.parameter, e.artifact_id) for e in metadata.edges_of_root(
        "9" * 32)] == [(None, "n", "f" * 64)]  # fmt: skip
    assert metadata.get_run(OLD) == old


def test_a_pipeline_not_driven_in_the_cluster_is_refused(metadata: SqlMetadataStore) -> None:
    metadata.write(runs=[_run(OLD)])  # resolved from a laptop: no driver image
    rerun = ClusterRerun(metadata, ClusterSettings(), server_url="http://s", api_key=None)
    with pytest.raises(ConfigurationError, match=f"sematic rerun {OLD}"):
        rerun(OLD, None)
    assert len(metadata.list_runs(root_only=True)) == 1  # nothing recorded
