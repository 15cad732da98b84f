"""A team server with a webhook notifies once per state change written through it; a
resolver writing through the server does not notify too, even with a webhook of its own."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

import sematic
from sematic.core import variables
from sematic.core.engine import State
from sematic.resolvers.local import LocalResolver
from sematic.server.__main__ import main
from sematic.storage.sql import SqlMetadataStore
from tests.harness.webhooks import webhook_receiver
from tests.pipelines import local
from tests.unit.server.conftest import server_env, start_server

ALL_STATES = ",".join(state.value for state in State)


def test_the_server_notifies_each_transition_once(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (variables.WEBHOOK_STATES, variables.WEBHOOK_RUNS):
        monkeypatch.delenv(variable, raising=False)
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    with webhook_receiver() as receiver:
        env = server_env(
            server_home,
            **{
                variables.WEBHOOK_URL: receiver.url,
                variables.WEBHOOK_STATES: ALL_STATES,
                variables.WEBHOOK_RUNS: "all",
            },
        )
        server = start_server(server_home, env=env)
        try:
            # The resolver writes through the server, and has the same webhook configured:
            # only the server may send (no duplicates).
            monkeypatch.setenv(variables.SERVER_URL, server.url)
            monkeypatch.setenv(variables.WEBHOOK_URL, receiver.url)
            monkeypatch.setenv(variables.WEBHOOK_STATES, ALL_STATES)
            monkeypatch.setenv(variables.WEBHOOK_RUNS, "all")
            failing = local.fails_inside(3)
            with pytest.raises(sematic.PipelineFailedError):
                failing.resolve(LocalResolver(progress=False))
            with SqlMetadataStore(f"sqlite:///{server_home / 'db.sqlite3'}") as recorded:
                expected = Counter(
                    (run.id, transition.state.value)
                    for run in recorded.runs_of_root(failing.id)
                    for transition in recorded.transitions_of(run.id)
                )
            assert expected[(failing.id, "NESTED_FAILED")] == 1
            receiver.wait_for(sum(expected.values()))
            time.sleep(0.5)  # a duplicate, if any, would arrive by now
        finally:
            assert server.stop() == 0
        posts = receiver.posts
        got = Counter((post["sematic"]["run_id"], post["sematic"]["state"]) for post in posts)
        assert got == expected
        root = next(post for post in posts if post["sematic"]["state"] == "NESTED_FAILED")
        assert root["sematic"]["root_id"] == failing.id
        assert root["text"].startswith("\u274c Pipeline fails_inside RAN -> NESTED_FAILED")


def test_a_bad_webhook_setting_stops_the_server_with_its_name(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variables.WEBHOOK_URL, "https://hooks.example.com/secret-token")
    monkeypatch.setenv(variables.WEBHOOK_STATES, "FAILED,DONE")
    assert main(["--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: webhook_states takes comma-separated run states")
    assert f"environment variable {variables.WEBHOOK_STATES}" in error
    assert "secret-token" not in error
