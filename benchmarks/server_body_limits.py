"""Peak server memory while a client sends a 400 MB chunked body, before and after the caps.

Starts ``python -m sematic.server --port 0`` (keyless, on a temporary SEMATIC_HOME) once per
case, sends one 400 MB body in 1 MiB chunks (``Transfer-Encoding: chunked``, no
Content-Length) and reads the server's resident set from ``/proc/PID/status``: ``VmRSS``
when idle, ``VmHWM`` (the peak) after the request. The cases:

- ``POST /api/v1/write``: a body of JSON whitespace, past the 256 MiB cap;
- ``PUT /api/v1/artifacts/ID/payload``: a valid 400 MB payload (under the 2 GiB default cap).

The same is measured beside this one for an older version: ``--old-rev REV`` (default
``929be59``, the last commit before bodies were capped while streaming), extracted with
``git archive`` into a temporary folder, or ``--old PATH`` to its ``src``. Linux only.

    python benchmarks/server_body_limits.py [--old-rev REV | --old PATH_TO_OLD_SRC | --no-old]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx

from _bench import print_table, start_server

ROOT = Path(__file__).resolve().parents[1]
BEFORE_CAPS = "929be59"
SIZE = 400 * 1024 * 1024
CHUNK = 1024 * 1024
TYPE_KEY = "sematic-artifact/1\njson\nbytes"
MIB = 1024 * 1024


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _chunks(byte: bytes) -> Iterator[bytes]:
    block = byte * CHUNK
    for _ in range(SIZE // CHUNK):
        yield block


def _payload_id() -> str:
    digest = hashlib.sha256(TYPE_KEY.encode() + b"\0")
    for chunk in _chunks(b"p"):
        digest.update(chunk)
    return digest.hexdigest()


def _measure(source: Path, case: str, artifact_id: str) -> tuple[int, int, str]:
    """(idle RSS, peak RSS, answer) of a fresh server on ``source`` for one case."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        server, url = start_server(home, source)
        try:
            with httpx.Client(base_url=url + "/api/v1", timeout=300) as client:
                client.get("/health").raise_for_status()
                time.sleep(0.5)
                idle = _status(server.pid, "VmRSS")
                if case == "write":
                    request = client.build_request(
                        "POST",
                        "/write",
                        content=_chunks(b" "),
                        headers={"Content-Type": "application/json"},
                    )
                else:
                    request = client.build_request(
                        "PUT",
                        f"/artifacts/{artifact_id}/payload",
                        content=_chunks(b"p"),
                        headers={
                            "Content-Type": "application/octet-stream",
                            "X-Sematic-Type-Key": quote(TYPE_KEY, safe=""),
                        },
                    )
                try:
                    response = client.send(request)
                    answer = f"{response.status_code}"
                except httpx.TransportError as exc:
                    answer = f"closed ({type(exc).__name__})"
                peak = _status(server.pid, "VmHWM")
            return idle, peak, answer
        finally:
            server.terminate()
            server.wait(30)


def _old_source(
    given: str | None, revision: str
) -> tuple[Path | None, tempfile.TemporaryDirectory[str] | None]:
    if given:
        return Path(given), None
    folder = tempfile.TemporaryDirectory()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        folder.cleanup()
        return None, None
    subprocess.run(["tar", "-x", "-C", folder.name], input=archive.stdout, check=True)
    return Path(folder.name) / "src", folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", metavar="SRC", help="the old version's src folder")
    parser.add_argument("--old-rev", default=BEFORE_CAPS, metavar="REV", help="git revision")
    parser.add_argument("--no-old", action="store_true", help="measure this version only")
    args = parser.parse_args()
    old, keep = (None, None) if args.no_old else _old_source(args.old, args.old_rev)
    artifact_id = _payload_id()
    versions = [("this version", ROOT / "src")] + (
        [(f"old ({args.old or args.old_rev})", old)] if old else []
    )
    rows = []
    try:
        for case, label in (("write", "POST /write"), ("payload", "PUT /artifacts/ID/payload")):
            row: list[object] = [label]
            for _, source in versions:
                idle, peak, answer = _measure(source, case, artifact_id)
                row += [f"{idle / MIB:,.0f}", f"{peak / MIB:,.0f}", answer]
            rows.append(row)
    finally:
        if keep is not None:
            keep.cleanup()
    headers = ["400 MB chunked body"]
    for name, _ in versions:
        headers += [f"{name}: idle MiB", "peak MiB", "answer"]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
