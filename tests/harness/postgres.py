"""A throwaway PostgreSQL server for the test suite, and a fresh database per test.

``postgres_server`` (session-scoped) starts PostgreSQL with ``initdb`` and ``pg_ctl`` in a
temporary directory, listening on 127.0.0.1 only, on a free port, trusting local
connections; it stops that server (``pg_ctl stop``, by its data directory) and removes the
directory when the session ends. Run as root, the commands run as the ``postgres`` user,
since PostgreSQL refuses to run as root. ``SEMATIC_TEST_POSTGRES_URL`` (an admin URL, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) uses that server instead.

Missing PostgreSQL binaries fail the tests that need them (never skip them): install
PostgreSQL (``apt-get install postgresql``) or set ``SEMATIC_TEST_POSTGRES_URL``.

``postgres_url`` (per test) creates an empty database and drops it afterwards.

Also usable by hand: ``python -m tests.harness.postgres`` prints a URL and serves until Ctrl-C.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.harness.ports import free_port
from tests.harness.processes import required

ENV = "SEMATIC_TEST_POSTGRES_URL"
USER = "postgres"
# Tests need no crash safety; these make CREATE DATABASE and commits much faster.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    """A server reachable with ``url`` (an admin URL on the ``postgres`` database)."""

    url: str

    def database_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        url = make_url(self.url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def create_database(self) -> str:
        """Creates an empty database; returns its name."""
        name = f"sematic_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise PostgresUnavailableError(
            f"PostgreSQL's {name!r} is not on PATH, so the PostgreSQL tests cannot start a "
            f"server. Install PostgreSQL (apt-get install postgresql), or set {ENV} to the "
            "URL of a server to test against."
        )
    return found


def _as_postgres_user() -> tuple[list[str], tuple[int, int] | None]:
    """The command prefix running as the postgres user (only when root) and its uid/gid."""
    if os.geteuid() != 0:
        return [], None
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        raise PostgresUnavailableError(
            f"Running as root, but there is no {USER!r} user to run PostgreSQL as (it refuses "
            f"to run as root). Create it (useradd --system {USER}) or set {ENV}."
        ) from None
    return ["runuser", "-u", USER, "--"], (entry.pw_uid, entry.pw_gid)


def _run(command: list[str], cwd: Path) -> None:
    # A session of its own: Ctrl-C in the terminal reaches the tests, not the server, which
    # is then stopped in order by the fixture.
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, start_new_session=True
    )
    if result.returncode != 0:
        raise PostgresUnavailableError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


@contextmanager
def local_postgres(*, durable: bool = False) -> Iterator[str]:
    """Runs a private PostgreSQL server; yields its admin URL. ``durable`` keeps fsync on."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    prefix, owner = _as_postgres_user()
    base = Path(tempfile.mkdtemp(prefix="sematic-pg-"))
    data, log = base / "data", base / "server.log"
    try:
        if owner is not None:
            os.chown(base, *owner)
        _run(
            [
                *prefix,
                initdb,
                *("-D", str(data), "--auth=trust", f"--username={USER}", "--encoding=UTF8"),
                *("--locale=C", "--no-sync", "--no-instructions"),
            ],
            cwd=base,
        )
        port = _start(prefix, pg_ctl, data, log, base, "" if durable else FAST)
        try:
            yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres"
        finally:
            _stop(prefix, pg_ctl, data, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start(prefix: list[str], pg_ctl: str, data: Path, log: Path, base: Path, extra: str) -> int:
    """Starts the server on a free port (another one if that port got taken meanwhile)."""
    failure: PostgresUnavailableError | None = None
    for _ in range(3):
        port = free_port()
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 {extra}"
        command = [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "30"]
        try:
            _run([*command, "-o", options, "start"], cwd=base)
            return port
        except PostgresUnavailableError as exc:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            failure = PostgresUnavailableError(f"{exc}\nserver log:\n{server_log}")
            if "could not bind" not in server_log and "in use" not in server_log:
                break
    assert failure is not None
    raise failure


def _stop(prefix: list[str], pg_ctl: str, data: Path, base: Path) -> None:
    """Stops the server of ``data`` (by its data directory: pg_ctl signals its own pid)."""
    stop = [*prefix, pg_ctl, "-D", str(data), "-w", "-t", "30", "stop"]
    try:
        _run([*stop, "-m", "fast"], cwd=base)
    except PostgresUnavailableError:
        if (data / "postmaster.pid").exists():
            _run([*stop, "-m", "immediate"], cwd=base)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get(ENV)
    if url:
        yield PostgresServer(url)
        return
    with required(local_postgres(), PostgresUnavailableError) as local_url:
        yield PostgresServer(local_url)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.database_url(name)
    finally:
        postgres_server.drop_database(name)


def _serve() -> None:
    """Prints the URL of a new server and serves until SIGINT or SIGTERM, then cleans up."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Also when started in the background, where SIGINT is ignored by default.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    with local_postgres() as admin_url:
        print(f"{admin_url}\n(Ctrl-C stops the server and deletes its data)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _serve()
