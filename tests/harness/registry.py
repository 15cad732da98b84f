"""Throwaway OCI registries for the image-builder tests.

``registry`` and ``auth_registry`` (session-scoped) each start Debian's ``docker-registry``
(the CNCF distribution registry, 2.8) with filesystem storage in a temporary directory,
listening on 127.0.0.1 only, on a free port, over plain HTTP. ``auth_registry`` requires
HTTP basic authentication (an htpasswd file with bcrypt hashes): user ``sematic`` with a
random password; anonymous requests get 401. Both are stopped by their PID when the session
ends, and their directories removed.

The registry's own log (level warn, no access log) goes to ``registry.log`` in the
temporary directory, not to the test output.

A missing ``docker-registry`` or ``htpasswd`` fails the tests that need them (never skips
them): run ``scripts/setup``.

Also usable by hand: ``python -m tests.harness.registry [--auth] [--port N] [--bases]`` prints the
address and serves until Ctrl-C (``scripts/registry`` does that with the bases on 5000).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port
from tests.harness.processes import required, stop_process

USERNAME = "sematic"
READY_TIMEOUT = 30.0


class RegistryUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class RegistryServer:
    """A running registry.

    ``address`` is ``127.0.0.1:PORT`` (what image references start with), ``url`` is
    ``http://127.0.0.1:PORT``; ``username`` and ``password`` are None when no
    authentication is required; ``storage`` is the registry's filesystem storage root.
    """

    address: str
    url: str
    username: str | None
    password: str | None
    storage: Path


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RegistryUnavailableError(
            f"{name!r} is not on PATH, so the packaging tests cannot start a registry. Run "
            "scripts/setup (as root it installs docker-registry, apache2-utils and the other "
            "container tools)."
        )
    return found


def _htpasswd(path: Path, username: str, password: str) -> None:
    """Writes an htpasswd file with one bcrypt entry (``htpasswd -Bbn``)."""
    done = subprocess.run(
        [_binary("htpasswd"), "-Bbn", username, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RegistryUnavailableError(f"htpasswd failed ({done.returncode}): {done.stderr}")
    path.write_text(done.stdout.strip() + "\n")


def _config(base: Path, port: int, htpasswd: Path | None) -> str:
    """The registry's configuration (YAML; written as JSON, which YAML reads)."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(base / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            # Fixed per server: without one the registry logs a warning and makes its own.
            "secret": secrets.token_hex(16),
        },
        "health": {"storagedriver": {"enabled": False}},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "sematic-test", "path": str(htpasswd)}}
    return json.dumps(config, indent=2)


def _wait_ready(process: subprocess.Popen[bytes], url: str, expected: int, log: Path) -> bool:
    """Polls ``GET /v2/`` until it answers ``expected``; False if the process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                status = client.get(f"{url}/v2/").status_code
            except httpx.TransportError:
                status = None
            if status == expected:
                return True
            if status is not None:
                raise RegistryUnavailableError(
                    f"GET {url}/v2/ answered {status}, expected {expected}; registry log:\n"
                    + log.read_text(errors="replace")
                )
            time.sleep(0.05)
    raise RegistryUnavailableError(
        f"the registry at {url} did not answer within {READY_TIMEOUT:.0f} s; registry log:\n"
        + log.read_text(errors="replace")
    )


@contextmanager
def local_registry(*, auth: bool = False, port: int | None = None) -> Iterator[RegistryServer]:
    """Runs a private registry (with basic authentication when ``auth``) on ``port``, or
    a free port; yields it."""
    binary = _binary("docker-registry")
    base = Path(tempfile.mkdtemp(prefix="sematic-registry-"))
    try:
        username = password = None
        htpasswd = None
        if auth:
            username, password = USERNAME, secrets.token_urlsafe(18)
            htpasswd = base / "htpasswd"
            _htpasswd(htpasswd, username, password)
        (base / "storage").mkdir()
        log = base / "registry.log"
        failure = ""
        for _ in range(3 if port is None else 1):
            chosen = free_port() if port is None else port
            config = base / "config.yml"
            config.write_text(_config(base, chosen, htpasswd))
            url = f"http://127.0.0.1:{chosen}"
            with log.open("ab") as output:
                process = subprocess.Popen(
                    [binary, "serve", str(config)],
                    cwd=base,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # Ctrl-C in the terminal reaches the tests, not the registry, which is
                    # then stopped in order by the fixture.
                    start_new_session=True,
                )
            try:
                ready = _wait_ready(process, url, 401 if auth else 200, log)
            except BaseException:
                stop_process(process)
                raise
            if not ready:
                failure = log.read_text(errors="replace")
                if "address already in use" in failure and port is None:
                    continue  # another process took the port meanwhile: try another one
                raise RegistryUnavailableError(
                    f"docker-registry exited ({process.returncode}); its log:\n{failure}"
                )
            try:
                yield RegistryServer(
                    address=f"127.0.0.1:{chosen}",
                    url=url,
                    username=username,
                    password=password,
                    storage=base / "storage",
                )
            finally:
                stop_process(process)
            return
        raise RegistryUnavailableError(f"no free port for the registry; its log:\n{failure}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _fixture(auth: bool) -> Iterator[RegistryServer]:
    with required(local_registry(auth=auth), RegistryUnavailableError) as server:
        yield server


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """A registry anyone may push to and pull from (``username``/``password`` are None)."""
    yield from _fixture(auth=False)


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[RegistryServer]:
    """A registry requiring basic authentication as ``username``/``password``."""
    yield from _fixture(auth=True)


def _serve(auth: bool, port: int | None, bases: bool) -> None:
    """Prints the address of a new registry and serves until SIGINT or SIGTERM; with
    ``bases``, first pushes the test bases (``base/python:default`` and ``:cuda``)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    with local_registry(auth=auth, port=port) as server:
        if bases:
            from tests.harness.images import push_test_bases

            for image in push_test_bases(server).values():
                print(f"pushed {image}", flush=True)
        credentials = f" (user {server.username}, password {server.password})" if auth else ""
        print(f"{server.address}{credentials}\n(Ctrl-C stops it and deletes its data)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A throwaway registry on 127.0.0.1.")
    parser.add_argument("--auth", action="store_true", help="require basic authentication")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--bases", action="store_true", help="push the two test bases")
    arguments = parser.parse_args()
    _serve(arguments.auth, arguments.port, arguments.bases)
