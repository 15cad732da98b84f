"""Real base images for the image-builder tests, pushed to a test registry.

Each base is built once and cached outside the repository as ONE deterministic tar of its
files, ``~/.cache/sematic-dev/base/NAME.tar`` (``SEMATIC_DEV_CACHE`` moves
``~/.cache/sematic-dev``), with its gzip-compressed layer ``NAME.tar.gz`` next to it. A file
lock (``.NAME.lock``) makes concurrent sessions wait for one build instead of each starting
their own; progress lines go to stderr. NAME ends in a version: bump it when a recipe
changes. The cached tars:

- ``bookworm-python3-v1``: ``debootstrap --variant=minbase --include=python3 bookworm``
  (Debian 12, Python 3.11, amd64: this machine's Python).
- ``trixie-python3-v1``: the same for trixie (Debian 13, Python 3.13, amd64).
- ``bookworm-minbase-v1``: bookworm minbase with no Python at all, but with the shared
  libraries a self-built CPython links to (OpenSSL, libffi, SQLite, ...).
- ``pyenv-python3.10-v1`` / ``pyenv-python3.9-v1``: a layer (not a root filesystem) holding
  this machine's pyenv CPython (``$PYENV_ROOT/versions/X.Y.Z``, kept at that path: its
  RUNPATH names it) without tests, IDLE, tkinter, ensurepip, pip, ``__pycache__``, headers,
  plus ``/usr/local/bin/python3`` and ``pythonX.Y`` links to it. On top of
  ``bookworm-minbase-v1`` it makes a ``python:X.Y-slim``-like image.
- ``bookworm-arm64-python3-v1``: ``debootstrap --foreign --arch=arm64 --include=python3``
  (first stage only, then every downloaded package unpacked with ``dpkg-deb``: nothing is
  configured; it cannot run here, it is only inspected).

Debian's mirror is the one this machine's apt sources name (``debian_mirror``); the cold
builds take a minute or so each and need that mirror.

``push_image`` assembles an OCI image layout by hand (the layers of an ``Image``, an
optional small layer of extra files, an image config with os/architecture/variant, a
manifest) and pushes it with ``skopeo copy``; ``push_base`` does that for the bookworm
Python 3.11 base; ``push_index`` pushes a multi-platform image index. ``base_images`` and
``target_bases`` (session-scoped) push the bases the packaging tests use into the session's
``registry``.

Missing tools (``debootstrap``, ``skopeo``, ``unshare``) or a missing pyenv interpreter fail
the tests that need them (never skip them): run ``scripts/setup``.

Also usable by hand: ``python -m tests.harness.images [NAME ...]`` builds (or finds) the cached
tars (default: all of them) and prints their paths.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from tests.harness.pythons import pyenv_versions
from tests.harness.registry import RegistryServer

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What python:X.Y-slim images put first: their interpreter lives in /usr/local/bin.
LOCAL_FIRST_PATH = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every entry of the packed tars carries this modification time (1970-01-01).
MTIME = 0

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_FOLDER = Path("/etc/apt/sources.list.d")

# Left out of the base: apt's package lists and caches, logs, and what debootstrap copies
# from the host (its resolver and host name). Relative to the root filesystem; the folders
# themselves are kept, emptied.
EMPTIED = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/log",
    "dev",
    "tmp",
    "var/tmp",
    "run",
)
REMOVED = (
    "etc/resolv.conf",
    "etc/hostname",
    # ldconfig's cache of inode numbers and times: the one file that differs between builds.
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
)


class BaseImageUnavailableError(RuntimeError):
    pass


class SkopeoError(RuntimeError):
    pass


def cache_dir() -> Path:
    """Where the bases live: ``$SEMATIC_DEV_CACHE/base`` or ``~/.cache/sematic-dev/base``."""
    root = os.environ.get("SEMATIC_DEV_CACHE") or Path.home() / ".cache" / "sematic-dev"
    return Path(root) / "base"


def _progress(message: str) -> None:
    print(f"[tests.harness.images] {message}", file=sys.stderr, flush=True)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise BaseImageUnavailableError(
            f"{name!r} is not installed, so the base images of the packaging tests cannot be "
            "built or pushed. Run scripts/setup (as root it installs docker-registry, skopeo, "
            "umoci, runc, debootstrap, apache2-utils and buildah)."
        )
    return found


# --- Debian's mirror, from this machine's apt sources ----------------------------------


def _is_plain_suite(suite: str) -> bool:
    """``bookworm`` or ``stable``, not ``bookworm-security``, ``bookworm-updates`` or ``./``."""
    return bool(re.fullmatch(r"[a-z]+", suite))


def _deb822_sources(text: str) -> Iterator[tuple[str, list[str]]]:
    """(URI, suites) of each enabled ``Types: deb`` stanza of a deb822 ``.sources`` file."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:  # a continuation line
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split()


