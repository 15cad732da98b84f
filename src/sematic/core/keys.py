"""API keys of a team server: who holds one, with which role. Plain values, no I/O.

A key is a random token (``secrets.token_urlsafe(32)``) shown once when it is made; the
server keeps only its sha256 (``key_hash``). Roles, from most to least trusted:

- ``admin``: everything, including managing keys (``/api/v1/keys``);
- ``write``: read and write runs and artifacts (resolvers, workers, the CLI);
- ``read``: reads only: any state-changing request (POST, PUT, PATCH, DELETE) is a 403.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "write", "read"]
ROLES: tuple[Role, ...] = ("admin", "write", "read")
KEY_ID_PATTERN = "[0-9a-f]{32}"
KEY_ID = re.compile(KEY_ID_PATTERN)
# The user the server's bootstrap key (``--api-key-env``) authenticates as.
BOOTSTRAP_USER = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request, as its API key says."""

    user: str
    role: Role

    @property
    def can_write(self) -> bool:
        return self.role != "read"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One key, as listed: never the key itself nor its hash.

    ``revoked_at`` (seconds since the epoch) is None while the key is valid."""

    id: str
    user: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just made: its record and the plain key, which is shown this once only."""

    record: ApiKeyRecord
    key: str


def key_hash(key: str) -> str:
    """The sha256 hex digest a key is stored and looked up by.

    A plain, unsalted, fast hash is right here (unlike for passwords): keys are 32 random
    bytes, so there is nothing to guess and no dictionary to precompute; a salt or a slow
    hash (bcrypt, argon2) would only cost time on every request, and would prevent the
    indexed lookup by hash that authenticates a request.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
