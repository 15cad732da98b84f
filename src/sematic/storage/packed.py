"""Small values stay small: payloads of at most ``threshold`` bytes are packed together.

``PackedArtifactStore(large, small, threshold)`` is an artifact store over two: a payload
of at most ``threshold`` bytes goes to ``small`` (a table of the SQL database,
``sematic.storage.sql.payloads``), a larger one to ``large`` (a folder or an object store,
``FsspecArtifactStore``), where it is written, or streamed, to a file or object of its own as
before. Ids, verification and caching do not change: a packed payload is the same bytes
under the same id.

Reads look in ``small`` first, then in ``large``: values stored before packing (or by a
writer that does not pack, or with a lower threshold) still read. Stores follow the same
rules in both places: ids are content hashes, so the bytes stored under an id can only be
right or damaged, and storing a payload again keeps an equal copy and replaces a damaged
one. Since ``small`` is read first, a payload stored in ``large`` also removes a copy of its
id from ``small`` (there only when it was packed under a higher threshold), so that a
damaged packed copy cannot hide the one just stored.

Why 4096 bytes by default: a file costs at least one filesystem block (4 KiB on the usual
filesystems) plus its inode and directory entry, and an object several requests to write
(nine with s3fs's atomic put: benchmarks/small_values.py counts them) and one to read,
whatever its size: for a payload of a few bytes that is a thousand times its size, and a
fan-out of 100,000 integer steps left 100,003 files taking 404 MB. Packed, such a value
costs about 100 bytes. Measured in SQLite (4 KiB pages, the table WITHOUT ROWID): a row
keeps its bytes in the table's own pages up to about 930 bytes of payload (about 1.3 times
its size on disk); beyond, it spills into an overflow page of its own, about 4.7 KB
whatever its size up to 4 KiB, as much as a file would take. So from about 1 KB to 4 KB
packing saves no disk in SQLite, but it still saves a file (an inode, a directory entry) or
an object's requests per value, the costs that dominate on object stores. Above 4 KiB, a
file wastes at most half of what it takes and a request carries more bytes, while a
database holding large values grows, is copied whole by its backups, and serves them
through its connection pool rather than streamed. ``SEMATIC_SMALL_PAYLOAD_BYTES`` moves it
(0: no packing; 900 for the least disk on SQLite); ``MAX_THRESHOLD`` bounds it, since an
upload holds up to ``threshold`` bytes in memory before it knows where it goes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Protocol

from sematic.core.errors import ConfigurationError
from sematic.core.records import ARTIFACT_ID

if TYPE_CHECKING:
    from sematic.core.ports import PayloadUpload, StreamingArtifactStore

DEFAULT_THRESHOLD = 4096
MAX_THRESHOLD = 1024 * 1024


class SmallPayloads(Protocol):
    """Where small payloads are packed (``SqlSmallPayloads`` is one).

    ``put_many`` stores each payload under its id at once (one transaction), keeping a copy
    already equal and replacing a different one; ``get`` gives the bytes or None;
    ``discard`` forgets the ids given (absent ones are ignored; when none is there, it
    should only read: it follows every store of a large payload).
    """

    def put_many(self, payloads: Mapping[str, bytes]) -> None: ...

    def get(self, artifact_id: str) -> bytes | None: ...

    def exists(self, artifact_id: str) -> bool: ...

    def discard(self, ids: Collection[str]) -> None: ...


def threshold_of(text: str | None, where: str) -> int:
    """The threshold ``text`` names (None or empty: the default), checked; ``where`` says
    where it was set, for the error."""
    if text is None or not text.strip():
        return DEFAULT_THRESHOLD
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) > MAX_THRESHOLD:
        raise ConfigurationError(
            f"{where} is the size in bytes up to which payloads are packed in the database: "
            f"a whole number from 0 (no packing) to {MAX_THRESHOLD}, not {text!r}"
        )
    return int(value)


class PackedArtifactStore:
    """Payloads of at most ``threshold`` bytes in ``small``, larger ones in ``large``."""

    def __init__(self, large: StreamingArtifactStore, small: SmallPayloads, threshold: int) -> None:
        if not 0 <= threshold <= MAX_THRESHOLD:
            raise ConfigurationError(
                f"the packing threshold is from 0 to {MAX_THRESHOLD} bytes, not {threshold}"
            )
        self._large = large
        self._small = small
        self._threshold = threshold

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def large(self) -> StreamingArtifactStore:
        return self._large

    def __repr__(self) -> str:
        return f"PackedArtifactStore({self._large!r}, up to {self._threshold} bytes packed)"

    def put(self, artifact_id: str, payload: bytes, *, type_key: str | None = None) -> None:
        if self._packs(artifact_id, len(payload)):
            self._small.put_many({artifact_id: payload})
            return
        self._large.put(artifact_id, payload, type_key=type_key)
        self._stored_large(artifact_id)

    def put_many(
        self, payloads: Mapping[str, bytes], *, type_keys: Mapping[str, str] | None = None
    ) -> None:
        small: dict[str, bytes] = {}
        large: dict[str, bytes] = {}
        for artifact_id, payload in payloads.items():
            packs = self._packs(artifact_id, len(payload))
            (small if packs else large)[artifact_id] = payload
        if large:  # first: an invalid id (never packed) is refused before the small ones
            keys = None if type_keys is None else {k: type_keys[k] for k in large if k in type_keys}
            self._large.put_many(large, type_keys=keys)
            self._small.discard(list(large))
        if small:
            self._small.put_many(small)

    def get(self, artifact_id: str) -> bytes:
        if ARTIFACT_ID.fullmatch(artifact_id):  # packed now, or before (another threshold)
            found = self._small.get(artifact_id)
            if found is not None:
                return found
        return self._large.get(artifact_id)  # or ArtifactMissingError

    def exists(self, artifact_id: str) -> bool:
        if not ARTIFACT_ID.fullmatch(artifact_id):
            return False
        return self._small.exists(artifact_id) or self._large.exists(artifact_id)

    def open_upload(self, artifact_id: str) -> PayloadUpload:
        """Chunks held in memory up to ``threshold`` bytes: packed at ``commit``; beyond,
        streamed to ``large``'s upload from then on."""
        if not ARTIFACT_ID.fullmatch(artifact_id):
            return self._large.open_upload(artifact_id)  # refuses it
        return _PackedUpload(self, artifact_id)

    def _packs(self, artifact_id: str, size: int) -> bool:
        return (
            self._threshold > 0
            and size <= self._threshold
            and bool(ARTIFACT_ID.fullmatch(artifact_id))
        )

    def _stored_large(self, artifact_id: str) -> None:
        """``artifact_id`` was just stored in ``large``: forget a packed copy (the module)."""
        self._small.discard([artifact_id])


