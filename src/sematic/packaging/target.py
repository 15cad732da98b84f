"""The target of an image: the interpreter and platform its base image runs code with.

Third-party distributions are installed for the target (wheels for its Python version,
ABI and platform tags), never copied from the environment that runs ``sematic build``:
a laptop on macOS arm64 with Python 3.12 builds images for a cluster's linux/amd64 base
with Python 3.10.

``detect_target`` reads the target from the base image itself: its config (platform,
``PATH``) and its layers, streamed once as a union filesystem (whiteouts applied) to find
the interpreter the images run and the C library it links against.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias, cast

from sematic.core.errors import ConfigurationError
from sematic.packaging.layers import open_layer

# The Pythons the code that runs inside images (worker, driver, type checks, serializers)
# supports, inclusive: the ones the suite runs images of (3.10, 3.11, 3.13) or the worker's
# self-check under (3.12). A newer one is refused until it is tested.
OLDEST_PYTHON = (3, 10)
NEWEST_PYTHON = (3, 13)

# OCI architecture names to the machine names wheel tags use.
_MACHINES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "386": "i686",
    "arm": "armv7l",
}


@dataclass(frozen=True, slots=True)
class Target:
    """What one base image runs: ``linux/amd64``, CPython 3.13, glibc 2.41,
    ``/usr/bin/python3.13``."""

    os: str  # "linux"
    architecture: str  # OCI name: "amd64", "arm64"
    variant: str  # "" or e.g. "v8"
    python: tuple[int, int]  # (3, 13)
    libc: str  # "glibc" or "musl"
    libc_version: tuple[int, int]  # (2, 41); musl (1, 2)
    interpreter: str  # the interpreter's path in the image, links followed
    free_threaded: bool = False  # python3.13t

    @property
    def platform(self) -> str:
        """``linux/amd64``, ``linux/arm64/v8``."""
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def python_version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def abi(self) -> str:
        """``cp313``, or ``cp313t`` for a free-threaded build."""
        return f"cp{self.python[0]}{self.python[1]}{'t' if self.free_threaded else ''}"

    @property
    def machine(self) -> str:
        """The machine name of wheel tags: ``x86_64``, ``aarch64``."""
        return _MACHINES.get(self.architecture, self.architecture)

    @property
    def wheel_platform(self) -> str:
        """The most specific platform tag a wheel may carry: ``manylinux_2_36_x86_64``,
        ``musllinux_1_2_aarch64``."""
        family = "musllinux" if self.libc == "musl" else "manylinux"
        major, minor = self.libc_version
        return f"{family}_{major}_{minor}_{self.machine}"

    @property
    def key(self) -> str:
        """Identifies what may be shared between images: two bases with the same key take
        the same dependency layer (``cp313-manylinux_2_36_x86_64``)."""
        return f"{self.abi}-{self.wheel_platform}"

    def describe(self) -> str:
        """``CPython 3.13 (cp313) on linux/amd64 with glibc 2.41``."""
        major, minor = self.libc_version
        return (
            f"CPython {self.python_version} ({self.abi}) on {self.platform} "
            f"with {self.libc} {major}.{minor}"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record of this target; ``Target.from_json`` reads it back."""
        return {
            "os": self.os,
            "architecture": self.architecture,
            "variant": self.variant,
            "python": list(self.python),
            "libc": self.libc,
            "libc_version": list(self.libc_version),
            "interpreter": self.interpreter,
            "free_threaded": self.free_threaded,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Target:
        """The target ``to_json`` recorded; ``ConfigurationError`` if ``record`` is not one."""
        try:
            return cls(
                os=_text(record["os"]),
                architecture=_text(record["architecture"]),
                variant=_text(record["variant"]),
                python=_pair(record["python"]),
                libc=_text(record["libc"]),
                libc_version=_pair(record["libc_version"]),
                interpreter=_text(record["interpreter"]),
                free_threaded=record.get("free_threaded", False) is True,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"Not a recorded target: {record!r} ({exc!r}).") from exc


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _pair(value: object) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"expected two numbers, got {value!r}")
    major, minor = value
    if type(major) is not int or type(minor) is not int:
        raise TypeError(f"expected two integers, got {value!r}")
    return major, minor


