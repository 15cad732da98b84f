"""Capturing what an inline function prints into its run's log, still echoing it; sending
logs to the Sematic server when runs are recorded through one."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO, cast

from sematic.core.errors import SematicError
from sematic.core.files import private_folder, private_opener

if TYPE_CHECKING:
    from sematic.storage.http import HttpLogs


class _Tee(io.TextIOBase):
    """Writes to ``echo`` and to the log file, which is created on the first write only."""

    def __init__(self, echo: TextIO, log: _LazyFile) -> None:
        self._echo = echo
        self._log = log

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._echo.write(text)
        self._log.write(text)
        return len(text)

    def flush(self) -> None:
        self._echo.flush()
        self._log.flush()


class _LazyFile:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def write(self, text: str) -> None:
        if self._file is None:
            private_folder(self._path.parent)
            self._file = open(self._path, "a", encoding="utf-8", opener=private_opener)  # noqa: SIM115
        self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr to ``path`` too, while the block runs."""
    log = _LazyFile(path)
    try:
        with (
            contextlib.redirect_stdout(cast(TextIO, _Tee(sys.stdout, log))),
            contextlib.redirect_stderr(cast(TextIO, _Tee(sys.stderr, log))),
        ):
            yield
    finally:
        log.close()


class LogShipper:
    """Sends a finished run's log file to the server of ``server_url`` (nothing without
    one: the local server reads the files where they are). A failure to send is reported
    on stderr and does not fail the run."""

    def __init__(self, logs_folder: Path, server_url: str | None, api_key: str | None) -> None:
        self._folder = logs_folder
        self._url = server_url
        self._key = api_key
        self._client: HttpLogs | None = None

    def ship(self, run_id: str) -> None:
        if self._url is None:
            return
        path = self._folder / f"{run_id}.log"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        if self._client is None:
            from sematic.storage.http import HttpLogs

            self._client = HttpLogs(self._url, self._key)
        try:
            self._client.put(run_id, data)
        except SematicError as error:
            print(f"sematic: the log of run {run_id} was not sent: {error}", file=sys.stderr)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
