"""``sematic build --check``: run each built image's worker self-check, with runc, in seconds.

For one image (``check_image``): read its manifest and config from the registry; skip it
when this machine cannot run it (another platform, no runc, not root); else take its layer
blobs (from the builder's caches, or downloaded into ``CACHE/base-blobs``), unpack them in
order into a fresh root filesystem (on /dev/shm when it has room: a tmpfs), write a runc
bundle whose process is the image's entry point with ``--self-check``, run it with a
timeout and read the JSON line it prints (see ``sematic.worker.self_check``). The
container gets its own PID, IPC, UTS, mount and network namespaces (loopback only: the
check needs no network) and its own cgroup; it is always deleted and the bundle removed.

Unpacking follows the OCI layer rules: whiteouts (``.wh.NAME``) remove what lower layers
put there, opaque whiteouts (``.wh..wh..opq``) empty a folder of them; modes, owners,
symbolic and hard links are kept; an entry whose path is absolute, climbs with ``..``, or
would reach outside the root filesystem through a symbolic link is refused.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import platform
import resource
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from sematic.core.errors import ConfigurationError
from sematic.packaging.contents import WORKER
from sematic.packaging.layers import cached_blob, open_layer
from sematic.packaging.reference import ImageReference
from sematic.packaging.registry import RegistryClient

SELF_CHECK = "--self-check"
# Container ids, bundle, state and cgroup folders all start with this.
PREFIX = "sematic-check-"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# platform.machine() to OCI architecture names.
_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_OUTPUT_TAIL = 2000
_MAX_LINK_HOPS = 40
_TAR_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What checking one image gave. ``skipped`` says why it was not run (then ``ok`` is
    False); ``output`` is the self-check's JSON line, or the end of what went wrong."""

    image: str
    ok: bool
    skipped: str | None
    seconds: float
    output: str
    unpack_seconds: float = 0.0
    run_seconds: float = 0.0

    def report(self) -> dict[str, Any] | None:
        """The self-check's JSON report, when it printed one."""
        return _last_json(self.output)


def host_platform() -> str:
    """This machine as an OCI platform: ``linux/amd64``."""
    machine = platform.machine().lower()
    return f"{sys.platform.rstrip('0123456789')}/{_ARCHITECTURES.get(machine, machine)}"


def find_runc() -> str | None:
    """runc's path: on PATH, or in /usr/sbin or /sbin (often not on a user's PATH)."""
    return shutil.which("runc") or shutil.which("runc", path="/usr/sbin:/sbin")


def skip_reason(image_platform: str, runc: str | None) -> str | None:
    """Why an image of ``image_platform`` cannot be checked here, or None when it can."""
    here = host_platform()
    if image_platform != here:
        return f"{image_platform} cannot run on this {here} machine"
    if runc is None:
        return "runc not found: install runc to check images"
    if os.geteuid() != 0:
        return "checking images runs them with runc, which needs root: run the check as root"
    return None


def check_images(
    registry: RegistryClient, images: Iterable[str], *, cache: Path, timeout: float = 120.0
) -> tuple[CheckResult, ...]:
    """Checks each of ``images`` (``REGISTRY/REPOSITORY@DIGEST``, as ``sematic build``
    reports them; all in ``registry``), one after the other."""
    results = []
    for image in images:
        reference = ImageReference.parse(image)
        if reference.digest is None:
            raise ConfigurationError(f"{image!r} names no digest: check images by digest")
        results.append(
            check_image(
                registry, reference.repository, reference.digest, cache=cache, timeout=timeout
            )
        )
    return tuple(results)


