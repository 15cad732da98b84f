"""Real base images with Python for the image-builder tests, pushed to a test registry.

The base is Debian bookworm (``debootstrap --variant=minbase --include=python3``), built once
and cached outside the repository as ONE deterministic tar of its root filesystem,
``~/.cache/sematic-dev/base/bookworm-python3-v1.tar`` (``SEMATIC_DEV_CACHE`` moves
``~/.cache/sematic-dev``), with its gzip-compressed layer next to it. The cold build takes
minutes (Debian's mirror must be reachable); a file lock makes concurrent sessions wait for
one build instead of each starting their own.

``push_base`` assembles an OCI image layout by hand (that layer, an optional small layer of
extra files, an image config and a manifest) and pushes it with ``skopeo copy``.
``base_images`` (session-scoped) pushes the two bases the packaging tests use into the
session's ``registry``.

Missing tools (``debootstrap``, ``skopeo``, ``unshare``) fail the tests that need them
(never skip them): run ``scripts/setup``.

Also usable by hand: ``python -m tests.images`` builds (or finds) the cached base and prints
its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tests.registry import RegistryServer

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
NAME = f"{SUITE}-python3-v1"  # bump the version when the recipe below changes
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every entry of the packed tars carries this modification time (1970-01-01).
MTIME = 0

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

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
    """Where the base lives: ``$SEMATIC_DEV_CACHE/base`` or ``~/.cache/sematic-dev/base``."""
    root = os.environ.get("SEMATIC_DEV_CACHE") or Path.home() / ".cache" / "sematic-dev"
    return Path(root) / "base"


def _progress(message: str) -> None:
    print(f"[tests.images] {message}", file=sys.stderr, flush=True)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise BaseImageUnavailableError(
            f"{name!r} is not installed, so the base images of the packaging tests cannot be "
            "built or pushed. Run scripts/setup (as root it installs docker-registry, skopeo, "
            "umoci, runc, debootstrap, apache2-utils and buildah)."
        )
    return found


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


def base_rootfs() -> Path:
    """The cached base tar (and its gzip layer), built first if missing. Returns the tar."""
    folder = cache_dir()
    tar, layer = folder / f"{NAME}.tar", folder / f"{NAME}.tar.gz"
    if tar.exists() and layer.exists():
        return tar
    with _locked(folder / f".{NAME}.lock"):
        for partial in folder.glob(f".{NAME}.tar.gz.*"):  # of an interrupted compression
            partial.unlink()
        if not tar.exists():
            _build(folder, tar)
        if not layer.exists() or layer.stat().st_mtime < tar.stat().st_mtime:
            _progress(f"compressing {tar.name}")
            _gzip(tar, layer)
    return tar


def _build(folder: Path, tar: Path) -> None:
    """Runs debootstrap in a scratch folder of ``folder``, strips and packs it into ``tar``."""
    debootstrap, unshare = _tool("debootstrap"), _tool("unshare")
    if os.geteuid() != 0:
        raise BaseImageUnavailableError(
            f"Building the base image ({tar}) needs root (debootstrap). Run the tests as root "
            "once, or copy that file from a machine that has it."
        )
    # Scratch folders of an interrupted build: nobody else is building (we hold the lock).
    for stale in folder.glob(f"build-{NAME}-*"):
        remove_tree(stale)
    scratch = Path(tempfile.mkdtemp(prefix=f"build-{NAME}-", dir=folder))
    try:
        rootfs, log = scratch / "rootfs", scratch / "debootstrap.log"
        command = [
            *(unshare, "--mount", "--propagation", "private", "--"),
            *(debootstrap, "--variant=minbase", "--include=python3", SUITE, str(rootfs), MIRROR),
        ]
        _progress(f"building the base image with debootstrap ({SUITE}); this takes minutes")
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
        _progress(f"debootstrap done in {time.monotonic() - started:.0f} s; packing")
        _strip(rootfs)
        partial = scratch / tar.name
        pack_rootfs(rootfs, partial)
        partial.rename(tar)
        _progress(f"cached {tar} ({tar.stat().st_size / 1e6:.0f} MB)")
    finally:
        remove_tree(scratch)


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
def base_layer() -> Layer:
    """The base's layer (built first if missing); digests computed once per session."""
    tar = base_rootfs()
    layer = tar.with_name(f"{tar.name}.gz")
    return Layer(layer, _sha256(layer), layer.stat().st_size, _sha256(tar))


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


def oci_layout(
    layout: Path, tag: str, *, extra_files: dict[str, bytes], env: dict[str, str]
) -> None:
    """Writes an OCI image layout at ``layout`` holding one image tagged ``tag``: the base
    layer, a layer of ``extra_files`` (if any), and a config for linux/amd64 with ``PATH``
    and ``env`` in its environment and ``python3`` as its command."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layers = [base_layer()]
    if extra_files:
        layers.append(_files_layer(extra_files, layout / "blobs" / "sha256"))
    for layer in layers:
        _link_blob(layout, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [PATH, *(f"{key}={value}" for key, value in sorted(env.items()))],
            "Cmd": ["python3"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": f"tests/images.py: layer {i}"} for i in range(len(layers))],
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
    manifest_digest, manifest_size = _blob(layout, _canonical(manifest))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_bytes(_canonical(index))
    (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))


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


def push_base(
    registry: RegistryServer,
    repository: str,
    tag: str,
    *,
    extra_files: dict[str, bytes] = {},  # noqa: B006 (never mutated)
    env: dict[str, str] = {},  # noqa: B006 (never mutated)
) -> str:
    """Pushes a base image (Debian bookworm with python3, plus ``extra_files`` and ``env``)
    to ``registry`` as ``REPOSITORY:TAG``; returns its reference ``ADDRESS/REPOSITORY:TAG``.
    """
    reference = f"{registry.address}/{repository}:{tag}"
    with tempfile.TemporaryDirectory(prefix="sematic-push-") as folder:
        layout = Path(folder) / "layout"
        oci_layout(layout, tag, extra_files=extra_files, env=env)
        credentials = (
            ["--dest-creds", f"{registry.username}:{registry.password}"]
            if registry.username is not None
            else ["--dest-no-creds"]
        )
        skopeo(
            [
                *("copy", "--dest-tls-verify=false", *credentials),
                *(f"oci:{layout}:{tag}", f"docker://{reference}"),
            ],
            Path(folder) / "skopeo",
        )
    return reference


def push_test_bases(registry: RegistryServer) -> dict[str, str]:
    """Pushes the two test bases to ``registry``; returns their references by tag."""
    return {
        name: push_base(
            registry,
            "base/python",
            name,
            extra_files={"/etc/sematic-base": f"{name}\n".encode()},
            env={"SEMATIC_TEST_BASE": name},
        )
        for name in ("default", "cuda")
    }


@pytest.fixture(scope="session")
def base_images(registry: RegistryServer) -> dict[str, str]:
    """Two real bases in ``registry``, by tag: ``default`` (``base/python:default``) and
    ``cuda`` (``base/python:cuda``).

    Both are Debian bookworm with python3; they differ by ``/etc/sematic-base`` (``default``
    or ``cuda``, with a newline) and the environment variable ``SEMATIC_TEST_BASE``. The
    ``cuda`` one is only a stand-in for a CUDA image: there is no GPU (nor CUDA) here, and
    the tests only need two distinguishable bases.
    """
    try:
        return push_test_bases(registry)
    except (BaseImageUnavailableError, SkopeoError) as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


if __name__ == "__main__":
    print(base_rootfs())
