"""Everything under SEMATIC_HOME is its owner's only (0600 files, 0700 folders)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from sematic.core.files import private_folder, write_private
from tests.harness.ports import free_port

ROOT = Path(__file__).parents[3]

SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path

    os.umask(0o022)  # the usual umask: what is not created private is world-readable
    import httpx
    from sematic import LocalResolver
    from tests.pipelines.local import chatty, mixed

    witness, port = sys.argv[1], sys.argv[2]
    mixed(2, witness).resolve(LocalResolver(progress=False))
    chatty(3).resolve(LocalResolver(progress=False))

    sematic = [str(Path(sys.executable).parent / "sematic")]
    subprocess.run([*sematic, "start", "--port", port], check=True)
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url + "/api/v1/runs").status_code == 200
        # Recorded through the server: it writes the payloads and the logs shipped to it.
        os.environ["SEMATIC_SERVER_URL"] = url
        mixed(3, witness).resolve(LocalResolver(progress=False))
    finally:
        subprocess.run([*sematic, "stop"], check=True)
    """
)


def _shared(home: Path) -> list[str]:
    """What under ``home`` (itself included) its group or others can read or enter."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            found.append(f"{path.relative_to(home.parent)} {stat.filemode(mode)}")
    return found


def test_a_pipeline_and_the_local_server_keep_everything_private_under_umask_022(
    home: Path, tmp_path: Path
) -> None:
    assert not home.exists()
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "w"), str(free_port())],
        cwd=ROOT,
        # Every value a file of its own (none packed in the database): their modes are checked.
        env={**os.environ, "PYTHONPATH": str(ROOT), "SEMATIC_SMALL_PAYLOAD_BYTES": "0"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert (home / "db.sqlite3").exists() and (home / "server.log").exists()
    assert any((home / "logs").iterdir()) and any((home / "artifacts").iterdir())
    shared = _shared(home)
    assert not shared, "readable by others:\n" + "\n".join(shared)


def test_private_folder_makes_every_missing_level_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        private_folder(tmp_path / "a" / "b" / "c")
        write_private(tmp_path / "x" / "f.txt", "secret")
    finally:
        os.umask(old)
    for path in ("a", "a/b", "a/b/c", "x"):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o700, path
    assert stat.S_IMODE((tmp_path / "x" / "f.txt").stat().st_mode) == 0o600
    assert (tmp_path / "x" / "f.txt").read_text() == "secret"
    private_folder(tmp_path / "a")  # existing: left as it is
