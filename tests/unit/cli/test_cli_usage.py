"""`sematic runs` shows what runs' pods reserved, their cost, and (--all) each attempt."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sematic import LocalResolver
from sematic.core.usage import execution_json
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines.local import three_steps
from tests.unit.cli.conftest import invoke

EVICTED = {
    "job": "sematic-aaaa-1", "pod": "sematic-aaaa-1-x1", "node": "node-1",
    "node_type": "g4dn.xlarge", "image": "registry.test/p:default",
    "image_digest": "sha256:" + "1" * 64, "requests": {"cpu": "2", "memory": "4Gi"},
    "limits": {"nvidia.com/gpu": "1", "memory": "4Gi"}, "started_at": 1000.0,
    "finished_at": 1060.0, "ended": "Evicted", "message": "the pod was evicted: low on disk",
    "events": [{"at": 990.0, "reason": "FailedScheduling", "count": 3,
                "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}],
}  # fmt: skip
SUCCEEDED = dict(  # the retry, in a warm pod
    EVICTED, job="sematic-warm-aaaa-2", pod="sematic-warm-aaaa-2-y2", started_at=2000.0,
    finished_at=2120.0, ended="Succeeded", exit_code=0, message=None, events=[], warm=True,
)  # fmt: skip


@pytest.fixture
def pipeline_in_pods(home: Path, tmp_path: Path) -> str:
    """A pipeline whose step_b ran in pods twice (an eviction, then a success), recorded
    as a driver records it."""
    future = three_steps(str(tmp_path / "w"))
    future.resolve(LocalResolver(progress=False))
    with SqlMetadataStore(LocalSettings.from_environment().database_url) as metadata:
        step = next(r for r in metadata.runs_of_root(future.id) if r.name == "step_b")
        ran = dataclasses.replace(step, execution=execution_json([EVICTED, SUCCEEDED]))
        metadata.write(runs=[ran])
    return future.id


def test_a_pipeline_shows_what_its_pods_reserved(pipeline_in_pods: str) -> None:
    row = next(line for line in invoke("runs").stdout.splitlines() if pipeline_in_pods in line)
    # 180 s of containers: 2 cpus, 4 GiB, 1 GPU reserved the whole time.
    assert "360.0 cpu·s, 720.0 GiB·s, 180 GPU·s" in row


def test_a_price_table_turns_it_into_cost(
    pipeline_in_pods: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = {"cpu_hour": 3.6, "memory_gib_hour": 0.36, "gpu_hour": 36.0,
              "node_types": {"g4dn.xlarge": {"gpu_hour": 18.0}}}  # fmt: skip
    monkeypatch.setenv("SEMATIC_PRICES", json.dumps(prices))
    lines = invoke("runs").stdout.splitlines()
    assert lines[0].split()[6] == "cost"
    row = next(line for line in lines if pipeline_in_pods in line)
    # 360 cpu·s at 3.6/h = 0.36; 720 GiB·s at 0.36/h = 0.072; 180 GPU·s at 18/h = 0.9
    assert "1.3320" in row


def test_a_bad_price_table_is_a_clear_error(
    pipeline_in_pods: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_PRICES", '{"gpu_hour": "lots"}')
    result = invoke("runs")
    assert result.exit_code != 0
    assert "$SEMATIC_PRICES.gpu_hour: expected a number >= 0" in result.output


def test_runs_all_shows_each_attempt_of_a_kubernetes_job(pipeline_in_pods: str) -> None:
    text = invoke("runs", "--all").stdout
    assert "Kubernetes job step_b (run " in text
    assert "attempt 1: Job sematic-aaaa-1, pod sematic-aaaa-1-x1, on node-1 (g4dn.xlarge)" in text
    assert "ended Evicted" in text and "the pod was evicted: low on disk" in text
    assert "FailedScheduling (x3): 0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in text
    assert "attempt 2: Job sematic-warm-aaaa-2 (warm pod), pod sematic-warm-aaaa-2-y2" in text
    assert "ended Succeeded (exit code 0)" in text
    assert "requests cpu=2 memory=4Gi; limits memory=4Gi nvidia.com/gpu=1" in text
    assert "sha256:" + "1" * 64 in text
    assert "Kubernetes job step_a" not in text  # it ran in a process: its duration says it
