"""``sematic start``, ``stop`` and ``server``: the web server, in the background or not.

The background server is remembered in ``$SEMATIC_HOME/server.json`` (its PID and URL);
its output goes to ``$SEMATIC_HOME/server.log``. It is only ever signalled by that PID.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from sematic.cli.errors import CliError
from sematic.core import variables
from sematic.core.files import FILE_MODE, private_folder, write_private

SERVER_MODULE = "sematic.server"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
HEALTH_PATH = "/api/v1/health"
LOG_TAIL_LINES = 20

_host = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface the server listens on."
)
_port = click.option(
    "--port", default=5001, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
_allowed_host = click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name the server is reached by, besides 127.0.0.1, localhost, [::1] and "
    "--host (repeatable). Requests addressed to other names are refused.",
)


def _host_args(allowed_hosts: tuple[str, ...]) -> list[str]:
    return [arg for name in allowed_hosts for arg in ("--allowed-host", name)]


@dataclass(frozen=True)
class _Recorded:
    pid: int
    url: str


def _home() -> Path:
    from sematic.resolvers.settings import LocalSettings

    return LocalSettings.from_environment().home


def _read_state(path: Path) -> _Recorded | None:
    try:
        data = json.loads(path.read_text())
        return _Recorded(pid=int(data["pid"]), url=str(data["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child of ours is reaped and counts as gone)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: the usual case
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int) -> bool:
    """Guards against a recycled PID: on Linux, the process must be ``-m sematic.server``."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return _alive(pid)
    try:
        return SERVER_MODULE.encode() in cmdline.read_bytes()
    except OSError:
        return False


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + HEALTH_PATH, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _spawn(args: list[str], log: Path) -> int:
    """Start ``args`` in a session of its own, output appended to ``log``; return its PID.

    ``posix_spawn`` rather than ``Popen``: nothing here waits for the server, and a
    ``Popen`` object of a process still running warns when it is collected.
    """
    private_folder(log.parent)
    out = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    return os.posix_spawn(
        args[0],
        args,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), out, FILE_MODE),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``; SIGKILL it if it is still there after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.02)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@click.command()
@_host
@_port
@_allowed_host
def start(host: str, port: int, allowed_hosts: tuple[str, ...]) -> None:
    """Start the Sematic server in the background and wait until it answers.

    It has no API key: it answers only requests addressed to this machine's own names
    (see --allowed-host) and sent from its own pages or from programs, and runs reruns
    asked from its web UI as processes of yours.
    """
    home = _home()
    state, log = home / "server.json", home / "server.log"
    recorded = _read_state(state)
    if recorded is not None and _alive(recorded.pid) and _healthy(recorded.url):
        click.echo(f"Sematic is already running at {recorded.url} (pid {recorded.pid})")
        return
    state.unlink(missing_ok=True)  # stale: its process is gone or does not answer
    url = f"http://{host}:{port}"
    if _healthy(url):
        raise CliError(f"something else already answers at {url}; stop it or choose --port")
    args = [sys.executable, "-m", SERVER_MODULE, "--host", host, "--port", str(port)]
    pid = _spawn(args + _host_args(allowed_hosts), log)
    write_private(state, json.dumps({"pid": pid, "url": url, "started_at": time.time()}))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _healthy(url) and _alive(pid):
            click.echo(f"Sematic is running at {url}")
            return
        if not _alive(pid):
            break
        time.sleep(0.1)
    _terminate(pid, STOP_TIMEOUT_S)
    state.unlink(missing_ok=True)
    tail = _tail(log, LOG_TAIL_LINES)
    if tail:
        click.echo(f"--- last lines of {log} ---\n{tail}", err=True)
    raise CliError(f"the server did not become healthy at {url}{HEALTH_PATH}; see {log}")


@click.command()
def stop() -> None:
    """Stop the server started by `sematic start` (by its recorded PID)."""
    state = _home() / "server.json"
    recorded = _read_state(state)
    if recorded is None or not _alive(recorded.pid) or not _is_our_server(recorded.pid):
        state.unlink(missing_ok=True)
        click.echo("Sematic is not running")
        return
    _terminate(recorded.pid, STOP_TIMEOUT_S)
    state.unlink(missing_ok=True)
    click.echo(f"Sematic stopped (pid {recorded.pid})")


@click.command()
@_host
@_port
@_allowed_host
@click.option(
    "--database-url",
    default=None,
    help="Database URL (default: $SEMATIC_DATABASE_URL, else the settings file). "
    "A password here shows in the process list: prefer those two.",
)
@click.option(
    "--artifact-url", default=None, help="Artifact store URL (default: as for the database)."
)
@click.option(
    "--api-key-env",
    default=variables.API_KEY,
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the API key that writes and artifact reads require.",
)
@click.option(
    "--kubeconfig",
    default=None,
    metavar="PATH",
    help="The cluster pipelines run in (a kubeconfig, or 'in-cluster' for a server in a "
    "pod; settings from $SEMATIC_CLUSTER): reruns become driver Jobs there, and pipelines "
    "whose driver is gone are reaped every 20 s.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line on stderr (server and access records), for a log "
    "collector.",
)
def server(
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    database_url: str | None,
    artifact_url: str | None,
    api_key_env: str,
    kubeconfig: str | None,
    log_format: str,
) -> None:
    """Run the Sematic server in the foreground (Ctrl-C stops it).

    This is server mode, for a team: every request but the health check needs the API key
    (the web UI asks for it). It runs no pipeline code: with --kubeconfig, reruns are
    driver Jobs in that cluster; without, they are started with `sematic rerun` where the
    code is. For a keyless server on this machine, use `sematic start`.
    """
    if not os.environ.get(api_key_env, "").strip():
        raise CliError(
            f"sematic server needs an API key: put one in ${api_key_env} (or name another "
            "variable with --api-key-env); for a local server without one, use `sematic start`"
        )
    args = [sys.executable, "-m", SERVER_MODULE, "--host", host, "--port", str(port)]
    args += ["--api-key-env", api_key_env, *_host_args(allowed_hosts)]
    if kubeconfig:
        args += ["--kubeconfig", kubeconfig]
    if log_format != "text":
        args += ["--log-format", log_format]
    from sematic.resolvers.settings import ENVIRONMENT, password_on_command_line

    # URLs reach the server through its environment, never its command line.
    env = dict(os.environ)
    for key, option, url in (
        ("database_url", "--database-url", database_url),
        ("artifact_url", "--artifact-url", artifact_url),
    ):
        if url:
            env[ENVIRONMENT[key]] = url
            warning = password_on_command_line(option, url)
            if warning:
                click.echo(warning, err=True)
    # The server replaces this process (same PID): the signals Kubernetes or a shell send to
    # `sematic server` reach the server itself, which shuts down gracefully on SIGTERM.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)
