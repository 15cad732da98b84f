"""Where local runs are kept: read from the environment when a resolver is made."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalSettings:
    """Locations of the embedded default; each one can be moved by one variable.

    - ``SEMATIC_HOME`` (default ``~/.sematic``): everything below lives here.
    - ``SEMATIC_DATABASE_URL``: a SQLAlchemy URL (``postgresql+psycopg://...`` for teams);
      default SQLite at ``$SEMATIC_HOME/db.sqlite3``.
    - ``SEMATIC_ARTIFACT_URL``: a folder or any fsspec URL; default ``$SEMATIC_HOME/artifacts``.
    """

    home: Path
    database_url: str
    artifact_url: str

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def jobs(self) -> Path:
        return self.home / "jobs"

    def log_path(self, run_id: str) -> Path:
        return self.logs / f"{run_id}.log"

    @classmethod
    def from_environment(cls) -> LocalSettings:
        home = Path(os.environ.get("SEMATIC_HOME") or Path.home() / ".sematic").expanduser()
        return cls(
            home=home,
            database_url=os.environ.get("SEMATIC_DATABASE_URL")
            or f"sqlite:///{home / 'db.sqlite3'}",
            artifact_url=os.environ.get("SEMATIC_ARTIFACT_URL") or str(home / "artifacts"),
        )