def _one_line_sources(text: str) -> Iterator[tuple[str, list[str]]]:
    """(URI, [suite]) of each ``deb [OPTIONS] URI SUITE COMPONENT...`` line."""
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def debian_mirror(sources: Path = APT_SOURCES, folder: Path = APT_SOURCES_FOLDER) -> str:
    """The Debian mirror this machine's apt uses (e.g. ``http://deb.debian.org/debian``).

    Read from ``folder/*.sources`` (deb822) and ``*.list``, then ``sources``: the first
    ``deb`` URI with a plain suite (``bookworm``, not ``bookworm-security``), preferring one
    whose path ends in ``/debian``. Raises ``BaseImageUnavailableError`` if there is none.
    """
    found: list[str] = []
    for path in sorted(folder.glob("*.sources")) if folder.is_dir() else []:
        found += [
            uri
            for uri, suites in _deb822_sources(path.read_text())
            if any(_is_plain_suite(suite) for suite in suites)
        ]
    lists = [*(sorted(folder.glob("*.list")) if folder.is_dir() else []), sources]
    for path in lists:
        if path.is_file():
            found += [
                uri
                for uri, suites in _one_line_sources(path.read_text())
                if any(_is_plain_suite(suite) for suite in suites)
            ]
    found = [uri.rstrip("/") for uri in found if uri.startswith(("http://", "https://"))]
    if not found:
        raise BaseImageUnavailableError(
            f"No Debian mirror found in this machine's apt sources ({folder}/*.sources, "
            f"{folder}/*.list, {sources}): the base images are built with debootstrap from "
            "the mirror apt uses. Add a 'deb' source for a Debian suite (e.g. bookworm)."
        )
    debian = [uri for uri in found if uri.endswith("/debian")]
    return (debian or found)[0]


# --- Recipes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianRootfs:
    """A root filesystem made by ``debootstrap --variant=minbase``, cached as ``NAME.tar``.

    ``include`` lists the extra packages; ``architecture`` other than amd64 needs
    ``foreign`` (only debootstrap's first stage runs, then every downloaded package is
    unpacked with ``dpkg-deb``: nothing is configured). ``expected`` are paths the result
    must hold (checked before caching).
    """

    name: str
    suite: str
    include: tuple[str, ...] = ()
    architecture: str = "amd64"
    foreign: bool = False
    expected: tuple[str, ...] = ()


@dataclass(frozen=True)
class PyenvPython:
    """A layer with this machine's pyenv CPython ``version``, cached as ``NAME.tar``."""

    name: str
    version: str

    @property
    def prefix(self) -> Path:
        """Where the interpreter lives, here and inside the image."""
        return pyenv_versions() / self.version

    @property
    def short(self) -> str:
        """``3.10`` for ``3.10.13``."""
        return ".".join(self.version.split(".")[:2])


Recipe = DebianRootfs | PyenvPython

BOOKWORM = DebianRootfs(  # keep the name: caches made before the recipes were named stay valid
    "bookworm-python3-v1", "bookworm", ("python3",), expected=("usr/bin/python3.11",)
)
TRIXIE = DebianRootfs("trixie-python3-v1", "trixie", ("python3",), expected=("usr/bin/python3.13",))
# The shared libraries lib-dynload's modules of a CPython built on bookworm link to (ldd),
# without tk/X11: ssl, ctypes, sqlite3, bz2, lzma, zlib, readline, curses, uuid, dbm,
# pyexpat, nis.
BOOKWORM_MINBASE = DebianRootfs(
    "bookworm-minbase-v1",
    "bookworm",
    (
        *("libssl3", "libffi8", "libsqlite3-0", "libbz2-1.0", "liblzma5", "zlib1g"),
        *("libreadline8", "libncursesw6", "libuuid1", "libgdbm6", "libexpat1", "libnsl2"),
        "ca-certificates",
    ),
    expected=("usr/lib/x86_64-linux-gnu/libssl.so.3", "usr/lib/x86_64-linux-gnu/libffi.so.8"),
)
BOOKWORM_ARM64 = DebianRootfs(
    "bookworm-arm64-python3-v1",
    "bookworm",
    ("python3",),
    architecture="arm64",
    foreign=True,
    expected=("usr/bin/python3.11", "usr/lib/aarch64-linux-gnu/libc.so.6", "lib"),
)
PYENV_310 = PyenvPython("pyenv-python3.10-v1", "3.10.13")
PYENV_39 = PyenvPython("pyenv-python3.9-v1", "3.9.18")
RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (BOOKWORM, TRIXIE, BOOKWORM_MINBASE, BOOKWORM_ARM64, PYENV_310, PYENV_39)
}

