"""Artifact stores: payloads kept by id, in a folder, any fsspec filesystem, or memory.

Layout: ``<root>/<id[:2]>/<id>``. A payload is written under a temporary name in its final
folder and then renamed, so a reader never sees a partial file under an artifact id; a
crash can leave a ``.<id>.<random>.tmp`` file behind, never a wrong artifact. Ids are
content hashes, so the bytes stored under an id can only be right or damaged: ``put`` of an
id already stored compares what is there with the payload (sizes first, then bytes) and
keeps it when equal, or replaces it, the same atomic way, when it was altered or truncated.
A damaged artifact is healed by storing it again.

By default nothing is fsynced: a written artifact is as durable as the operating system's
page cache (it survives the process, not necessarily a power cut). Pass ``fsync=True`` to
flush each file and its folder to disk.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sematic.core.errors import ArtifactMissingError, ConfigurationError
from sematic.core.files import FILE_MODE, private_folder
from sematic.core.records import ARTIFACT_ID as _ID

if TYPE_CHECKING:
    from sematic.core.ports import ArtifactStore, PayloadUpload, StreamingArtifactStore

_LOCAL_PREFIX = "file://"
_BINARY = getattr(os, "O_BINARY", 0)  # Windows
_CHUNK = 1024 * 1024  # bytes compared at a time when a payload is already stored


def _check_id(artifact_id: str) -> None:
    if not _ID.fullmatch(artifact_id):
        raise ConfigurationError(
            f"{artifact_id!r} is not an artifact id (64 lowercase hexadecimal digits)"
        )


def _missing(artifact_id: str, url: str) -> ArtifactMissingError:
    return ArtifactMissingError(
        f"artifact {artifact_id} is not in the artifact store {url}. It was deleted, or "
        "this process uses a different store than the one that wrote it: point Sematic at "
        "that store, or run the pipeline again to recompute it."
    )


def _temporary_name(artifact_id: str) -> str:
    return f".{artifact_id}.{secrets.token_hex(6)}.tmp"


class FsspecArtifactStore:
    """Payloads under ``url``: a local folder (path or ``file://``) or any fsspec URL.

    Local folders are handled with ``os`` directly (fast); other URLs (``memory://``,
    ``s3://``, ``gs://``, ...) go through fsspec, which must have their backend installed.
    """

    def __init__(self, url: str, *, fsync: bool = False) -> None:
        self._url = url
        self._fsync = fsync
        self._root: str | None = None  # a local folder: plain os calls, str paths
        self._fs: Any = None
        self._fs_root = ""
        if "://" not in url or url.startswith(_LOCAL_PREFIX):
            self._root = os.path.expanduser(url.removeprefix(_LOCAL_PREFIX))
        else:
            # fsspec ships no type information: imported as a module object, it is Any.
            fsspec_core = importlib.import_module("fsspec.core")
            # A filesystem of its own: fsspec's shared instances are keyed by arguments only,
            # so one made earlier would keep the endpoint and credentials the environment
            # (AWS_ENDPOINT_URL_S3, ...) named then, not now.
            self._fs, self._fs_root = fsspec_core.url_to_fs(url, skip_instance_cache=True)
            self._fs_root = self._fs_root.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self._url!r})"

    def put(self, artifact_id: str, payload: bytes, *, type_key: str | None = None) -> None:
        _check_id(artifact_id)
        if self._root is not None:
            self._put_local(os.path.join(self._root, artifact_id[:2]), artifact_id, payload)
        else:
            self._put_fsspec(artifact_id, payload)

    def put_many(
        self, payloads: Mapping[str, bytes], *, type_keys: Mapping[str, str] | None = None
    ) -> None:
        for artifact_id, payload in payloads.items():
            self.put(artifact_id, payload)

    def get(self, artifact_id: str) -> bytes:
        if not _ID.fullmatch(artifact_id):
            raise _missing(artifact_id, self._url)
        try:
            if self._root is not None:
                return _read_all(os.path.join(self._root, artifact_id[:2], artifact_id))
            return bytes(self._fs.cat_file(self._fs_path(artifact_id)))
        except FileNotFoundError:
            raise _missing(artifact_id, self._url) from None

    def exists(self, artifact_id: str) -> bool:
        if not _ID.fullmatch(artifact_id):
            return False
        if self._root is not None:
            return os.path.exists(os.path.join(self._root, artifact_id[:2], artifact_id))
        return bool(self._fs.exists(self._fs_path(artifact_id)))

    # Streamed puts (the server's uploads): see ``_LocalUpload`` and ``_FsspecUpload``.
    def open_upload(self, artifact_id: str) -> PayloadUpload:
        """A payload stored a chunk at a time under a temporary name; ``commit`` renames it
        to the id, replacing what was there (the caller has checked the bytes)."""
        _check_id(artifact_id)
        if self._root is not None:
            folder = os.path.join(self._root, artifact_id[:2])
            return _LocalUpload(folder, artifact_id, fsync=self._fsync)
        return _FsspecUpload(self._fs, self._fs_path(artifact_id))

    def _put_local(self, folder: str, artifact_id: str, payload: bytes) -> None:
        final = os.path.join(folder, artifact_id)
        if _holds(final, payload):
            return
        temporary = os.path.join(folder, _temporary_name(artifact_id))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY
        try:
            descriptor = os.open(temporary, flags, FILE_MODE)
        except FileNotFoundError:
            private_folder(folder)
            descriptor = os.open(temporary, flags, FILE_MODE)
        try:
            try:
                _write_all(descriptor, payload)
                if self._fsync:
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        if self._fsync:
            _fsync_folder(folder)

    def _put_fsspec(self, artifact_id: str, payload: bytes) -> None:
        final = self._fs_path(artifact_id)
        if self._fs_holds(final, payload):
            return
        folder = final.rpartition("/")[0]
        self._fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/{_temporary_name(artifact_id)}"
        try:
            with self._fs.open(temporary, "wb") as file:
                file.write(payload)
            self._fs.mv(temporary, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm(temporary)
            raise

    def _fs_holds(self, path: str, payload: bytes) -> bool:
        """Whether ``path`` holds exactly ``payload`` (False: absent, truncated, altered)."""
        try:
            if int(self._fs.size(path)) != len(payload):
                return False
            return bytes(self._fs.cat_file(path)) == payload
        except FileNotFoundError:
            return False

    def _fs_path(self, artifact_id: str) -> str:
        return f"{self._fs_root}/{artifact_id[:2]}/{artifact_id}"


def _write_all(descriptor: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _holds(path: str, payload: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``payload`` (False: absent, truncated,
    altered). Compares its size first, then its bytes a chunk at a time."""
    try:
        descriptor = os.open(path, os.O_RDONLY | _BINARY)
    except FileNotFoundError:
        return False
    try:
        if os.fstat(descriptor).st_size != len(payload):
            return False
        view = memoryview(payload)
        offset = 0
        while offset < len(view):
            chunk = os.read(descriptor, min(_CHUNK, len(view) - offset))
            if not chunk or view[offset : offset + len(chunk)] != chunk:
                return False
            offset += len(chunk)
        return True
    finally:
        os.close(descriptor)


def _read_all(path: str) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | _BINARY)
    try:
        remaining = os.fstat(descriptor).st_size
        parts = []
        while remaining > 0:
            part = os.read(descriptor, remaining)
            if not part:
                break
            parts.append(part)
            remaining -= len(part)
    finally:
        os.close(descriptor)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class InMemoryArtifactStore:
    """Payloads in a dict of this process: for silent runs and tests."""

    def __init__(self) -> None:
        self._payloads: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InMemoryArtifactStore({len(self._payloads)} artifacts)"

    def __len__(self) -> int:
        return len(self._payloads)

    def put(self, artifact_id: str, payload: bytes, *, type_key: str | None = None) -> None:
        with self._lock:
            if self._payloads.get(artifact_id) != payload:  # absent, or damaged: replaced
                self._payloads[artifact_id] = bytes(payload)

    def put_many(
        self, payloads: Mapping[str, bytes], *, type_keys: Mapping[str, str] | None = None
    ) -> None:
        for artifact_id, payload in payloads.items():
            self.put(artifact_id, payload)

    def get(self, artifact_id: str) -> bytes:
        try:
            return self._payloads[artifact_id]
        except KeyError:
            raise _missing(artifact_id, "of this process (in memory)") from None

    def exists(self, artifact_id: str) -> bool:
        return artifact_id in self._payloads

    def open_upload(self, artifact_id: str) -> PayloadUpload:
        return _MemoryUpload(self, artifact_id)

    def _commit(self, artifact_id: str, payload: bytes) -> None:
        with self._lock:
            self._payloads[artifact_id] = payload


# Streamed puts: one payload written a chunk at a time, visible only once committed.


class _LocalUpload:
    def __init__(self, folder: str, artifact_id: str, *, fsync: bool) -> None:
        self._folder = folder
        self._final = os.path.join(folder, artifact_id)
        self._temporary = os.path.join(folder, _temporary_name(artifact_id))
        self._fsync = fsync
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY
        private_folder(folder)
        self._descriptor: int | None = os.open(self._temporary, flags, FILE_MODE)
        self._finished = False

    def write(self, chunk: bytes) -> None:
        if self._descriptor is None:
            raise ValueError("write to an upload that was committed or aborted")
        _write_all(self._descriptor, chunk)

    def commit(self) -> None:
        if self._descriptor is None:
            raise ValueError("commit of an upload that was committed or aborted")
        descriptor, self._descriptor = self._descriptor, None
        try:
            if self._fsync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(self._temporary, self._final)
        self._finished = True
        if self._fsync:
            _fsync_folder(self._folder)

    def abort(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        if not self._finished:
            self._finished = True
            with contextlib.suppress(OSError):
                os.unlink(self._temporary)


class _FsspecUpload:
    def __init__(self, fs: Any, final: str) -> None:
        self._fs = fs
        self._final = final
        folder, _, name = final.rpartition("/")
        fs.makedirs(folder, exist_ok=True)
        self._temporary = f"{folder}/{_temporary_name(name)}"
        self._file: Any = fs.open(self._temporary, "wb")
        self._finished = False

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise ValueError("write to an upload that was committed or aborted")
        self._file.write(chunk)

    def commit(self) -> None:
        if self._file is None:
            raise ValueError("commit of an upload that was committed or aborted")
        file, self._file = self._file, None
        file.close()
        self._fs.mv(self._temporary, self._final)
        self._finished = True

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        if not self._finished:
            self._finished = True
            with contextlib.suppress(Exception):
                self._fs.rm(self._temporary)


class _MemoryUpload:
    def __init__(self, store: InMemoryArtifactStore, artifact_id: str) -> None:
        self._store = store
        self._artifact_id = artifact_id
        self._chunks: list[bytes] | None = []

    def write(self, chunk: bytes) -> None:
        if self._chunks is None:
            raise ValueError("write to an upload that was committed or aborted")
        self._chunks.append(bytes(chunk))

    def commit(self) -> None:
        if self._chunks is None:
            raise ValueError("commit of an upload that was committed or aborted")
        chunks, self._chunks = self._chunks, None
        self._store._commit(self._artifact_id, b"".join(chunks))

    def abort(self) -> None:
        self._chunks = None


if TYPE_CHECKING:

    def _implements_the_port(
        fsspec_store: FsspecArtifactStore, memory_store: InMemoryArtifactStore
    ) -> tuple[ArtifactStore, ArtifactStore]:
        return fsspec_store, memory_store

    def _stream_uploads(
        fsspec_store: FsspecArtifactStore, memory_store: InMemoryArtifactStore
    ) -> tuple[StreamingArtifactStore, StreamingArtifactStore]:
        return fsspec_store, memory_store
