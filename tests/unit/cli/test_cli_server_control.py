"""`sematic start` / `stop`.

Most tests here run them against tests/unit/cli/fake_server.py, a STAND-IN that only answers
the health check, so that the start/stop logic is tested on its own. The last tests run the
real ``python -m sematic.server``: `sematic start` / `stop`, and `sematic server` with its
options, each checked from outside (over HTTP and in /proc). A real server that cannot be
imported fails them, with the import's error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sematic.cli import server_control
from sematic.resolvers.settings import LocalSettings
from tests.harness.payloads import stored_payloads
from tests.harness.ports import free_port
from tests.pipelines.local import three_steps
from tests.unit.cli.conftest import ROOT, SCRIPT, invoke, sematic


def gone(pid: int) -> bool:
    return not server_control._alive(pid)


@pytest.fixture
def fake(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`sematic start` launches the fake server; the test's home."""
    monkeypatch.setattr(server_control, "SERVER_MODULE", "tests.unit.cli.fake_server")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("FAKE_SERVER_MODE", "healthy")
    return home


def _recorded(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "server.json").read_text())
    return data


def test_start_then_stop_with_the_fake_server(fake: Path) -> None:
    port = free_port()
    started = invoke("start", "--port", str(port))
    assert started.exit_code == 0, started.stderr
    assert started.stdout == f"Sematic is running at http://127.0.0.1:{port}\n"
    state = _recorded(fake)
    pid = int(str(state["pid"]))
    assert state["url"] == f"http://127.0.0.1:{port}"
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
    assert "fake server starting" in (fake / "server.log").read_text()
    try:
        again = invoke("start", "--port", str(port))
        assert again.exit_code == 0
        assert again.stdout.startswith(f"Sematic is already running at http://127.0.0.1:{port}")
        assert int(str(_recorded(fake)["pid"])) == pid
    finally:
        stopped = invoke("stop")
    assert stopped.exit_code == 0
    assert stopped.stdout == f"Sematic stopped (pid {pid})\n"
    assert gone(pid)
    assert not (fake / "server.json").exists()
    assert invoke("stop").stdout == "Sematic is not running\n"


def test_a_stale_state_file_is_replaced(fake: Path) -> None:
    fake.mkdir(parents=True)
    (fake / "server.json").write_text(json.dumps({"pid": 2**22 + 12345, "url": "http://x:1"}))
    assert invoke("stop").stdout == "Sematic is not running\n"
    assert not (fake / "server.json").exists()
    (fake / "server.json").write_text("not json")
    port = free_port()
    try:
        assert invoke("start", "--port", str(port)).exit_code == 0
        assert _recorded(fake)["url"] == f"http://127.0.0.1:{port}"
    finally:
        assert invoke("stop").exit_code == 0