class _PackedUpload:
    def __init__(self, store: PackedArtifactStore, artifact_id: str) -> None:
        self._store = store
        self._artifact_id = artifact_id
        self._held: bytearray | None = bytearray()
        self._upload: PayloadUpload | None = None  # once past the threshold
        self._done = False

    def write(self, chunk: bytes) -> None:
        if self._done:
            raise ValueError("write to an upload that was committed or aborted")
        if self._upload is not None:
            self._upload.write(chunk)
            return
        assert self._held is not None
        if len(self._held) + len(chunk) <= self._store.threshold:
            self._held += chunk
            return
        upload = self._store.large.open_upload(self._artifact_id)
        self._upload = upload
        held, self._held = bytes(self._held), None
        if held:
            upload.write(held)
        upload.write(chunk)

    def commit(self) -> None:
        if self._done:
            raise ValueError("commit of an upload that was committed or aborted")
        self._done = True
        if self._upload is not None:
            self._upload.commit()
            self._store._stored_large(self._artifact_id)
            return
        held, self._held = bytes(self._held or b""), None
        if self._store._packs(self._artifact_id, len(held)):
            self._store._small.put_many({self._artifact_id: held})
            return
        upload = self._store.large.open_upload(self._artifact_id)  # threshold 0: nothing packs
        self._upload = upload
        upload.write(held)
        upload.commit()
        self._store._stored_large(self._artifact_id)

    def abort(self) -> None:
        self._done = True
        self._held = None
        if self._upload is not None:
            self._upload.abort()


if TYPE_CHECKING:

    def _implements_the_port(store: PackedArtifactStore) -> StreamingArtifactStore:
        return store

    def _uploads(upload: _PackedUpload) -> PayloadUpload:
        return upload


__all__ = ["DEFAULT_THRESHOLD", "MAX_THRESHOLD", "PackedArtifactStore", "SmallPayloads"]
