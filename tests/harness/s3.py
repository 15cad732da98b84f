"""A throwaway S3-compatible server for the artifact-store tests: moto's standalone server.

Moto's standalone server (``python -m moto.server``, what the ``moto_server`` command runs;
installed by the ``moto[server]`` extra) is the S3-compatible server installable here: a real
S3 cannot be reached from this machine and MinIO cannot run on it. It speaks S3's REST
protocol over plain HTTP and keeps the objects in memory. It accepts any credentials and
checks no signature, so these tests show what Sematic asks of an S3 store (which requests,
in which order, with what consequences), not how a particular provider authenticates.

``s3_server`` (session-scoped) starts it with this interpreter, listening on 127.0.0.1 only,
on a free port (another one if that port got taken meanwhile), waits until it answers and
creates the bucket ``sematic-tests``. It is stopped by its PID (SIGTERM, then SIGKILL) when
the session ends, and its temporary folder (its log and its request recording; nothing in
the repository) is removed.

``s3_url`` (per test) points the process environment at that server with the standard AWS
variables only (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``; every other ``AWS_*`` variable removed, the developer's
``~/.aws`` files ignored) and yields ``s3://sematic-tests/<random prefix>``. Nothing
Sematic-specific is needed: ``FsspecArtifactStore`` hands ``s3://`` URLs to s3fs, whose
botocore client reads the endpoint and the credentials from those variables. That is what a
user sets for MinIO or any S3-compatible store (or nothing but credentials for AWS S3 itself);
worker processes inherit them.

``S3Server.recording()`` lists the requests the server received meanwhile, by S3 operation
(moto's request recorder, ``/moto-api/recorder/``, which writes each request down before
handling it).

A missing moto or s3fs fails the tests that need them (never skips them): run
``scripts/setup``, which installs the ``dev`` extra.

Also usable by hand: ``python -m tests.harness.s3 [--port N]`` prints the variables to
export and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.harness.ports import free_port
from tests.harness.processes import required, stop_process

BUCKET = "sematic-tests"
ACCESS_KEY_ID = "sematic-test"
SECRET_ACCESS_KEY = "sematic-test-secret"  # moto accepts any credentials
REGION = "us-east-1"
READY_TIMEOUT = 30.0
REQUIRED = {"moto.server": "moto[server]", "flask": "moto[server]", "s3fs": "s3fs"}


class S3UnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Request:
    """One request the server received: ``operation`` is S3's name for it (``GetObject``,
    ``ListObjectsV2``, ...), ``key`` the object key (empty for bucket requests)."""

    operation: str
    method: str
    bucket: str
    key: str
    query: dict[str, list[str]] = field(compare=False)

    @property
    def is_listing(self) -> bool:
        return self.operation in ("ListObjects", "ListObjectsV2")


def _operation(method: str, key: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    lowered = {name.lower() for name in headers}
    if method == "GET" and not key:
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if key else "HeadBucket"
    if method == "GET":
        return "GetObject"
    if method == "PUT" and not key:
        return "CreateBucket"
    if method == "PUT" and "partNumber" in query:
        return "UploadPartCopy" if "x-amz-copy-source" in lowered else "UploadPart"
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in lowered else "PutObject"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "DELETE":
        return "DeleteObject" if key else "DeleteBucket"
    return method


def _parse(entry: dict[str, Any]) -> S3Request:
    url = urlsplit(entry["url"])
    bucket, _, key = url.path.lstrip("/").partition("/")
    query = parse_qs(url.query, keep_blank_values=True)
    method = entry["method"]
    operation = _operation(method, key, query, entry.get("headers") or {})
    return S3Request(operation, method, bucket, key, query)


@dataclass(frozen=True)
class S3Server:
    """A running server: ``endpoint`` is ``http://127.0.0.1:PORT``, ``bucket`` exists."""

    endpoint: str
    bucket: str
    folder: Path

    def environment(self) -> dict[str, str]:
        """The variables that point s3fs (its botocore client) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            # Nothing of the developer's AWS setup: no config or credentials file (which
            # could name another endpoint), no instance-metadata lookups.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A botocore S3 client of its own (explicit endpoint and credentials): someone
        else's view of the bucket, to inspect or damage objects behind a store's back."""
        import botocore.session

        return botocore.session.Session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def keys(self, prefix: str) -> list[str]:
        """The keys of all objects under ``prefix``, sorted."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    @contextmanager
    def recording(self) -> Iterator[list[S3Request]]:
        """Yields a list that holds, once the block ends, the requests received meanwhile."""
        with httpx.Client(base_url=f"{self.endpoint}/moto-api/recorder", timeout=10.0) as api:
            api.post("/reset-recording").raise_for_status()
            api.post("/start-recording").raise_for_status()
            received: list[S3Request] = []
            try:
                yield received
            finally:
                api.post("/stop-recording").raise_for_status()
                text = api.get("/download-recording").raise_for_status().text
                received.extend(_parse(json.loads(line)) for line in text.splitlines() if line)
                api.post("/reset-recording").raise_for_status()


def _check_installed() -> None:
    missing = sorted({extra for module, extra in REQUIRED.items() if not _importable(module)})
    if missing:
        raise S3UnavailableError(
            f"{' and '.join(missing)} not installed, so the S3 tests cannot start moto's S3 "
            "server or reach it. Run scripts/setup (it installs the dev extra), or "
            f"pip install {' '.join(repr(m) for m in missing)}."
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> bool:
    """Polls the server until it answers; False if the process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                client.get(f"{endpoint}/")  # any answer will do (this one lists the buckets)
                return True
            except httpx.TransportError:
                time.sleep(0.05)
    raise S3UnavailableError(
        f"moto's server at {endpoint} did not answer within {READY_TIMEOUT:.0f} s; its log:\n"
        + log.read_text(errors="replace")
    )


