"""``python -m sematic.server``: ready line, clean exit on signals, bad settings, OpenAPI."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from sematic.server.app import create_app
from sematic.storage.artifacts import InMemoryArtifactStore
from sematic.storage.sql import SqlMetadataStore
from tests.unit.server.conftest import ROOT, Server, server_env, start_server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exits_cleanly_on_signals(tmp_path: Path, signum: int) -> None:
    server = start_server(tmp_path / "home")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    assert server.stop(signum) == 0
    output = server.output.read_text()
    assert output.startswith(f"sematic server listening on {server.url}\n")
    assert "Traceback" not in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/v1/health", timeout=2)


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--database-url", "mysql://x/y"], 1, "Unsupported database URL"),
        (["--api-key-env", "SEMATIC_TEST_UNSET_KEY"], 2, "SEMATIC_TEST_UNSET_KEY"),
    ],
    ids=["bad-database-url", "unset-api-key-variable"],
)
def test_bad_settings_fail_with_a_message(
    tmp_path: Path, arguments: list[str], code: int, message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sematic.server", *arguments],
        capture_output=True,
        text=True,
        env=server_env(tmp_path / "home"),
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == code
    assert message in done.stderr


def _route_paths(tmp_path: Path) -> set[tuple[str, str]]:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'db.sqlite3'}") as store:
        app = create_app(metadata=store, artifacts=InMemoryArtifactStore(), logs_dir=tmp_path)
        paths: set[tuple[str, str]] = set()
        for route in app.routes:
            if not getattr(route, "path", "").startswith("/api/"):
                continue  # the web UI's pages and files
            assert isinstance(route, Route)
            for method in route.methods or ():
                if method != "HEAD":
                    # OpenAPI names a parameter without its converter ({channel:path})
                    paths.add((re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower()))
        return paths


def test_openapi_lists_every_route(server: Server, tmp_path: Path) -> None:
    document = httpx.get(server.url + "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == _route_paths(tmp_path)
    assert len(documented) == 30  # with the four of API keys, the three of the mailbox,
    # a run's children and their summary
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["summary"]
            assert {"200", "201", "202"} & set(operation["responses"])
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path))
    keyed = {
        (path, method)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "security" in op
    }
    # Server mode: everything but the health check and this document needs the key.
    public = {("/api/v1/health", "get"), ("/api/v1/openapi.json", "get")}
    assert keyed == documented - public