# --- detection ---------------------------------------------------------------------------

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_LINKS = 40  # symbolic links followed in one lookup before calling it a loop (as Linux)
_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."
# Files whose bytes are kept while streaming: the C libraries (a few MB each) ...
_LIBC_FILE = re.compile(
    r"(?:usr/)?lib(?:64)?/(?:[^/]+/)?(?:libc\.so\.6|libc-\d+\.\d+\.so|ld-musl-[^/]+\.so\.1)"
)
_MAX_LIBC_BYTES = 64 << 20
# ... and the first bytes of Python binaries (their ELF header names their C library).
_PYTHON_FILE = re.compile(r"(?:[^/]+/)*bin/python[0-9.]*t?")
_ELF_HEAD_BYTES = 4096
_VERSIONED = re.compile(r"python(\d+)\.(\d+)(t?)")
_MUSL_LOADER = re.compile(r"ld-musl-[^/]+\.so\.1")
_GLIBC_FILE = re.compile(r"libc-(\d+)\.(\d+)\.so")
_GLIBC_RELEASE = re.compile(rb"GNU C Library [^\x00\n]*?release version (\d+)\.(\d+)")
_GLIBC_SYMBOL = re.compile(rb"GLIBC_(\d+)\.(\d+)")
_MUSL_VERSION = re.compile(rb"\x00(1)\.(\d{1,2})\.\d{1,2}\x00")
_DEFAULT_MUSL = (1, 2)


def detect_target(
    base: str, config: Mapping[str, Any], layers: Sequence[Path], *, python: str = "python3"
) -> Target:
    """The target of the base image ``base``: what its ``python`` runs, on which platform.

    ``config`` is the base's image config (OCI or Docker JSON); ``layers`` its layer blobs in
    order (tar, gzip-compressed or not), read once, streamed, never extracted. ``python`` is
    what the images execute: a name looked up in the image's ``PATH`` or an absolute path.
    Links are followed to the interpreter file, whose name gives the version
    (``python3.11``; ``python3.13t`` is free-threaded); a file named without a version
    (``python3``) takes it from its standard library folder (``<prefix>/lib/python3.X``),
    else from ``PYTHON_VERSION`` in the image's environment.

    Raises ``ConfigurationError``, naming the base and saying what to do, for a config
    without a Linux platform, a base without that interpreter, a Python outside
    ``OLDEST_PYTHON``..``NEWEST_PYTHON``, a base without glibc or musl, and zstd layers.
    """
    os_name, architecture, variant = _platform(base, config)
    env = _environment(config)
    root = _union(base, layers)
    interpreter, binary = _find_interpreter(base, root, python, env)
    version, free_threaded = _python_version(base, root, interpreter, env)
    if not OLDEST_PYTHON <= version <= NEWEST_PYTHON:
        raise ConfigurationError(
            f"Base image {base!r} runs Python {version[0]}.{version[1]} ({interpreter}); "
            f"sematic supports Python {_range()}. Use a base image with a supported Python, "
            'or set python = "/path/to/python3" in sematic.toml to one the image has.'
        )
    libc, libc_version = _find_libc(base, root, layers, binary)
    return Target(
        os=os_name,
        architecture=architecture,
        variant=variant,
        python=version,
        libc=libc,
        libc_version=libc_version,
        interpreter=interpreter,
        free_threaded=free_threaded,
    )


def _range() -> str:
    return "{}.{} to {}.{}".format(*OLDEST_PYTHON, *NEWEST_PYTHON)