# Left out of a pyenv layer, relative to its prefix ("*" matches one path component).
PYENV_LEFT_OUT = (
    "include",
    "share",
    "bin/idle*",  # entry points of what is left out below
    "bin/pip*",
    "lib/python*/test",
    "lib/python*/idlelib",
    "lib/python*/tkinter",
    "lib/python*/turtledemo",
    "lib/python*/ensurepip",
    "lib/python*/lib-dynload/_tkinter*",
    "lib/python*/site-packages/*",
)


# --- The cache -------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (created if missing); other holders wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_tar(recipe: Recipe = BOOKWORM) -> Path:
    """The cached tar of ``recipe`` (and its gzip layer next to it), built first if missing
    (under the recipe's lock). Returns the tar."""
    folder = cache_dir()
    name = recipe.name
    tar, layer = folder / f"{name}.tar", folder / f"{name}.tar.gz"
    if tar.exists() and layer.exists():
        return tar
    with _locked(folder / f".{name}.lock"):
        for partial in folder.glob(f".{name}.tar.gz.*"):  # of an interrupted compression
            partial.unlink()
        if not tar.exists():
            _build(folder, tar, recipe)
        if not layer.exists() or layer.stat().st_mtime < tar.stat().st_mtime:
            _progress(f"compressing {tar.name}")
            _gzip(tar, layer)
    return tar


def base_rootfs() -> Path:
    """The cached tar of the bookworm Python 3.11 base, built first if missing."""
    return cached_tar(BOOKWORM)


def _build(folder: Path, tar: Path, recipe: Recipe) -> None:
    """Makes the files of ``recipe`` in a scratch folder of ``folder``, packs them into
    ``tar``."""
    if isinstance(recipe, PyenvPython) and not recipe.prefix.is_dir():
        raise BaseImageUnavailableError(
            f"The pyenv interpreter {recipe.prefix} is missing, so the Python "
            f"{recipe.short} base of the packaging tests cannot be built. Install it with "
            f"`pyenv install {recipe.version}` (built with its default prefix, which the "
            "image keeps)."
        )
    # Scratch folders of an interrupted build: nobody else is building (we hold the lock).
    for stale in folder.glob(f"build-{recipe.name}-*"):
        remove_tree(stale)
    scratch = Path(tempfile.mkdtemp(prefix=f"build-{recipe.name}-", dir=folder))
    started = time.monotonic()
    try:
        tree = scratch / "rootfs"
        if isinstance(recipe, DebianRootfs):
            _debootstrap(recipe, tree, scratch / "debootstrap.log")
            _strip(tree)
        else:
            _pyenv_tree(recipe, tree)
        missing = [path for path in _expected(recipe) if not (tree / path).exists()]
        if missing:
            raise BaseImageUnavailableError(f"{recipe.name}: the build lacks {missing}")
        partial = scratch / tar.name
        pack_rootfs(tree, partial)
        partial.rename(tar)
        _progress(
            f"cached {tar} ({tar.stat().st_size / 1e6:.0f} MB) in "
            f"{time.monotonic() - started:.0f} s"
        )
    finally:
        remove_tree(scratch)


def _expected(recipe: Recipe) -> tuple[str, ...]:
    if isinstance(recipe, DebianRootfs):
        return recipe.expected
    inside = recipe.prefix.relative_to("/").as_posix()
    return (f"{inside}/bin/python{recipe.short}", f"usr/local/bin/python{recipe.short}")


