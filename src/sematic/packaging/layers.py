"""Reproducible, content-addressed image layers.

A layer is a gzipped tar whose bytes depend only on the files' paths, contents and
executable bits: entries sorted, parent folders listed, timestamps 0, owner root, gzip
header without name or time. The same files give the same digest on any machine.

Layers are kept in a cache folder by digest, with an index from a fingerprint of their
inputs (paths, sizes, modification times) to the digest, so an unchanged set of files is
neither read nor compressed again.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sematic.core.errors import ConfigurationError

if TYPE_CHECKING:
    from sematic.packaging.registry import RegistryClient

_CHUNK = 1 << 20
_COMPRESSLEVEL = 6


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of a layer: ``path`` in the image, contents from ``source`` or ``data``."""

    path: str  # absolute, POSIX ("/opt/sematic/site-packages/x.py")
    source: Path | None = None
    data: bytes | None = None
    executable: bool = False
    link_target: str | None = None  # a symbolic link instead of a file

    @classmethod
    def file(cls, path: str, source: Path, *, follow_links: bool = False) -> Entry:
        """``source`` at ``path``; a symbolic link stays one unless ``follow_links``."""
        st = source.lstat()
        if stat.S_ISLNK(st.st_mode) and not follow_links:
            return cls(path, link_target=os.readlink(source))
        return cls(path, source=source, executable=bool(st.st_mode & stat.S_IXUSR))

    def fingerprint(self) -> str:
        if self.link_target is not None:
            return f"{self.path}\0link\0{self.link_target}"
        if self.data is not None:
            digest = hashlib.sha256(self.data).hexdigest()
            return f"{self.path}\0data\0{digest}\0{self.executable}"
        assert self.source is not None
        st = self.source.stat()
        return f"{self.path}\0{self.source}\0{st.st_size}\0{st.st_mtime_ns}\0{self.executable}"


@dataclass(frozen=True, slots=True)
class Layer:
    """A gzipped tar in the cache: ``digest`` of the blob, ``diff_id`` of the tar inside."""

    name: str
    digest: str
    diff_id: str
    size: int
    path: Path
    files: int


class LayerCache:
    """Blobs by digest under ``root/blobs``; ``root/index.json`` maps fingerprints to layers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def build(self, name: str, entries: Iterable[Entry]) -> tuple[Layer, bool]:
        """The layer of ``entries``; True when it was built now, False when it was cached."""
        ordered = sorted({e.path: e for e in entries}.values(), key=lambda e: e.path)
        key = hashlib.sha256("\n".join(e.fingerprint() for e in ordered).encode()).hexdigest()
        known = self._lookup(name, key)
        if known is not None:
            return known, False
        layer = self._write(name, ordered)
        self._remember(key, layer)
        return layer, True

    def _lookup(self, name: str, key: str) -> Layer | None:
        entry = self._index().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            digest, diff_id = str(entry["digest"]), str(entry["diff_id"])
            size, files = int(entry["size"]), int(entry["files"])
        except (KeyError, TypeError, ValueError):
            return None
        path = self.blob_path(digest)
        if not path.is_file() or path.stat().st_size != size:
            return None
        return Layer(name, digest, diff_id, size, path, files)

    def _index(self) -> dict[str, Any]:
        try:
            loaded = json.loads((self.root / "index.json").read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _remember(self, key: str, layer: Layer) -> None:
        index = self._index()
        index[key] = {
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.size,
            "files": layer.files,
        }
        _write_atomically(self.root / "index.json", json.dumps(index, indent=1).encode())

    def _write(self, name: str, entries: list[Entry]) -> Layer:
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.blobs, prefix=".layer-")
        try:
            with os.fdopen(fd, "wb") as raw:
                hashed = _HashingWriter(raw)
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=hashed, compresslevel=_COMPRESSLEVEL, mtime=0
                ) as zipped:
                    tar_hashed = _HashingWriter(zipped)
                    write_tar(tar_hashed, entries)
            digest = f"sha256:{hashed.sha.hexdigest()}"
            path = self.blob_path(digest)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        diff_id = f"sha256:{tar_hashed.sha.hexdigest()}"
        return Layer(name, digest, diff_id, hashed.size, path, len(entries))


def write_tar(out: io.RawIOBase | _HashingWriter, entries: list[Entry]) -> None:
    """A deterministic tar of ``entries`` (sorted by path), with their parent folders."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        for folder in _parents(e.path for e in entries):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755))
        for entry in entries:
            name = entry.path.lstrip("/")
            if entry.link_target is not None:
                info = _info(name, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.link_target
                tar.addfile(info)
                continue
            mode = 0o755 if entry.executable else 0o644
            info = _info(name, tarfile.REGTYPE, mode)
            if entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                assert entry.source is not None
                with entry.source.open("rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    tar.addfile(info, f)


def _parents(paths: Iterable[str]) -> list[str]:
    folders: set[str] = set()
    for path in paths:
        for parent in PurePosixPath(path.lstrip("/")).parents:
            if str(parent) != ".":
                folders.add(str(parent))
    return sorted(folders)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _HashingWriter(io.RawIOBase):
    """Passes writes on to ``target`` while hashing and counting them."""

    def __init__(self, target: io.IOBase | gzip.GzipFile | _HashingWriter) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def tree_entries(
    folder: Path, prefix: str, *, skip: frozenset[str] = frozenset(), follow_links: bool = False
) -> Iterator[Entry]:
    """Every file under ``folder`` as entries under ``prefix``, leaving out caches, hidden
    folders, virtual environments and names in ``skip``. ``follow_links``: files that are
    symbolic links (as in a Bazel runfiles tree) are copied as the files they point to."""
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in ("__pycache__", "node_modules")
            and d not in skip
            and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")) or name in skip:
                continue
            relative = (here / name).relative_to(folder).as_posix()
            yield Entry.file(
                f"{prefix.rstrip('/')}/{relative}", here / name, follow_links=follow_links
            )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def cached_blob(registry: RegistryClient, repository: str, digest: str, cache: Path) -> Path:
    """A blob as a file in ``cache``: one of our layers (``layers/blobs``), a base layer
    downloaded before (``base-blobs``), else downloaded now into ``base-blobs``."""
    name = digest.replace(":", "-")
    ours = cache / "layers" / "blobs" / name
    if ours.is_file():
        return ours
    path = cache / "base-blobs" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        registry.download_blob(repository, digest, path)
    return path


def open_layer(blob: Path) -> io.BufferedIOBase:
    """A layer blob's tar as a stream: gzip, bzip2 or xz (told by its magic bytes), else a
    plain tar. Decompressed outside ``tarfile``, whose own decompression copies its whole
    buffer for every 512-byte read (several times slower). A zstd layer is a
    ConfigurationError: nothing here reads zstd yet."""
    with blob.open("rb") as raw:
        magic = raw.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(blob, "rb")
    if magic.startswith(b"BZh"):
        return bz2.open(blob, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(blob, "rb")
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        raise ConfigurationError(
            f"layer {blob.name} is compressed with zstd, which sematic cannot read yet: use "
            "a base image pushed with gzip layers"
        )
    return blob.open("rb")