def _platform(base: str, config: Mapping[str, Any]) -> tuple[str, str, str]:
    """``os``, ``architecture`` and ``variant`` of the config; refuses all but Linux."""
    os_name, architecture = config.get("os"), config.get("architecture")
    variant = config.get("variant") or ""
    if not (
        os_name and isinstance(os_name, str) and architecture and isinstance(architecture, str)
    ):
        raise ConfigurationError(
            f"The image config of base image {base!r} has no os or architecture "
            f"(os={os_name!r}, architecture={architecture!r}): it is malformed. "
            "Use a base image built by a standard tool (docker, buildah, kaniko)."
        )
    if not isinstance(variant, str):
        raise ConfigurationError(
            f"The image config of base image {base!r} has an invalid variant: {variant!r}."
        )
    if os_name != "linux":
        raise ConfigurationError(
            f"Base image {base!r} is for {os_name}/{architecture}; images run on Linux. "
            "Use a Linux base image."
        )
    return os_name, architecture, variant


def _environment(config: Mapping[str, Any]) -> dict[str, str]:
    """The image's environment variables (``config.Env``)."""
    inner = config.get("config") or {}
    entries = inner.get("Env") if isinstance(inner, Mapping) else None
    pairs = (entry.partition("=") for entry in entries or [] if isinstance(entry, str))
    return {key: value for key, _, value in pairs}


# --- the union filesystem of the layers --------------------------------------------------


class _Dir:
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}


class _File:
    """A regular file: where its content is (layer index; member name, None for the file's
    own path), and the bytes kept of it while streaming (all of a C library, the head of a
    Python binary), if any."""

    __slots__ = ("data", "layer", "member")

    def __init__(self, layer: int, member: str | None, data: bytes | None = None) -> None:
        self.layer, self.member, self.data = layer, member, data


class _Link:
    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target


class _Special:
    """A device node, fifo or socket: present, but never an interpreter or a library."""

    __slots__ = ()


_Node: TypeAlias = _Dir | _File | _Link | _Special


class _LinkLoopError(Exception):
    pass


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _lookup(root: _Dir, path: str) -> _Node | None:
    """The node at ``path``, links not followed."""
    node: _Node = root
    for name in _parts(path):
        if not isinstance(node, _Dir) or (child := node.children.get(name)) is None:
            return None
        node = child
    return node


def _ensure_dir(root: _Dir, path: str) -> _Dir:
    node = root
    for name in _parts(path):
        child = node.children.get(name)
        if not isinstance(child, _Dir):
            child = node.children[name] = _Dir()
        node = child
    return node


