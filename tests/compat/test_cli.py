"""Sematic 0.41's commands and flags: each works, or says what replaced it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.conftest import invoke, sematic

SCRIPT = """
import logging
import sys

logging.getLogger("user").debug("debug line")
logging.getLogger("user").info("info line")
print("args", sys.argv[1:])
"""


def test_migrate_creates_or_upgrades_the_database(home: Path) -> None:
    done = invoke("migrate")
    assert done.exit_code == 0, done.output
    assert "up to date" in done.output
    assert (home / "db.sqlite3").is_file()
    assert invoke("migrate").exit_code == 0  # again: nothing to do


def test_clean_takes_0_41_flags(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(home / "no-such-kubeconfig"))  # no cluster here
    done = invoke(
        "clean", "--orphaned-runs", "--stale-pipeline-runs", "--zombie-pipeline-runs",
        "--orphaned-jobs", "--orphaned-resources", "--force",
    )  # fmt: skip
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize(
    ("args", "replacement"),
    [
        (["server-settings", "show"], "sematic server --help"),
        (["github", "check-commit", "abc"], "CI"),
        (["advanced", "dump-log-storage", "x"], "sematic logs"),
    ],
)
def test_replaced_commands_say_what_replaced_them(args: list[str], replacement: str) -> None:
    done = invoke(*args)
    assert done.exit_code == 1
    assert "Sematic 0.41's" in done.output and replacement in done.output


def test_run_takes_0_41_short_flags(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = sematic("run", "-l", "INFO", str(script), "--x", "1")
    assert done.returncode == 0, done.stderr
    assert "args ['--x', '1']" in done.stdout
    assert "info line" in done.stderr and "debug line" not in done.stderr
    refused = sematic("run", "-n", str(script))
    assert refused.returncode == 1
    assert "--no-cache only applies with --build" in refused.stderr