def check_image(
    registry: RegistryClient,
    repository: str,
    digest: str,
    *,
    cache: Path,
    timeout: float = 120.0,
) -> CheckResult:
    """Runs the worker self-check of ``repository@digest`` in a runc container."""
    started = time.perf_counter()
    image = f"{registry.registry}/{repository}@{digest}"
    architecture = host_platform().split("/")[1]
    manifest = json.loads(
        registry.get_image_manifest(repository, digest, architecture=architecture).body
    )
    config = json.loads(registry.get_blob(repository, manifest["config"]["digest"]))
    runc = find_runc()
    reason = skip_reason(_image_platform(config), runc)
    if reason is not None or runc is None:
        return CheckResult(image, False, reason, time.perf_counter() - started, "")
    settings: dict[str, Any] = config.get("config") or {}
    if not settings.get("Entrypoint"):
        output = f"{image} has no entry point: it was not built by sematic build (want {WORKER})"
        return CheckResult(image, False, None, time.perf_counter() - started, output)
    layers: list[dict[str, Any]] = manifest["layers"]
    sizes = sum(int(layer.get("size", 0)) for layer in layers)
    bundle = Path(tempfile.mkdtemp(prefix=PREFIX, dir=_bundle_parent(cache, sizes)))
    try:
        blobs = [cached_blob(registry, repository, str(layer["digest"]), cache) for layer in layers]
        ok, output, unpacked, ran = _unpack_and_run(runc, bundle, blobs, settings, timeout)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    return CheckResult(image, ok, None, time.perf_counter() - started, output, unpacked, ran)


def _unpack_and_run(
    runc: str, bundle: Path, blobs: list[Path], settings: dict[str, Any], timeout: float
) -> tuple[bool, str, float, float]:
    """Unpacks ``blobs`` into ``bundle/rootfs`` and runs the self-check there:
    (ok, output, seconds unpacking, seconds running)."""
    started = time.perf_counter()
    rootfs = bundle / "rootfs"
    try:
        unpack_layers(blobs, rootfs)
    except ConfigurationError as error:
        return False, str(error), time.perf_counter() - started, 0.0
    unpacked = time.perf_counter() - started
    entrypoint = [str(arg) for arg in settings["Entrypoint"]]
    env = _environment(settings.get("Env") or [])
    missing = _missing_program(rootfs, entrypoint[0], env)
    if missing is not None:
        return False, missing, unpacked, 0.0
    ok, output, ran = _run(runc, bundle, [*entrypoint, SELF_CHECK], env, settings, timeout)
    return ok, output, unpacked, ran


def _image_platform(config: dict[str, Any]) -> str:
    parts = (config.get("os") or "linux", config.get("architecture") or "amd64")
    return "/".join(str(p) for p in parts)


def _bundle_parent(cache: Path, compressed: int) -> Path:
    """/dev/shm when it is there with room for the unpacked image (guessed at four times
    its compressed size), else ``CACHE/check``."""
    shm = Path("/dev/shm")
    room = 4 * compressed + (64 << 20)
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > room:
        return shm
    folder = cache / "check"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- unpacking ------------------------------------------------------------------------------


def unpack_layers(blobs: Iterable[Path], rootfs: Path) -> None:
    """Unpacks the layer blobs (tar, gzip-, bzip2- or xz-compressed tar), in order, into
    ``rootfs`` (created), applying whiteouts. Raises ConfigurationError for a layer that
    cannot be read or would write outside ``rootfs``."""
    rootfs.mkdir(mode=0o755, parents=True, exist_ok=True)
    for blob in blobs:
        try:
            with open_layer(blob) as tar_stream:
                _unpack_layer(tar_stream, _Root(str(rootfs)))
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError) as error:
            raise ConfigurationError(
                f"cannot unpack layer {blob.name}: {type(error).__name__}: {error}"
            ) from error