@contextlib.contextmanager
def _open_layer(base: str, index: int, path: Path) -> Iterator[tarfile.TarFile]:
    """The layer at ``path`` as a tar stream (``layers.open_layer``)."""
    try:
        stream = open_layer(path)
    except ConfigurationError as error:
        raise ConfigurationError(f"Layer {index + 1} of base image {base!r}: {error}") from None
    try:
        with stream, tarfile.open(fileobj=cast("IO[bytes]", stream), mode="r|") as tar:
            yield tar
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise ConfigurationError(
            f"Layer {index + 1} of base image {base!r} ({path.name}) is not a readable "
            f"tar: {exc}"
        ) from exc


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar stream, not kept by ``tar`` (a layer may have millions)."""
    while (member := tar.next()) is not None:
        yield member
        # Stream mode still lists every member read; forget them as we go.
        tar.members.clear()  # type: ignore[attr-defined]


def _union(base: str, layers: Sequence[Path]) -> _Dir:
    """The root folder of the image: its layers applied in order, whiteouts honoured."""
    root = _Dir()
    for index, path in enumerate(layers):
        upper, removed, opaque = _read_layer(base, index, path)
        for folder in opaque:
            if isinstance(node := _lookup(root, folder), _Dir):
                node.children.clear()
        for gone in removed:
            folder, _, name = gone.rpartition("/")
            if isinstance(node := _lookup(root, folder), _Dir):
                node.children.pop(name, None)
        _merge(root, upper)
    return root


def _merge(lower: _Dir, upper: _Dir) -> None:
    for name, node in upper.children.items():
        below = lower.children.get(name)
        if isinstance(node, _Dir) and isinstance(below, _Dir):
            _merge(below, node)
        else:
            lower.children[name] = node


def _read_layer(base: str, index: int, path: Path) -> tuple[_Dir, list[str], list[str]]:
    """One layer's own tree, the paths its whiteouts remove and the folders it makes opaque
    (both apply to the layers below only, whatever their order in the tar)."""
    upper, removed, opaque = _Dir(), [], []
    with _open_layer(base, index, path) as tar:
        for member in _members(tar):
            parts = _parts(member.name)
            if not parts or ".." in parts:
                continue
            folder, name = "/".join(parts[:-1]), parts[-1]
            if name == _OPAQUE:
                opaque.append(folder)
                _ensure_dir(upper, folder)
            elif name.startswith(_WHITEOUT):
                removed.append(f"{folder}/{name.removeprefix(_WHITEOUT)}")
            else:
                node = _node(upper, tar, member, index, "/".join(parts))
                parent = _ensure_dir(upper, folder)
                if not (isinstance(node, _Dir) and isinstance(parent.children.get(name), _Dir)):
                    parent.children[name] = node
    return upper, removed, opaque


def _node(
    upper: _Dir, tar: tarfile.TarFile, member: tarfile.TarInfo, index: int, path: str
) -> _Node:
    if member.isdir():
        return _Dir()
    if member.issym():
        return _Link(member.linkname)
    if member.islnk():
        linked = "/".join(_parts(member.linkname))
        source = _lookup(upper, linked)
        if isinstance(source, _File):
            return _File(source.layer, source.member or linked, source.data)
        return _File(index, linked)
    if not member.isreg():
        return _Special()
    data = None
    if _LIBC_FILE.fullmatch(path) and member.size <= _MAX_LIBC_BYTES:
        data = _read(tar, member, member.size)
    elif _PYTHON_FILE.fullmatch(path):
        data = _read(tar, member, _ELF_HEAD_BYTES)
    return _File(index, None, data)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, size: int) -> bytes | None:
    content = tar.extractfile(member)
    return content.read(size) if content is not None else None


def _content(base: str, layers: Sequence[Path], found: tuple[str, _File]) -> bytes | None:
    """The bytes of the file found at a path: those kept while streaming, else read again
    from its layer (streamed up to that member)."""
    path, file = found
    if file.data is not None:
        return file.data
    wanted = file.member or "/".join(_parts(path))
    with _open_layer(base, file.layer, layers[file.layer]) as tar:
        for member in _members(tar):
            if "/".join(_parts(member.name)) == wanted and member.isreg():
                return _read(tar, member, _MAX_LIBC_BYTES)
    return None


def _resolve(root: _Dir, path: str) -> tuple[str, _Node] | None:
    """The node at ``path`` with links followed (in every component) and its real path;
    None if it does not exist. Raises ``_LinkLoopError`` after ``_MAX_LINKS`` links."""
    pending = list(reversed(_parts(path)))
    names: list[str] = []
    folders: list[_Dir] = [root]
    links = 0
    while pending:
        name = pending.pop()
        if name == "..":
            if names:
                names.pop()
                folders.pop()
            continue
        child = folders[-1].children.get(name)
        if isinstance(child, _Link):
            links += 1
            if links > _MAX_LINKS:
                raise _LinkLoopError(path)
            if child.target.startswith("/"):
                del names[:], folders[1:]
            pending.extend(reversed(_parts(child.target)))
            continue
        if child is None:
            return None
        if not pending:
            return "/" + "/".join([*names, name]), child
        if not isinstance(child, _Dir):
            return None
        names.append(name)
        folders.append(child)
    return "/" + "/".join(names), folders[-1]


def _resolve_file(root: _Dir, path: str) -> tuple[str, _File] | None:
    """Like ``_resolve`` for a regular file; None for anything else, or a link loop."""
    try:
        found = _resolve(root, path)
    except _LinkLoopError:
        return None
    if found is None or not isinstance(found[1], _File):
        return None
    return found[0], found[1]


def _listing(root: _Dir, path: str) -> list[str]:
    """The names in the folder at ``path`` (links followed); empty if it is not one."""
    try:
        found = _resolve(root, path)
    except _LinkLoopError:
        return []
    return sorted(found[1].children) if found and isinstance(found[1], _Dir) else []


# --- the interpreter ---------------------------------------------------------------------


def _find_interpreter(
    base: str, root: _Dir, python: str, env: Mapping[str, str]
) -> tuple[str, _File]:
    """The interpreter file ``python`` runs in the image (its real path and node)."""
    if python.startswith("/"):
        folders, candidates = [], [python]
    elif "/" in python or not python:
        raise ConfigurationError(
            f"python = {python!r} is neither a name looked up in the image's PATH "
            '(such as "python3") nor an absolute path (such as "/usr/bin/python3").'
        )
    else:
        path = env.get("PATH", _DEFAULT_PATH)
        folders = [folder for folder in path.split(":") if folder.startswith("/")]
        candidates = [f"{folder.rstrip('/')}/{python}" for folder in folders]
    loops = []
    for candidate in candidates:
        try:
            found = _resolve(root, candidate)
        except _LinkLoopError:
            loops.append(candidate)
            continue
        if found is not None and isinstance(found[1], _File):
            return found[0], found[1]
    where = (
        f"looked for {python!r} in the folders of its PATH ({', '.join(folders) or 'none'})"
        if folders or not python.startswith("/")
        else f"{python} is not a file in it"
    )
    looping = f"; {', '.join(loops)}: a loop of symbolic links" if loops else ""
    raise ConfigurationError(
        f"Base image {base!r} has no Python interpreter: {where}{looping}. Use a base image "
        f'with Python {_range()}, or set python = "/path/to/python3" in sematic.toml.'
    )


def _python_version(
    base: str, root: _Dir, interpreter: str, env: Mapping[str, str]
) -> tuple[tuple[int, int], bool]:
    """The version of ``interpreter`` and whether it is free-threaded."""
    folder, _, name = interpreter.rpartition("/")
    prefix = folder.rpartition("/")[0]
    stdlibs = _stdlibs(root, prefix)
    if named := _VERSIONED.fullmatch(name):
        version = (int(named[1]), int(named[2]))
        versions = {found for found, _ in stdlibs.values()}
        if versions and version not in versions:
            raise ConfigurationError(
                f"Base image {base!r}: the interpreter {interpreter} is named for Python "
                f"{version[0]}.{version[1]} but the standard library next to it is for "
                f"{', '.join(sorted(stdlibs))} ({prefix}/lib). Set python in sematic.toml "
                "to the path of the interpreter the images run."
            )
        return version, bool(named[3])
    # (version, free-threaded) of each standard library holding os.py.
    complete = {(v, lib.endswith("t")) for lib, (v, has_os) in stdlibs.items() if has_os}
    if len(complete) == 1:
        return complete.pop()
    declared = _declared_version(env)
    if declared is not None and not complete:
        return declared, False
    if len(matching := {build for build in complete if build[0] == declared}) == 1:
        return matching.pop()
    raise ConfigurationError(
        f"Base image {base!r}: cannot tell the version of its interpreter {interpreter} "
        f"(standard libraries next to it: {', '.join(sorted(stdlibs)) or 'none'}; "
        f"PYTHON_VERSION in its environment: {env.get('PYTHON_VERSION', 'none')}). "
        "Set python in sematic.toml to a versioned "
        'interpreter, such as "/usr/bin/python3.11".'
    )


def _stdlibs(root: _Dir, prefix: str) -> dict[str, tuple[tuple[int, int], bool]]:
    """The standard library folders of the install at ``prefix`` (``python3.11`` in
    ``<prefix>/lib`` or ``lib64``): their versions and whether they hold ``os.py``."""
    found: dict[str, tuple[tuple[int, int], bool]] = {}
    for lib in (f"{prefix}/lib", f"{prefix}/lib64"):
        for name in _listing(root, lib):
            if matched := _VERSIONED.fullmatch(name):
                has_os = _resolve_file(root, f"{lib}/{name}/os.py") is not None
                version = (int(matched[1]), int(matched[2]))
                found[name] = (version, has_os or found.get(name, (version, False))[1])
    return found


def _declared_version(env: Mapping[str, str]) -> tuple[int, int] | None:
    """``PYTHON_VERSION=3.10.13`` of the official Python images, as (3, 10)."""
    matched = re.match(r"(\d+)\.(\d+)", env.get("PYTHON_VERSION", ""))
    return (int(matched[1]), int(matched[2])) if matched else None


# --- the C library -----------------------------------------------------------------------


def _find_libc(
    base: str, root: _Dir, layers: Sequence[Path], interpreter: _File
) -> tuple[str, tuple[int, int]]:
    """``("glibc", (2, 36))`` or ``("musl", (1, 2))``: the C library of the image."""
    musl, glibc = _find_musl(root), _find_glibc(root)
    if musl is not None and glibc is not None:
        # Both (a Debian with the musl package, an Alpine with gcompat): the interpreter's
        # ELF header names its loader.
        loader = _elf_interpreter(interpreter.data or b"") or ""
        if "ld-musl" not in loader and loader:
            musl = None
    if musl is not None:
        data = _content(base, layers, musl) or b""
        versions = [(int(m[1]), int(m[2])) for m in _MUSL_VERSION.finditer(data)]
        return "musl", max(versions, default=_DEFAULT_MUSL)
    if glibc is None:
        raise ConfigurationError(
            f"Base image {base!r}: no C library found: a base with a Python needs glibc or "
            "musl (libc.so.6 or ld-musl-*.so.1 in /lib, /lib64, /usr/lib or /usr/lib64)."
        )
    path, file = glibc
    if named := _GLIBC_FILE.fullmatch(path.rpartition("/")[2]):
        return "glibc", (int(named[1]), int(named[2]))
    version = _glibc_version(_content(base, layers, glibc) or b"")
    if version is None:
        raise ConfigurationError(
            f"Base image {base!r}: cannot tell the version of its glibc ({path})."
        )
    return "glibc", version


def _find_musl(root: _Dir) -> tuple[str, _File] | None:
    for folder in ("/lib", "/usr/lib"):
        for name in _listing(root, folder):
            if _MUSL_LOADER.fullmatch(name) and (found := _resolve_file(root, f"{folder}/{name}")):
                return found
    return None


def _find_glibc(root: _Dir) -> tuple[str, _File] | None:
    folders = [
        f"{lib}/{name}"
        for lib in ("/lib", "/usr/lib")
        for name in _listing(root, lib)
        if "-linux-" in name
    ]
    for folder in (*folders, "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        if found := _resolve_file(root, f"{folder}/libc.so.6"):
            return found
    return None


def _glibc_version(data: bytes) -> tuple[int, int] | None:
    """From the release banner of ``libc.so.6``, else its highest ``GLIBC_2.NN`` symbol."""
    if banner := _GLIBC_RELEASE.search(data):
        return int(banner[1]), int(banner[2])
    symbols = [(int(m[1]), int(m[2])) for m in _GLIBC_SYMBOL.finditer(data)]
    return max(symbols, default=None)


def _elf_interpreter(head: bytes) -> str | None:
    """The program interpreter (``PT_INTERP``) named by the start of an ELF file, if there."""
    if len(head) < 64 or head[:4] != b"\x7fELF":
        return None
    wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide:
        (table,) = struct.unpack_from(f"{order}Q", head, 0x20)
        size, count = struct.unpack_from(f"{order}HH", head, 0x36)
    else:
        (table,) = struct.unpack_from(f"{order}I", head, 0x1C)
        size, count = struct.unpack_from(f"{order}HH", head, 0x2A)
    for at in range(table, table + size * count, size):
        if at + size > len(head):
            return None
        if struct.unpack_from(f"{order}I", head, at)[0] != 3:  # PT_INTERP
            continue
        fields = (f"{order}Q", at + 8, at + 32) if wide else (f"{order}I", at + 4, at + 16)
        (offset,) = struct.unpack_from(fields[0], head, fields[1])
        (length,) = struct.unpack_from(fields[0], head, fields[2])
        raw = head[offset : offset + length]
        return raw.split(b"\0")[0].decode("latin-1") if len(raw) == length else None
    return None