def _debootstrap(recipe: DebianRootfs, rootfs: Path, log: Path) -> None:
    """Runs debootstrap for ``recipe`` into ``rootfs``, in a private mount namespace."""
    debootstrap, unshare = _tool("debootstrap"), _tool("unshare")
    if os.geteuid() != 0:
        raise BaseImageUnavailableError(
            f"Building the base {recipe.name} needs root (debootstrap). Run the tests as root "
            f"once, or copy {cache_dir()}/{recipe.name}.tar from a machine that has it."
        )
    options = ["--variant=minbase", f"--arch={recipe.architecture}"]
    if recipe.foreign:
        options.append("--foreign")
    if recipe.include:
        options.append("--include=" + ",".join(recipe.include))
    command = [
        *(unshare, "--mount", "--propagation", "private", "--"),
        *(debootstrap, *options, recipe.suite, str(rootfs), debian_mirror()),
    ]
    _progress(f"building {recipe.name} with debootstrap; this takes a minute or more")
    started = time.monotonic()
    with log.open("wb") as output:
        # A private mount namespace: whatever debootstrap mounts into the root filesystem
        # (/proc, /sys, the host's /dev in containers) vanishes with it, even on failure.
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            start_new_session=True,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise BaseImageUnavailableError(
            f"debootstrap failed ({done.returncode}) after "
            f"{time.monotonic() - started:.0f} s: {' '.join(command)}\n" + "\n".join(tail)
        )
    _progress(f"debootstrap of {recipe.name} done in {time.monotonic() - started:.0f} s")
    if recipe.foreign:
        _unpack_the_rest(rootfs)