class _Root:
    """Paths below a root folder, symbolic links resolved as if it were ``/`` (so that no
    link leads outside it); resolved folders are remembered until a link or folder changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._folders: dict[tuple[str, ...], str] = {}

    def resolve(self, parts: Sequence[str]) -> str:
        """The real path of ``PARTS`` below the root, every component's link followed."""
        key = tuple(parts)
        known = self._folders.get(key)
        if known is None:
            known = self._folders[key] = self._walk(parts)
        return known

    def changed(self) -> None:
        """A link or folder was made or removed: forget what was resolved."""
        self._folders.clear()

    def _walk(self, parts: Sequence[str]) -> str:
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.path, *resolved, part)
            if os.path.islink(candidate):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise ConfigurationError(f"too many symbolic links below /{'/'.join(parts)}")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            resolved.append(part)
        return os.path.join(self.path, *resolved)


def _inside(rootfs: Path, parts: Sequence[str]) -> Path:
    return Path(_Root(str(rootfs)).resolve(parts))


def _unpack_layer(raw: io.BufferedIOBase, root: _Root) -> None:
    written: set[str] = set()  # what this layer put: an opaque whiteout keeps those
    with tarfile.open(fileobj=cast("IO[bytes]", raw), mode="r|") as tar:
        for member in tar:
            parts = _member_parts(member.name)
            if not parts:
                continue  # the root itself
            leaf = parts[-1]
            parent = root.resolve(parts[:-1])
            if leaf == _OPAQUE:
                _empty_folder(parent, written, root)
            elif leaf.startswith(_WHITEOUT):
                _remove(os.path.join(parent, leaf.removeprefix(_WHITEOUT)), root)
            else:
                target = os.path.join(parent, leaf)
                _extract(tar, member, target, root)
                written.add(target)


def _member_parts(name: str) -> list[str]:
    """The path components of a layer entry; refuses absolute paths and ``..``."""
    if name.startswith("/"):
        raise ConfigurationError(f"a layer entry has an absolute path, {name!r}: refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigurationError(f"a layer entry climbs out with '..', {name!r}: refused")
    return parts


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: str, root: _Root) -> None:
    try:
        existing: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        existing = None
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)  # a layer may omit them
    if member.isdir():
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            _remove(target, root, existing)
            os.mkdir(target)
            root.changed()
    elif member.isreg():
        _remove(target, root, existing)
        source = tar.extractfile(member)
        assert source is not None
        with source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, _TAR_BUFFER)
    elif member.issym():
        _remove(target, root, existing)
        os.symlink(member.linkname, target)
        root.changed()
    elif member.islnk():
        _remove(target, root, existing)
        os.link(_link_source(member, root), target, follow_symlinks=False)
        return  # shares the owner and mode of what it links to
    elif member.isfifo():
        _remove(target, root, existing)
        os.mkfifo(target)
    else:
        return  # devices: the container's /dev is its own
    _set_attributes(member, target)


def _link_source(member: tarfile.TarInfo, root: _Root) -> str:
    parts = _member_parts(member.linkname)
    if not parts:
        raise ConfigurationError(f"{member.name!r} is a hard link to the root: refused")
    return os.path.join(root.resolve(parts[:-1]), parts[-1])


def _set_attributes(member: tarfile.TarInfo, target: str) -> None:
    os.lchown(target, member.uid, member.gid)
    if not member.issym():
        os.chmod(target, stat.S_IMODE(member.mode))  # after chown, which clears setuid
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


_UNKNOWN = os.stat_result((0,) * 10)


