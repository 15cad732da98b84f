"""Reruns read the store the resolvers use: with ``server_url`` set, the server's API.

Each test starts a real ``python -m sematic.server`` over a SEMATIC_HOME of its own and
records a pipeline through it; this process's SEMATIC_HOME (``home``) has no database with
that pipeline in it, so a rerun that opened the local SQL store could not find the run.
"""

from __future__ import annotations

import pytest

from sematic import LocalResolver
from sematic.core.engine import State
from sematic.core.errors import ConfigurationError
from sematic.resolvers.rerun import prepare_rerun, record_failed_rerun
from sematic.resolvers.settings import LocalSettings
from sematic.storage.http import HttpMetadataStore
from sematic.storage.sql import SqlMetadataStore
from tests.pipelines import api
from tests.unit.server.conftest import Server, served

__all__ = ["served"]  # the fixture


def _recorded_on_the_server(n: int) -> str:
    """The root id of ``api.chain(n)``, resolved through the server."""
    future = api.chain(n)
    assert future.resolve(LocalResolver(progress=False)) == n
    return future.id


def _not_in_the_local_database(settings: LocalSettings, run_id: str) -> bool:
    with SqlMetadataStore(settings.database_url) as local:
        return all(run.id != run_id for run in local.list_runs(root_only=True))


def test_a_rerun_reads_a_pipeline_recorded_only_on_the_server(served: Server) -> None:
    root_id = _recorded_on_the_server(3)
    settings = LocalSettings.from_environment()
    assert settings.server_url == served.url
    assert _not_in_the_local_database(settings, root_id)

    future, start = prepare_rerun(settings, root_id)

    assert start == root_id
    assert future.kwargs == {"n": 3}
    assert future.resolve(LocalResolver(progress=False, rerun_from=start)) == 3
    with HttpMetadataStore(served.url) as remote:
        assert remote.get_run(future.id).state == State.RESOLVED.value


def test_a_rerun_checks_its_start_against_the_server(served: Server) -> None:
    root_id = _recorded_on_the_server(2)
    other_id = _recorded_on_the_server(1)
    settings = LocalSettings.from_environment()

    with pytest.raises(ConfigurationError, match=f"not part of the pipeline {root_id}"):
        prepare_rerun(settings, root_id, other_id)


def test_a_rerun_that_cannot_start_is_recorded_failed_on_the_server(served: Server) -> None:
    root_id = _recorded_on_the_server(2)
    settings = LocalSettings.from_environment()
    new_root = "f" * 32

    record_failed_rerun(settings, root_id, new_root, ImportError("no module named gone"))

    with HttpMetadataStore(served.url) as remote:
        failed = remote.get_run(new_root)
    assert failed.state == State.FAILED.value
    assert failed.exception_type == "builtins.ImportError"
    assert failed.exception_message is not None
    assert "no module named gone" in failed.exception_message
    assert _not_in_the_local_database(settings, new_root)
