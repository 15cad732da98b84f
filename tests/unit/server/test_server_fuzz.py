"""Schemathesis over the live OpenAPI document of real server processes: 0 answers >= 500.

``st run`` reads ``/api/v1/openapi.json`` from the running server and tests every
operation (except the endless event stream) in all its phases: the document's examples,
coverage (boundary values, and values just past them), fuzzing (valid and invalid data)
and stateful sequences (ids returned by one call fed to the next); with a fixed seed and a
bounded number of examples per operation. Once against a keyless server, once against a
server with an API key (with the key). Every request and answer is counted from the HAR
file it writes; the figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.server.conftest import ROOT, Server, server_env, start_server

KEY = "fuzz-test-key"
EXAMPLES = 15  # per operation and phase: ~1,000 requests a server, under a minute
SEED = 20261202
ST = Path(sys.executable).with_name("st")


def _fuzz(server: Server, folder: Path, *headers: str) -> tuple[Counter[int], list[str]]:
    """(how many answers of each status, the requests answered >= 500)."""
    har = folder / "fuzz.har"
    command = [
        str(ST), "run", f"{server.url}/api/v1/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", str(EXAMPLES),
        "--seed", str(SEED),
        "--exclude-path", "/api/v1/events",  # never ends by design: see test_server_inputs
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "har", "--report-har-path", str(har),
        "--no-color",
        *(part for header in headers for part in ("--header", header)),
    ]  # fmt: skip
    env = {
        **server_env(folder),
        "SCHEMATHESIS_HOOKS": "tests.unit.server.fuzz_hooks",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
    }
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert har.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    errors = [
        f"{entry['request']['method']} {entry['request']['url']} -> {entry['response']['status']}"
        for entry in entries
        if entry["response"]["status"] >= 500
    ]
    assert errors or done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    return statuses, errors


def _server(tmp_path: Path, *args: str, **env: str) -> Iterator[Server]:
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, *args, env=server_env(home, **env))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def keyless(tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path, "--api-key-env", "FUZZ_KEY", FUZZ_KEY=KEY)


def _report(which: str, statuses: Counter[int], errors: list[str]) -> None:
    total = sum(statuses.values())
    print(f"\nfuzz, {which}: {total} requests, {len(errors)} >= 500; {sorted(statuses.items())}")
    assert total > 500
    assert errors == []


@pytest.mark.slow
def test_no_fuzzed_request_gets_a_5xx_without_a_key(keyless: Server, tmp_path: Path) -> None:
    _report("keyless server", *_fuzz(keyless, tmp_path))


@pytest.mark.slow
def test_no_fuzzed_request_gets_a_5xx_with_the_key(keyed: Server, tmp_path: Path) -> None:
    _report("server with a key", *_fuzz(keyed, tmp_path, f"Authorization: Bearer {KEY}"))
