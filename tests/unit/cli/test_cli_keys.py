"""`sematic keys`: managing the API keys of a real team server (a keyed server process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port
from tests.unit.cli.conftest import invoke
from tests.unit.server.conftest import Server, server_env, start_server

ADMIN_KEY = "cli-admin-key"


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("cli-keys") / "home"
    home.mkdir()
    env = server_env(home, ADMIN_KEY=ADMIN_KEY)
    server = start_server(home, "--api-key-env", "ADMIN_KEY", env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def configured(home: Path, team_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("SEMATIC_SERVER_URL", team_server.url)
    monkeypatch.setenv("SEMATIC_API_KEY", ADMIN_KEY)
    return team_server


def _created(*args: str) -> tuple[str, str]:
    """(key id, key) printed by ``sematic keys create|rotate ARGS``."""
    result = invoke("keys", *args)
    assert result.exit_code == 0, result.stderr
    heading, key = result.stdout.strip().splitlines()
    assert "shown only this once" in result.stderr
    return heading.split()[2].rstrip(":"), key


def _reads(server: Server, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(server.url + "/api/v1/runs", headers=headers, timeout=10).status_code


def test_create_list_rotate_revoke(configured: Server) -> None:
    key_id, key = _created("create", "alice", "--name", "ci", "--role", "read")
    assert _reads(configured, key) == 200

    listed = invoke("keys", "list")
    assert listed.exit_code == 0
    row = next(line.split() for line in listed.stdout.splitlines() if key_id in line)
    assert row[:4] == [key_id, "alice", "ci", "read"]
    assert row[-1] == "-"  # not revoked
    assert key not in listed.stdout

    new_id, new_key = _created("rotate", key_id)
    assert new_id != key_id and new_key != key
    assert _reads(configured, key) == _reads(configured, new_key) == 200

    revoked = invoke("keys", "revoke", key_id)
    assert revoked.exit_code == 0
    assert f"Revoked API key {key_id} of alice" in revoked.stdout
    assert _reads(configured, key) == 401
    assert _reads(configured, new_key) == 200


def test_the_default_role_is_write(configured: Server) -> None:
    key_id, _ = _created("create", "bob")
    listed = invoke("keys", "list").stdout
    row = next(line.split() for line in listed.splitlines() if key_id in line)
    assert row[:2] == [key_id, "bob"] and "write" in row


def test_a_key_that_is_not_an_admins_is_told_so(
    configured: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, writer = _created("create", "carol", "--role", "write")
    monkeypatch.setenv("SEMATIC_API_KEY", writer)
    result = invoke("keys", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "needs an admin key" in result.stderr and "carol" in result.stderr


def test_clear_errors(configured: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = invoke("keys", "revoke", "f" * 32)
    assert unknown.exit_code == 1 and "No API key with id" in unknown.stderr
    bad = invoke("keys", "rotate", "nope")
    assert bad.exit_code == 1 and "not an API key id" in bad.stderr
    role = invoke("keys", "create", "dave", "--role", "root")
    assert role.exit_code == 2 and "root" in role.stderr

    monkeypatch.setenv("SEMATIC_API_KEY", "wrong")
    wrong = invoke("keys", "list")
    assert wrong.exit_code == 1 and "rejected the API key" in wrong.stderr

    monkeypatch.setenv("SEMATIC_SERVER_URL", f"http://127.0.0.1:{free_port()}")
    down = invoke("keys", "list")
    assert down.exit_code == 1 and "cannot be reached" in down.stderr

    monkeypatch.delenv("SEMATIC_SERVER_URL")
    unset = invoke("keys", "list")
    assert unset.exit_code == 1 and "no server_url is set" in unset.stderr
