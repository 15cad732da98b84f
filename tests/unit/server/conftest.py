"""Server fixtures: pipelines recorded in a private SEMATIC_HOME, and real servers over it.

A server is ``python -m sematic.server --port 0`` in a subprocess; its URL is read from
the line it prints when ready. It is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import sematic
from sematic.resolvers.local import LocalResolver
from sematic.resolvers.settings import LocalSettings
from tests.pipelines import local

ROOT = Path(__file__).resolve().parents[3]
READY = "sematic server listening on "
TAG = "nightly"


@dataclass(frozen=True)
class Recorded:
    """A SEMATIC_HOME holding three pipelines: ``mixed`` (tagged), ``three_steps``, a failure."""

    home: Path
    mixed_root: str
    steps_root: str
    failed_root: str

    @property
    def settings(self) -> LocalSettings:
        return LocalSettings(
            home=self.home,
            database_url=f"sqlite:///{self.home / 'db.sqlite3'}",
            artifact_url=str(self.home / "artifacts"),
        )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    output: Path

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signals the server by its PID; kills it if it has not exited within ``timeout``."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SEMATIC_DATABASE_URL", "SEMATIC_ARTIFACT_URL")
    }
    return {**env, "SEMATIC_HOME": str(home), "PYTHONPATH": str(ROOT / "src"), **extra}


def start_server(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    command: Sequence[str] = ("-m", "sematic.server"),
) -> Server:
    """``python COMMAND --port 0 ARGS``; ``command`` may wrap the server (``-c CODE ...``)."""
    output = home.parent / f"server-{time.monotonic_ns()}.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, *command, "--port", "0", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env or server_env(home),
            cwd=ROOT,
        )
    server = Server(url="", process=process, output=output)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if line.startswith(READY):
                server.url = line.removeprefix(READY).strip()
        if server.url:
            break
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {output.read_text()}")
        time.sleep(0.02)
    else:
        server.stop(signal.SIGKILL)
        raise AssertionError(f"the server did not start: {output.read_text()}")
    assert httpx.get(server.url + "/api/v1/health", timeout=5).status_code == 200
    return server


@pytest.fixture
def served(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A keyless server over a home of its own; this process's resolvers write through it."""
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    server = start_server(server_home)
    monkeypatch.setenv("SEMATIC_SERVER_URL", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    base = tmp_path_factory.mktemp("server")
    home = base / "home"
    witness = str(base / "witness")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMATIC_HOME", str(home))
        patch.delenv("SEMATIC_DATABASE_URL", raising=False)
        patch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
        resolver = LocalResolver(progress=False, max_parallelism=2)
        mixed = local.mixed(2, witness).set(tags=[TAG])
        mixed.resolve(resolver)
        steps = local.three_steps(witness)
        steps.resolve(LocalResolver(progress=False))
        failing = local.fails_inside(1)
        with pytest.raises(sematic.PipelineFailedError):
            failing.resolve(LocalResolver(progress=False))
    return Recorded(home=home, mixed_root=mixed.id, steps_root=steps.id, failed_root=failing.id)


@pytest.fixture(scope="session")
def server(recorded: Recorded) -> Iterator[Server]:
    running = start_server(recorded.home)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client