def _remove(path: str, root: _Root, existing: os.stat_result | None = _UNKNOWN) -> None:
    """Removes the file, link or folder tree at ``path`` (nothing if there is none)."""
    if existing is _UNKNOWN:
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            return
    if existing is None:
        return
    if stat.S_ISDIR(existing.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    if stat.S_ISDIR(existing.st_mode) or stat.S_ISLNK(existing.st_mode):
        root.changed()


def _empty_folder(folder: str, keep: set[str], root: _Root) -> None:
    if os.path.islink(folder) or not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        child = os.path.join(folder, name)
        if child not in keep:
            _remove(child, root)


# -- running --------------------------------------------------------------------------------


def _environment(image_env: list[str]) -> list[str]:
    names = {item.split("=", 1)[0] for item in image_env}
    defaults = [f"PATH={DEFAULT_PATH}", "HOME=/root"]
    return [*image_env, *(d for d in defaults if d.split("=", 1)[0] not in names)]


def _missing_program(rootfs: Path, program: str, env: list[str]) -> str | None:
    """Why the entry point ``program`` cannot run from ``rootfs``, or None when it is there."""
    if "/" in program:
        candidates = [program]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [f"{folder}/{program}" for folder in path.split(":") if folder]
    for candidate in candidates:
        found = _inside(rootfs, [p for p in candidate.split("/") if p not in ("", ".")])
        if found.is_file() and os.access(found, os.X_OK):
            return None
    return (
        f"the image's entry point {program} is not an executable file in the image: "
        f"it was not built by sematic build (want {WORKER})"
    )


def runtime_spec(
    args: list[str], env: list[str], cwd: str, cgroups_path: str, hostname: str
) -> dict[str, Any]:
    """A minimal OCI runtime spec for a check: root user, no terminal, own namespaces."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)
    capabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                kind: capabilities for kind in ("bounding", "effective", "permitted")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": files, "soft": files}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": _mounts(),
        "linux": {
            "namespaces": [
                {"type": kind} for kind in ("pid", "ipc", "uts", "mount", "network")
            ],
            "cgroupsPath": cgroups_path,
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }  # fmt: skip


def _mounts() -> list[dict[str, Any]]:
    def mount(destination: str, kind: str, options: list[str]) -> dict[str, Any]:
        return {"destination": destination, "type": kind, "source": kind, "options": options}

    return [
        mount("/proc", "proc", ["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts",
              ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        mount("/dev/shm", "tmpfs", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/sys", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        mount("/tmp", "tmpfs", ["nosuid", "nodev", "mode=1777"]),
    ]  # fmt: skip


def _run(
    runc: str,
    bundle: Path,
    args: list[str],
    env: list[str],
    settings: dict[str, Any],
    timeout: float,
) -> tuple[bool, str, float]:
    """Runs ``args`` in a container of ``bundle``: (ok, output, seconds)."""
    container = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    spec = runtime_spec(args, env, settings.get("WorkingDir") or "/", container, "sematic-check")
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    state = Path(tempfile.mkdtemp(prefix=PREFIX))
    started = time.perf_counter()
    try:
        code, stdout, stderr = _runc_run(runc, state, bundle, container, timeout)
    finally:
        _runc_delete(runc, state, container)
        shutil.rmtree(state, ignore_errors=True)
    seconds = time.perf_counter() - started
    if code is None:
        tail = _tail(stdout + stderr)
        return False, f"the self-check did not finish within {timeout:g} s\n{tail}", seconds
    report = _last_json(stdout)
    if report is not None:
        line = json.dumps(report, sort_keys=True)
        return code == 0 and report.get("ok") is True, line, seconds
    return False, f"exit status {code}\n{_tail(stdout + stderr)}", seconds


def _runc_run(
    runc: str, state: Path, bundle: Path, container: str, timeout: float
) -> tuple[int | None, str, str]:
    """runc's exit status (None after ``timeout``), stdout and stderr."""
    command = [runc, "--root", str(state), "run", "--bundle", str(bundle), container]
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _runc_delete(runc, state, container)  # kills the container; runc then returns
            stdout, stderr = process.communicate(timeout=30)
            return None, stdout, stderr
    return process.returncode, stdout, stderr


def _runc_delete(runc: str, state: Path, container: str) -> None:
    """Kills and deletes ``container`` with its cgroups (nothing if it is gone already)."""
    subprocess.run(
        [runc, "--root", str(state), "delete", "--force", container],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=60,
    )


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            return value if isinstance(value, dict) else None
    return None


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _OUTPUT_TAIL else f"...{text[-_OUTPUT_TAIL:]}"
