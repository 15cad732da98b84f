"""CLI fixtures: a private SEMATIC_HOME, an in-process runner and the installed script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from sematic.cli.main import cli

ROOT = Path(__file__).parents[3]
SCRIPT = Path(sys.executable).parent / "sematic"


def invoke(*args: str) -> Result:
    """Run ``sematic ARGS`` in this process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sematic(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed ``sematic`` console script (environment: this one's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