def _create_bucket(server: S3Server) -> None:
    client = server.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=server.bucket)


@contextmanager
def local_s3(*, port: int | None = None) -> Iterator[S3Server]:
    """Runs moto's S3 server on 127.0.0.1 (``port``, or a free one) with the bucket
    ``sematic-tests``; yields it."""
    _check_installed()
    folder = Path(tempfile.mkdtemp(prefix="sematic-s3-"))
    try:
        log = folder / "server.log"
        environment = {
            **os.environ,
            "MOTO_RECORDER_FILEPATH": str(folder / "requests.jsonl"),
            "MOTO_ENABLE_RECORDING": "",  # recorded only inside S3Server.recording()
        }
        failure = ""
        for _ in range(3 if port is None else 1):
            chosen = free_port() if port is None else port
            endpoint = f"http://127.0.0.1:{chosen}"
            logged = log.stat().st_size if log.exists() else 0
            with log.open("ab") as output:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "moto.server",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        f"{chosen}",
                    ],
                    cwd=folder,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    # Ctrl-C in the terminal reaches the tests, not the server, which is
                    # then stopped in order by the fixture.
                    start_new_session=True,
                )
            try:
                ready = _wait_ready(process, endpoint, log)
                if ready:
                    server = S3Server(endpoint=endpoint, bucket=BUCKET, folder=folder)
                    _create_bucket(server)
            except BaseException:
                stop_process(process)
                raise
            if not ready:
                failure = log.read_bytes()[logged:].decode(errors="replace")
                if "in use" in failure and port is None:
                    continue  # another process took the port meanwhile: try another one
                raise S3UnavailableError(
                    f"moto's server exited ({process.returncode}); its log:\n{failure}"
                )
            try:
                yield server
            finally:
                stop_process(process)
            return
        raise S3UnavailableError(f"no free port for moto's server; its log:\n{failure}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with required(local_s3(), S3UnavailableError) as server:
        yield server


@pytest.fixture
def s3_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://sematic-tests/<random prefix>``, with the environment pointing at the server
    (for this process and the worker processes it starts)."""
    for variable in list(os.environ):
        if variable.startswith("AWS_"):
            monkeypatch.delenv(variable)
    for variable, value in s3_server.environment().items():
        monkeypatch.setenv(variable, value)
    yield f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"


def _serve(port: int | None) -> None:
    """Prints the variables to export and serves until SIGINT or SIGTERM."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    with local_s3(port=port) as server:
        for variable, value in server.environment().items():
            print(f"export {variable}={value}")
        print(
            f"export SEMATIC_ARTIFACT_URL=s3://{server.bucket}/artifacts\n"
            "(Ctrl-C stops the server and deletes its data)",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Moto's S3 server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    _serve(parser.parse_args().port)
