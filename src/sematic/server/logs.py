"""How the server logs: ``--log-format text`` (the default) or ``json``.

``text``: uvicorn's own format, warnings and errors only, as always.

``json``: one JSON object per line on stderr, for a log collector to parse, from INFO up:
the server's own records (uvicorn's start and stop, errors with their traceback under
``exception``, Sematic's warnings) and one access record per request (from
``sematic.server.metrics``). Every object has ``timestamp`` (ISO 8601, UTC), ``level``,
``logger`` and ``message``; an access record adds ``method``, ``path``, ``status``,
``duration_ms`` and ``client`` (``host:port``).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client")
SERVER_LOGGER = "sematic.server"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (newlines in messages and tracebacks escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def json_config() -> dict[str, Any]:
    """The ``logging.config.dictConfig`` (and uvicorn ``log_config``) of ``json``."""
    handler = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"uvicorn": handler, "sematic": dict(handler)},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def uvicorn_options(log_format: str) -> dict[str, Any]:
    """The logging arguments of ``uvicorn.Config`` for ``log_format``. In ``json``,
    uvicorn's own access log is off: ``sematic.server.access`` logs each request with its
    duration instead."""
    if log_format == "json":
        return {"log_config": json_config(), "log_level": "info", "access_log": False}
    return {"log_level": "warning"}


def configure(log_format: str) -> None:
    """Set up logging before the server starts (uvicorn sets it up again, the same way),
    so that what is said before then is in the chosen format too."""
    if log_format == "json":
        logging.config.dictConfig(json_config())
        logging.captureWarnings(True)


def say(line: str, *, log_format: str) -> None:
    """A line of the server's own (``"warning: ..."`` or ``"error: ..."``) on stderr: as
    it is in ``text``, as a record of that level in ``json``."""
    if log_format != "json":
        print(line, file=sys.stderr, flush=True)
        return
    level, _, message = line.partition(": ")
    number = logging.ERROR if level == "error" else logging.WARNING
    logging.getLogger(SERVER_LOGGER).log(number, message or line)