def _unpack_the_rest(rootfs: Path) -> None:
    """Unpacks every package debootstrap's first stage downloaded into ``rootfs`` (it only
    unpacks the required ones, not ``--include``'s); none is configured. Like debootstrap,
    ``dpkg-deb --fsys-tarfile`` into ``tar --keep-directory-symlink``, so that ``/lib`` and
    the other merged-/usr links stay links. Then removes the second stage's scripts: the
    packages they would install go with apt's cache (``_strip``)."""
    dpkg_deb, tar = _tool("dpkg-deb"), _tool("tar")
    listed = (rootfs / "debootstrap" / "debpaths").read_text().splitlines()
    debs = [line.split(maxsplit=1)[1].lstrip("/") for line in listed if line.strip()]
    _progress(f"unpacking the {len(debs)} packages of the first stage")
    for deb in debs:
        with subprocess.Popen(
            [dpkg_deb, "--fsys-tarfile", str(rootfs / deb)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        ) as archive:
            unpacked = subprocess.run(
                [tar, "--extract", "--keep-directory-symlink", "--file=-", "-C", str(rootfs)],
                stdin=archive.stdout,
                capture_output=True,
                check=False,
            )
        if archive.returncode != 0 or unpacked.returncode != 0:
            raise BaseImageUnavailableError(
                f"unpacking {deb} into {rootfs} failed: {unpacked.stderr.decode(errors='replace')}"
            )
    remove_tree(rootfs / "debootstrap")


def _pyenv_tree(recipe: PyenvPython, tree: Path) -> None:
    """Copies the interpreter (minus ``PYENV_LEFT_OUT`` and ``__pycache__``) to its own path
    below ``tree`` and links ``usr/local/bin/python3`` and ``pythonX.Y`` to it."""
    _progress(f"copying {recipe.prefix} for {recipe.name}")
    source = recipe.prefix

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = PurePosixPath(Path(folder).relative_to(source).as_posix())
        left_out = {name for name in names if name == "__pycache__"}
        for name in names:
            path = relative / name  # PurePosixPath(".") / "x" is "x"
            if any(
                path.match(pattern) and len(path.parts) == len(PurePosixPath(pattern).parts)
                for pattern in PYENV_LEFT_OUT
            ):
                left_out.add(name)
        return left_out

    inside = tree / source.relative_to("/")
    shutil.copytree(source, inside, symlinks=True, ignore=ignore)
    # The folders above it as in Debian: /root private to root, the others 0755.
    for parent in inside.relative_to(tree).parents:
        if str(parent) != ".":
            os.chmod(tree / parent, 0o700 if str(parent) == "root" else 0o755)
    bin_folder = tree / "usr" / "local" / "bin"
    bin_folder.mkdir(parents=True)
    for folder in (tree / "usr", tree / "usr" / "local", bin_folder):
        os.chmod(folder, 0o755)
    target = f"{source}/bin/python{recipe.short}"
    for name in (f"python{recipe.short}", "python3"):
        (bin_folder / name).symlink_to(target)


def remove_tree(path: Path) -> None:
    """Removes ``path``, refusing if anything is mounted below it (it would delete through)."""
    inside = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        mounted = [line.split()[4] for line in mounts if line.split()[4].startswith(inside)]
    if mounted:
        raise RuntimeError(f"not removing {path}: mounted below it: {mounted}")
    shutil.rmtree(path, ignore_errors=True)


def _strip(rootfs: Path) -> None:
    """Removes what must not go into the layer: caches, logs, device nodes, host files."""
    for relative in EMPTIED:
        folder = rootfs / relative
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                # Keep apt's folder layout (apt wants e.g. lists/partial); drop its files.
                for inner in sorted(entry.rglob("*"), reverse=True):
                    if not inner.is_dir() or inner.is_symlink():
                        inner.unlink()
            else:
                entry.unlink()
    for relative in REMOVED:
        (rootfs / relative).unlink(missing_ok=True)
    _forget_password_dates(rootfs / "etc" / "shadow")


def _forget_password_dates(shadow: Path) -> None:
    """Empties the third field of each ``/etc/shadow`` entry, the day of the last password
    change, which is the day of the build (so two builds on different days would differ).
    Empty means that password aging is off; none of these accounts has a password."""
    if not shadow.is_file():
        return
    lines = []
    for line in shadow.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2:
            fields[2] = ""
        lines.append(":".join(fields))
    mode = stat.S_IMODE(shadow.stat().st_mode)
    shadow.write_text("".join(f"{line}\n" for line in lines))
    shadow.chmod(mode)


def pack_rootfs(rootfs: Path, output: Path) -> None:
    """Packs ``rootfs`` into a deterministic tar at ``output``.

    Entries are sorted by path (a folder before its contents), named relative to the root
    (``etc/passwd``), with modification time ``MTIME``, numeric owners as in ``rootfs`` (no
    user or group names) and their permission bits. Hard links stay hard links (the first
    path in sorted order carries the content), symbolic links stay links. Device nodes,
    fifos and sockets are left out; so are extended attributes.
    """
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in _walk(rootfs):
            info = os.lstat(path)
            name = path.relative_to(rootfs).as_posix()
            entry = tarfile.TarInfo(name)
            entry.mode = stat.S_IMODE(info.st_mode)
            entry.uid, entry.gid = info.st_uid, info.st_gid
            entry.uname = entry.gname = ""
            entry.mtime = MTIME
            if stat.S_ISDIR(info.st_mode):
                entry.type = tarfile.DIRTYPE
                tar.addfile(entry)
            elif stat.S_ISLNK(info.st_mode):
                entry.type = tarfile.SYMTYPE
                entry.linkname = os.readlink(path)
                tar.addfile(entry)
            elif stat.S_ISREG(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if info.st_nlink > 1 and key in seen:
                    entry.type = tarfile.LNKTYPE
                    entry.linkname = seen[key]
                    tar.addfile(entry)
                    continue
                seen[key] = name
                entry.size = info.st_size
                with path.open("rb") as content:
                    tar.addfile(entry, content)
            # Anything else (device nodes, fifos, sockets) cannot go into a layer.


def _walk(root: Path) -> Iterator[Path]:
    """Every path below ``root`` (not ``root`` itself), sorted, each folder before its contents."""
    for entry in sorted(os.scandir(root), key=lambda item: item.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)


def _gzip(source: Path, target: Path) -> None:
    """Deterministic gzip (no name, time 0 in the header) of ``source`` at ``target``."""
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    with (
        source.open("rb") as raw,
        partial.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz,
    ):
        shutil.copyfileobj(raw, gz, 1 << 20)
    partial.rename(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as content:
        while chunk := content.read(1 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


@dataclass(frozen=True)
class Layer:
    """A gzip-compressed layer: its file, its ``digest`` and ``size`` (of the compressed
    blob) and its ``diff_id`` (the digest of the uncompressed tar)."""

    path: Path
    digest: str
    size: int
    diff_id: str


@functools.cache
def cached_layer(recipe: Recipe = BOOKWORM) -> Layer:
    """The layer of ``recipe`` (built first if missing); digests computed once per session."""
    tar = cached_tar(recipe)
    layer = tar.with_name(f"{tar.name}.gz")
    return Layer(layer, _sha256(layer), layer.stat().st_size, _sha256(tar))


def base_layer() -> Layer:
    """The layer of the bookworm Python 3.11 base."""
    return cached_layer(BOOKWORM)


@dataclass(frozen=True)
class Platform:
    """What an image runs on, as its config and an image index say it."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The ``platform`` object of an image index (and the config's same fields)."""
        fields = {"architecture": self.architecture, "os": self.os}
        return fields | ({"variant": self.variant} if self.variant else {})


AMD64 = Platform()
ARM64 = Platform("arm64", variant="v8")


@dataclass(frozen=True)
class Image:
    """What a base image is made of: its layers' recipes (bottom first), its environment
    (``PATH`` included), its command and its platform."""

    recipes: tuple[Recipe, ...]
    env: Mapping[str, str] = field(default_factory=lambda: {"PATH": PATH.split("=", 1)[1]})
    cmd: tuple[str, ...] = ("python3",)
    platform: Platform = AMD64

    def layers(self) -> list[Layer]:
        """The cached layers, built first if missing."""
        return [cached_layer(recipe) for recipe in self.recipes]


def _pyenv_image(recipe: PyenvPython) -> Image:
    return Image(
        (BOOKWORM_MINBASE, recipe),
        env={"PATH": LOCAL_FIRST_PATH.split("=", 1)[1], "PYTHON_VERSION": recipe.version},
    )


PY311 = Image((BOOKWORM,))
PY313 = Image((TRIXIE,))
PY310 = _pyenv_image(PYENV_310)
PY39 = _pyenv_image(PYENV_39)
NO_PYTHON = Image((BOOKWORM_MINBASE,), cmd=("/bin/bash",))
PY311_ARM64 = Image((BOOKWORM_ARM64,), platform=ARM64)


def _files_layer(files: dict[str, bytes], folder: Path) -> Layer:
    """A layer holding ``files`` (absolute paths inside the image), with their folders."""
    raw = io.BytesIO()
    folders = sorted(
        {str(parent) for name in files for parent in PurePosixPath(name.lstrip("/")).parents}
        - {"."}
    )
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in folders:
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(entry)
        for name, content in sorted(files.items()):
            entry = tarfile.TarInfo(name.lstrip("/"))
            entry.mode, entry.mtime, entry.size = 0o644, MTIME, len(content)
            tar.addfile(entry, io.BytesIO(content))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, mtime=0)
    digest = f"sha256:{hashlib.sha256(compressed).hexdigest()}"
    path = folder / digest.removeprefix("sha256:")
    path.write_bytes(compressed)
    diff_id = f"sha256:{hashlib.sha256(uncompressed).hexdigest()}"
    return Layer(path, digest, len(compressed), diff_id)


def _blob(layout: Path, content: bytes) -> tuple[str, int]:
    """Stores ``content`` as a blob of the OCI layout; returns its digest and size."""
    digest = hashlib.sha256(content).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(content)
    return f"sha256:{digest}", len(content)


def _link_blob(layout: Path, layer: Layer) -> None:
    """Puts ``layer`` into the layout's blobs (a hard link when possible: no copy)."""
    target = layout / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    if target.exists():
        return
    try:
        os.link(layer.path, target)
    except OSError:
        shutil.copyfile(layer.path, target)


def _image_manifest(
    layout: Path, image: Image, extra_files: dict[str, bytes], env: Mapping[str, str]
) -> dict[str, object]:
    """Writes the blobs of ``image`` (plus a layer of ``extra_files``, if any, and ``env``
    added to its environment) into ``layout``; returns the manifest's descriptor."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layers = image.layers()
    if extra_files:
        layers.append(_files_layer(extra_files, layout / "blobs" / "sha256"))
    for layer in layers:
        _link_blob(layout, layer)
    environment = {**image.env, **env}
    config = {
        **image.platform.as_dict(),
        "config": {
            "Env": [
                f"PATH={environment.pop('PATH')}",
                *(f"{key}={value}" for key, value in sorted(environment.items())),
            ],
            "Cmd": list(image.cmd),
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created_by": f"tests/harness/images.py: layer {i}"} for i in range(len(layers))
        ],
    }
    config_digest, config_size = _blob(layout, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": LAYER, "digest": layer.digest, "size": layer.size} for layer in layers
        ],
    }
    digest, size = _blob(layout, _canonical(manifest))
    return {"mediaType": MANIFEST, "digest": digest, "size": size}


def _write_layout(layout: Path, tag: str, descriptor: dict[str, object]) -> None:
    """Writes the layout's ``index.json`` naming ``descriptor`` ``tag``, and ``oci-layout``."""
    named = {**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout / "index.json").write_bytes(_canonical({"schemaVersion": 2, "manifests": [named]}))
    (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))


def oci_layout(
    layout: Path,
    tag: str,
    *,
    extra_files: dict[str, bytes],
    env: Mapping[str, str],
    image: Image = PY311,
) -> None:
    """Writes an OCI image layout at ``layout`` holding one image tagged ``tag``: the layers
    of ``image``, a layer of ``extra_files`` (if any), and a config for the image's platform
    with its environment plus ``env`` and its command."""
    _write_layout(layout, tag, _image_manifest(layout, image, extra_files, env))


def oci_index_layout(layout: Path, tag: str, images: Sequence[Image]) -> None:
    """Writes an OCI image layout at ``layout`` whose ``tag`` is an image index listing
    ``images``, each with its platform."""
    manifests = [
        {**_image_manifest(layout, image, {}, {}), "platform": image.platform.as_dict()}
        for image in images
    ]
    digest, size = _blob(
        layout, _canonical({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})
    )
    _write_layout(layout, tag, {"mediaType": INDEX, "digest": digest, "size": size})


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def skopeo(arguments: list[str], scratch: Path, *, timeout: float = 600) -> None:
    """Runs ``skopeo ARGUMENTS`` (no signature policy); raises with its output on failure.

    Its temporary files go to ``scratch``, and so does its blob-info cache (which, as root,
    it would otherwise keep in /var/lib/containers/cache): ``_CONTAINERS_ROOTLESS_UID`` makes
    it look for that cache under ``XDG_DATA_HOME``. Host credentials are not read
    (``REGISTRY_AUTH_FILE`` points at an empty file in ``scratch``).
    """
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)
    auth = scratch / "auth.json"
    if not auth.exists():
        auth.write_text("{}")
    environment = {
        **os.environ,
        "_CONTAINERS_ROOTLESS_UID": str(os.geteuid() or 65534),
        "XDG_DATA_HOME": str(scratch / "data"),
        "REGISTRY_AUTH_FILE": str(auth),
    }
    command = [_tool("skopeo"), "--insecure-policy", "--tmpdir", str(scratch / "tmp"), *arguments]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SkopeoError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def _copy(
    registry: RegistryServer,
    layout: Path,
    tag: str,
    reference: str,
    scratch: Path,
    *,
    everything: bool = False,
) -> None:
    """``skopeo copy`` of the layout's ``tag`` to ``reference`` (``--all`` with
    ``everything``: an index and every image it lists)."""
    credentials = (
        ["--dest-creds", f"{registry.username}:{registry.password}"]
        if registry.username is not None
        else ["--dest-no-creds"]
    )
    skopeo(
        [
            *("copy", "--dest-tls-verify=false", *credentials),
            *(["--all"] if everything else []),
            *(f"oci:{layout}:{tag}", f"docker://{reference}"),
        ],
        scratch,
    )


def push_image(
    registry: RegistryServer,
    repository: str,
    tag: str,
    image: Image,
    *,
    extra_files: dict[str, bytes] = {},  # noqa: B006 (never mutated)
    env: Mapping[str, str] = {},
) -> str:
    """Pushes ``image`` (plus a layer of ``extra_files`` and ``env`` added to its
    environment) to ``registry`` as ``REPOSITORY:TAG``; returns ``ADDRESS/REPOSITORY:TAG``."""
    reference = f"{registry.address}/{repository}:{tag}"
    with tempfile.TemporaryDirectory(prefix="sematic-push-") as folder:
        layout = Path(folder) / "layout"
        oci_layout(layout, tag, extra_files=extra_files, env=env, image=image)
        _copy(registry, layout, tag, reference, Path(folder) / "skopeo")
    return reference


def push_base(
    registry: RegistryServer,
    repository: str,
    tag: str,
    *,
    extra_files: dict[str, bytes] = {},  # noqa: B006 (never mutated)
    env: Mapping[str, str] = {},
    image: Image = PY311,
) -> str:
    """Pushes a base image (by default Debian bookworm with python3), plus ``extra_files``
    and ``env``, to ``registry`` as ``REPOSITORY:TAG``; returns its reference
    ``ADDRESS/REPOSITORY:TAG``."""
    return push_image(registry, repository, tag, image, extra_files=extra_files, env=env)


def push_index(registry: RegistryServer, repository: str, tag: str, images: Sequence[Image]) -> str:
    """Pushes a multi-platform OCI image index listing ``images`` (one per platform) and the
    images themselves as ``REPOSITORY:TAG``; returns ``ADDRESS/REPOSITORY:TAG``."""
    platforms = [image.platform for image in images]
    if len(set(platforms)) != len(platforms):
        raise ValueError(f"an image index lists one image per platform, got {platforms}")
    reference = f"{registry.address}/{repository}:{tag}"
    with tempfile.TemporaryDirectory(prefix="sematic-push-") as folder:
        layout = Path(folder) / "layout"
        oci_index_layout(layout, tag, images)
        _copy(registry, layout, tag, reference, Path(folder) / "skopeo", everything=True)
    return reference


def push_test_bases(registry: RegistryServer) -> dict[str, str]:
    """Pushes the two test bases to ``registry`` as ``base/python:default`` (Debian bookworm,
    Python 3.11: this machine's) and ``base/python:cuda`` (Debian trixie, Python 3.13);
    returns their references by tag.

    Each has ``/etc/sematic-base`` (its tag and a newline) and ``SEMATIC_TEST_BASE`` (its
    tag) on top. ``cuda`` is a stand-in for a CUDA image: no GPU nor CUDA here, but like a
    real CUDA base it carries another Python than the default one, so that a builder which
    copies files compiled for the host's Python into it is caught.
    """
    return {
        name: push_image(
            registry,
            "base/python",
            name,
            image,
            extra_files={"/etc/sematic-base": f"{name}\n".encode()},
            env={"SEMATIC_TEST_BASE": name},
        )
        for name, image in (("default", PY311), ("cuda", PY313))
    }


def push_target_bases(registry: RegistryServer) -> dict[str, str]:
    """Pushes one base per kind of target the builder must handle to ``registry`` under
    ``base/targets``; returns their references by tag (see ``target_bases``)."""
    images = {
        "py311": PY311,
        "py313": PY313,
        "py310": PY310,
        "py39": PY39,
        "nopython": NO_PYTHON,
        "arm64": PY311_ARM64,
    }
    pushed = {
        tag: push_image(registry, "base/targets", tag, image) for tag, image in images.items()
    }
    pushed["multi"] = push_index(registry, "base/targets", "multi", [PY311, PY311_ARM64])
    return pushed


def _pushed(
    push: Callable[[RegistryServer], dict[str, str]], registry: RegistryServer
) -> dict[str, str]:
    """``push(registry)``, failing the test (not erroring it) if a base cannot be made."""
    try:
        return push(registry)
    except (BaseImageUnavailableError, SkopeoError) as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def base_images(registry: RegistryServer) -> dict[str, str]:
    """Two real bases in ``registry``, by tag: ``default`` (``base/python:default``: Debian
    bookworm, Python 3.11, the same as this machine's) and ``cuda`` (``base/python:cuda``:
    Debian trixie, Python 3.13).

    They differ by ``/etc/sematic-base`` (``default`` or ``cuda``, with a newline), the
    environment variable ``SEMATIC_TEST_BASE`` and their Python. The ``cuda`` one is only a
    stand-in for a CUDA image: there is no GPU (nor CUDA) here; what it shares with real
    CUDA bases is a Python other than the default base's.
    """
    return _pushed(push_test_bases, registry)


@pytest.fixture(scope="session")
def target_bases(registry: RegistryServer) -> dict[str, str]:
    """Real bases of every kind the builder meets, in ``registry`` as ``base/targets:TAG``,
    by tag:

    - ``py311``: Debian bookworm, Python 3.11 (this machine's), amd64;
    - ``py313``: Debian trixie, Python 3.13, amd64;
    - ``py310``: like ``python:3.10-slim``: bookworm minbase plus a CPython 3.10.13 in
      ``$PYENV_ROOT/versions/3.10.13``, linked from ``/usr/local/bin/python3``; its env has
      ``PYTHON_VERSION=3.10.13`` and ``/usr/local/bin`` first in ``PATH``;
    - ``py39``: the same with CPython 3.9.18 (a Python Sematic refuses);
    - ``nopython``: bookworm minbase with no Python at all (command ``/bin/bash``);
    - ``arm64``: Debian bookworm with Python 3.11 for linux/arm64/v8 (debootstrap's first
      stage only: it cannot run here, only be inspected);
    - ``multi``: an OCI image index: linux/amd64 -> ``py311``, linux/arm64/v8 -> ``arm64``.
    """
    return _pushed(push_target_bases, registry)


def main() -> None:
    """Builds (or finds) the cached tars named on the command line, or all; prints them."""
    parser = argparse.ArgumentParser(description="Builds the cached base tars.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(RECIPES)}")
    names = parser.parse_args().names or list(RECIPES)
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown {unknown}; known: {', '.join(RECIPES)}")
    for name in names:
        print(cached_tar(RECIPES[name]), flush=True)


if __name__ == "__main__":
    main()