def test_stop_never_signals_a_process_that_is_not_the_server(fake: Path) -> None:
    fake.mkdir(parents=True)
    (fake / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": "http://x:1"}))
    assert invoke("stop").stdout == "Sematic is not running\n"  # and this test still runs


def test_a_server_that_exits_at_once_fails_the_start(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SERVER_MODE", "crash")
    begun = time.monotonic()
    result = invoke("start", "--port", str(free_port()))
    assert result.exit_code == 1
    assert time.monotonic() - begun < 10  # noticed without waiting for the timeout
    assert "fake server: cannot start" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: the server did not become healthy")
    assert not (fake / "server.json").exists()


def test_a_server_that_never_gets_healthy_is_killed(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SERVER_MODE", "sick")
    monkeypatch.setattr(server_control, "START_TIMEOUT_S", 1.0)
    spawned: list[int] = []
    spawn = server_control._spawn

    def recording_spawn(args: list[str], log: Path) -> int:
        spawned.append(spawn(args, log))
        return spawned[-1]

    monkeypatch.setattr(server_control, "_spawn", recording_spawn)
    result = invoke("start", "--port", str(free_port()))
    assert result.exit_code == 1
    assert "fake server starting in mode sick" in result.stderr
    assert gone(spawned[0])
    assert not (fake / "server.json").exists()


def test_start_refuses_a_port_someone_else_answers_on(fake: Path) -> None:
    port = free_port()
    assert invoke("start", "--port", str(port)).exit_code == 0
    state = (fake / "server.json").read_text()
    try:
        (fake / "server.json").unlink()  # forget it: now it is "someone else"
        result = invoke("start", "--port", str(port))
        assert result.exit_code == 1
        assert result.stderr == (
            f"error: something else already answers at http://127.0.0.1:{port}; "
            "stop it or choose --port\n"
        )
    finally:
        (fake / "server.json").write_text(state)
        assert invoke("stop").exit_code == 0


def test_server_runs_in_the_foreground_with_its_options(fake: Path) -> None:
    done = sematic_fake("server", "--port", "5999", "--database-url", "sqlite:///x.db")
    assert done.returncode == 3  # the fake server in "crash" mode exits 3: passed on
    assert "'port': 5999" in done.stdout
    # URLs reach the server in its environment, not on its command line (ps shows that).
    assert "'database_url': None" in done.stdout
    assert "SEMATIC_DATABASE_URL=sqlite:///x.db" in done.stdout
    assert "'artifact_url': None" in done.stdout
    assert "'api_key_env': 'SEMATIC_API_KEY'" in done.stdout


def test_server_mode_refuses_to_start_without_an_api_key(fake: Path) -> None:
    done = sematic_fake("server", "--api-key-env", "TEAM_KEY", env={"TEAM_KEY": " "})
    assert done.returncode == 1
    assert "fake server" not in done.stdout  # never started
    assert done.stderr == (
        "error: sematic server needs an API key: put one in $TEAM_KEY (or name another "
        "variable with --api-key-env); for a local server without one, use `sematic start`\n"
    )


def sematic_fake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed script, with the fake server in "crash" mode as its server module."""
    code = (
        "import sys; from sematic.cli import main, server_control; "
        "server_control.SERVER_MODULE = 'tests.unit.cli.fake_server'; "
        "sys.exit(main.cli())"
    )
    environment = {**os.environ, "FAKE_SERVER_MODE": "crash", "SEMATIC_API_KEY": "k"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_real_server_imports() -> None:
    """Checked in a subprocess: importing it here would add ``sematic.server`` to ``sematic``.

    Any failure to import it fails the test that needs it, with the reason."""
    check = [sys.executable, "-c", "import sematic.server.app"]
    done = subprocess.run(check, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"sematic.server.app does not import:\n{done.stderr}"


@pytest.mark.slow
def test_start_and_stop_the_real_server(home: Path, tmp_path: Path) -> None:
    from sematic import LocalResolver

    assert_real_server_imports()
    three_steps(str(tmp_path / "w")).resolve(LocalResolver(progress=False))
    port = free_port()
    started = sematic("start", "--port", str(port))
    assert started.returncode == 0, started.stderr + (home / "server.log").read_text()
    pid = int(str(_recorded(home)["pid"]))
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        assert httpx.get(f"{base}/health").status_code == 200
        assert "three_steps" in sematic("runs").stdout
    finally:
        stopped = sematic("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert gone(pid)


READY = "sematic server listening on "


def _children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_server(pid: int) -> None:
    """SIGKILL ``pid`` if it is still a ``sematic.server`` (not a recycled PID)."""
    try:
        if b"sematic.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass  # gone


@pytest.mark.slow
def test_sematic_server_forwards_its_options_to_the_real_server(home: Path, tmp_path: Path) -> None:
    """`sematic server` with every option but --kubeconfig (which needs a cluster), on a
    free port; each option is seen to take effect from outside the server."""
    from sematic import LocalResolver

    assert_real_server_imports()
    # A team's stores, away from the home's defaults: only --database-url and
    # --artifact-url lead the server to this pipeline's runs and payloads.
    team = LocalSettings(
        home=home,
        database_url=f"sqlite:///{tmp_path / 'team.sqlite3'}",
        artifact_url=str(tmp_path / "team-artifacts"),
    )
    future = three_steps(str(tmp_path / "w"))
    assert future.resolve(LocalResolver(progress=False, settings=team)) is not None
    port, key = free_port(), "team-key-0123456789"
    output = tmp_path / "server.out"
    with output.open("wb") as sink:
        cli = subprocess.Popen(
            [
                *(str(SCRIPT), "server", "--host", "127.0.0.1", "--port", str(port)),
                *("--database-url", team.database_url, "--artifact-url", team.artifact_url),
                *("--api-key-env", "TEAM_KEY", "--allowed-host", "team.example"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TEAM_KEY": key},
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while READY not in output.read_text():
            assert cli.poll() is None, f"sematic server exited:\n{output.read_text()}"
            assert time.monotonic() < deadline, f"no server started:\n{output.read_text()}"
            time.sleep(0.05)
        # The server is `sematic server` itself (exec'd, same PID): no child to orphan.
        assert _children(cli.pid) == []
        server = cli.pid
        servers = [server]
        # --host and --port: where it says it listens, and answers.
        url = f"http://127.0.0.1:{port}"
        assert f"{READY}{url}\n" in output.read_text()
        base = f"{url}/api/v1"
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        # The URLs reached it through its environment, not its command line.
        cmdline = Path(f"/proc/{server}/cmdline").read_bytes().split(b"\0")
        assert b"sematic.server" in cmdline
        assert team.database_url.encode() not in cmdline
        assert team.artifact_url.encode() not in cmdline
        # --api-key-env: reads need the key kept in $TEAM_KEY.
        assert httpx.get(f"{base}/runs", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert httpx.get(f"{base}/runs", headers=wrong, timeout=10).status_code == 401
        keyed = {"Authorization": f"Bearer {key}"}
        # --database-url: the team's runs (the home's own database has none).
        listed = httpx.get(f"{base}/runs", headers=keyed, params={"root_only": "true"}).json()
        assert [run["id"] for run in listed["runs"]] == [future.id]
        output_id = listed["runs"][0]["output"]
        # --artifact-url: the team's payloads.
        payload = httpx.get(f"{base}/artifacts/{output_id}/payload", headers=keyed, timeout=10)
        assert payload.status_code == 200
        with stored_payloads(team.database_url, team.artifact_url) as stored:
            assert payload.content == stored.get(output_id)
        # --allowed-host: that name is answered, others are refused.
        named = httpx.get(f"{base}/runs", headers={**keyed, "Host": "team.example"})
        assert named.status_code == 200
        other = httpx.get(f"{base}/runs", headers={**keyed, "Host": "elsewhere.example"})
        assert other.status_code == 421
        # SIGTERM to `sematic server` (what Kubernetes sends a container's first process)
        # stops the server cleanly: status 0, and nothing listens on the port any more.
        os.kill(cli.pid, signal.SIGTERM)
        assert cli.wait(timeout=30) == 0, output.read_text()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=5)
    finally:
        for pid in servers:
            _kill_server(pid)
        if cli.poll() is None:
            cli.kill()
        cli.wait(timeout=30)
