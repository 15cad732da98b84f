"""``SqlApiKeys``: API keys kept hashed in the metadata database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sematic.core.errors import ApiKeyNotFoundError, ConfigurationError
from sematic.core.keys import Principal
from sematic.storage.sql import SqlMetadataStore


def test_create_authenticate_rotate_revoke(store: SqlMetadataStore) -> None:
    keys = store.api_keys()
    made = keys.create("alice", "laptop", "write")
    assert len(made.key) >= 43  # 32 random bytes, URL-safe base64
    assert keys.authenticate(made.key) == Principal("alice", "write")
    assert keys.authenticate(made.key + "x") is None
    assert keys.authenticate("") is None

    rotated = keys.rotate(made.record.id)
    assert (rotated.record.user, rotated.record.role, rotated.record.name) == (
        "alice",
        "write",
        "laptop",
    )
    assert keys.authenticate(made.key) == keys.authenticate(rotated.key)  # both valid

    revoked = keys.revoke(made.record.id)
    assert revoked.revoked_at is not None
    assert keys.revoke(made.record.id) == revoked  # again: the first time is kept
    assert keys.authenticate(made.key) is None
    assert keys.authenticate(rotated.key) == Principal("alice", "write")
    assert [k.id for k in keys.list()] == [made.record.id, rotated.record.id]
    assert keys.list()[1] == rotated.record

    with pytest.raises(ConfigurationError, match="revoked"):
        keys.rotate(made.record.id)
    with pytest.raises(ApiKeyNotFoundError):
        keys.revoke("0" * 32)
    with pytest.raises(ConfigurationError, match="role"):
        keys.create("bob", "", "root")  # type: ignore[arg-type]


def test_the_sqlite_file_holds_the_hash_never_the_key(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with SqlMetadataStore(f"sqlite:///{path}") as store:
        made = store.api_keys().create("carol", "ci", "read")
    # Closed: the write-ahead log is checkpointed into the file.
    data = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))
    assert made.key.encode() not in data
    assert hashlib.sha256(made.key.encode()).hexdigest().encode() in data
