"""``sematic.packaging.check``: built images run their worker self-check under runc.

Real parts: the session's registry and Debian bookworm base (Python 3.11), images built by
``sematic build``, runc. The unpacking rules (whiteouts, links, owners, refused paths) are
also tested on small hand-made layers. After every test nothing is left: no container,
cgroup, mount, bundle or runc state.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging import check
from sematic.packaging.check import PREFIX, CheckResult, check_image, check_images, unpack_layers
from sematic.packaging.config import find_config
from sematic.packaging.reference import ImageReference, sha256_digest
from sematic.packaging.registry import Manifest, RegistryClient
from tests.harness.containers import ContainerRunner, cgroup_folders, host_snapshot
from tests.harness.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "two_bases"
SHADOW = "raise ImportError('this is the project folder pydantic_core, not the library')\n"


# -- real images --------------------------------------------------------------------------


def _project(folder: Path, registry: RegistryServer, base: str, repository: str) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "{repository}"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\n'
        f'[bases]\ndefault = "{base}"\n'
    )
    return folder / "pipeline.py"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("check-cache")


def _build(script: Path, cache: Path) -> str:
    """Builds ``script``'s image with today's builder: ``REGISTRY/REPOSITORY@DIGEST``."""
    from sematic.packaging.builder import build  # being reworked by others: import late

    return build(script, find_config(script), cache=cache).image_map["default"]


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
    registry: RegistryServer,
    base_images: dict[str, str],
    cache: Path,
) -> str:
    """An image of the example on the ``default`` base: ``REGISTRY/REPOSITORY@DIGEST``."""
    folder = tmp_path_factory.mktemp("project") / "project"
    return _build(_project(folder, registry, base_images["default"], "check/good"), cache)


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[RegistryClient]:
    with RegistryClient(registry.address, insecure=True) as opened:
        yield opened


@pytest.fixture
def base(client: RegistryClient, base_images: dict[str, str]) -> str:
    """The ``default`` base itself (bookworm, python3, no Sematic): ``REGISTRY/REPO@DIGEST``."""
    reference = ImageReference.parse(base_images["default"])
    digest = client.get_manifest(reference.repository, reference.tag or "default").digest
    return f"{reference.registry}/{reference.repository}@{digest}"


def _leftovers(prefix: str, cache: Path) -> list[str]:
    places = [Path("/dev/shm"), Path(tempfile.gettempdir()), cache / "check"]
    found = [str(p) for place in places if place.is_dir() for p in place.glob(f"{prefix}*")]
    return sorted(found) + cgroup_folders(prefix)


@pytest.fixture
def untouched_host(
    container_runner: ContainerRunner, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Fails the test if it leaves a container, cgroup, mount, bundle or runc state.

    The test's checks name everything with a prefix of their own (other sessions may be
    checking images at the same time); it is returned."""
    prefix = f"{PREFIX}t{uuid.uuid4().hex[:8]}-"
    monkeypatch.setattr(check, "PREFIX", prefix)
    before = host_snapshot(container_runner)
    yield prefix
    after = host_snapshot(container_runner)
    assert [m for m in set(after.mounts) - set(before.mounts) if prefix in m] == []
    assert after.cgroups == before.cgroups == ()
    assert after.containers == before.containers == ()
    assert _leftovers(prefix, cache) == []


def _check(client: RegistryClient, image: str, cache: Path, timeout: float = 120) -> CheckResult:
    reference = ImageReference.parse(image)
    assert reference.digest is not None
    return check_image(client, reference.repository, reference.digest, cache=cache,
                       timeout=timeout)  # fmt: skip


def _variant(client: RegistryClient, image: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Pushes a copy of ``image`` whose config ``change`` edited (same layers)."""
    reference = ImageReference.parse(image)
    assert reference.digest is not None
    original = client.get_manifest(reference.repository, reference.digest)
    manifest = json.loads(original.body)
    config = json.loads(client.get_blob(reference.repository, manifest["config"]["digest"]))
    change(config)
    blob = json.dumps(config).encode()
    client.push_blob(reference.repository, sha256_digest(blob), blob)
    manifest["config"] = {**manifest["config"], "digest": sha256_digest(blob), "size": len(blob)}
    body = json.dumps(manifest).encode()
    digest = sha256_digest(body)
    client.put_manifest(reference.repository, f"variant-{digest[7:19]}",
                        Manifest(original.media_type, body, digest))  # fmt: skip
    return f"{reference.registry}/{reference.repository}@{digest}"


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_a_built_image_passes_its_self_check(
    client: RegistryClient, built: str, cache: Path
) -> None:
    result = _check(client, built, cache)
    assert result.ok, result.output
    assert result.skipped is None
    assert result.image == built
    report = result.report()
    assert report is not None
    assert report["ok"] is True
    assert report["python"].startswith("3.11.")  # Debian bookworm's Python
    assert report["checks"] == [
        "import worker", "import pydantic_core", "type check", "serialize round trip"
    ]  # fmt: skip
    assert 0 < result.unpack_seconds < result.seconds
    assert 0 < result.run_seconds < result.seconds
    print(
        f"\ncheck {result.seconds:.2f} s: unpack {result.unpack_seconds:.2f} s, "
        f"run {result.run_seconds:.2f} s"
    )
    again = check_images(client, [built], cache=cache)  # the blobs are cached now
    assert [r.ok for r in again] == [True]
    print(
        f"again {again[0].seconds:.2f} s: unpack {again[0].unpack_seconds:.2f} s, "
        f"run {again[0].run_seconds:.2f} s"
    )


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_the_bare_base_image_fails_readably(client: RegistryClient, base: str, cache: Path) -> None:
    result = _check(client, base, cache)
    assert not result.ok
    assert result.skipped is None
    assert "no entry point" in result.output
    assert "/opt/sematic/bin/sematic-worker" in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_an_entry_point_missing_from_the_image_fails_readably(
    client: RegistryClient, base: str, cache: Path
) -> None:
    def elsewhere(config: dict[str, Any]) -> None:
        config["config"]["Entrypoint"] = ["/opt/sematic/bin/not-there"]

    result = _check(client, _variant(client, base, elsewhere), cache)
    assert not result.ok
    assert "entry point /opt/sematic/bin/not-there is not an executable file" in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_user_code_shadowing_a_dependency_fails_and_names_it(
    client: RegistryClient,
    registry: RegistryServer,
    base_images: dict[str, str],
    cache: Path,
    tmp_path: Path,
) -> None:
    # A folder of the project named like a dependency: /app comes first on PYTHONPATH.
    folder = tmp_path / "project"
    script = _project(folder, registry, base_images["default"], "check/shadowed")
    (folder / "pydantic_core").mkdir()
    (folder / "pydantic_core" / "__init__.py").write_text(SHADOW)
    image = _build(script, cache)
    result = _check(client, image, cache)
    assert not result.ok
    assert result.skipped is None
    report = result.report()
    assert report is not None, result.output
    assert report["ok"] is False
    assert report["failed_check"] == "import pydantic_core"
    assert "project folder pydantic_core" in report["error"]


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_a_check_that_hangs_is_stopped_and_cleaned_up(
    client: RegistryClient, base: str, cache: Path
) -> None:
    def hang(config: dict[str, Any]) -> None:
        config["config"]["Entrypoint"] = ["/bin/sh", "-c", "echo started; sleep 60"]

    seen: list[str] = []  # its cgroups, while it runs: where the leftover check looks

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not seen:
            seen.extend(cgroup_folders(check.PREFIX))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = _check(client, _variant(client, base, hang), cache, timeout=3)
    finally:
        watcher.join()
    assert seen, "no cgroup of the check's container was seen while it ran"
    assert not result.ok
    assert "did not finish within 3 s" in result.output
    assert "started" in result.output
    assert result.seconds < 30


@pytest.mark.slow
def test_an_image_for_another_architecture_is_skipped(
    client: RegistryClient, base: str, cache: Path
) -> None:
    def arm64(config: dict[str, Any]) -> None:
        config["architecture"] = "arm64"

    result = _check(client, _variant(client, base, arm64), cache)
    assert result.skipped == "linux/arm64 cannot run on this linux/amd64 machine"
    assert not result.ok
    assert result.unpack_seconds == result.run_seconds == 0


@pytest.mark.slow
def test_without_runc_or_root_the_check_is_skipped(
    client: RegistryClient, base: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check, "find_runc", lambda: None)
    result = _check(client, base, cache)
    assert result.skipped == "runc not found: install runc to check images"
    monkeypatch.undo()
    monkeypatch.setattr(check.os, "geteuid", lambda: 1000)
    assert "needs root" in (_check(client, base, cache).skipped or "")


def test_runc_is_found_in_sbin_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nowhere")
    assert check.find_runc() == "/usr/sbin/runc"


# -- unpacking ----------------------------------------------------------------------------


def _layer(folder: Path, name: str, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    path = folder / name
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def _entry(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    *,
    mode: int = 0o644,
    owner: tuple[int, int] = (0, 0),
    link: str = "",
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.uid, info.gid = owner
    return info, data


def test_layers_apply_in_order_with_whiteouts_links_modes_and_owners(tmp_path: Path) -> None:
    lower = _layer(tmp_path, "lower", [
        _entry("./etc", tarfile.DIRTYPE, mode=0o755),
        _entry("./etc/keep", data=b"kept"),
        _entry("./etc/gone", data=b"removed above"),
        _entry("./opt/old/a", data=b"hidden by the opaque folder"),
        _entry("./usr/bin/tool", data=b"#!/bin/sh\n", mode=0o4755, owner=(1234, 5678)),
        _entry("./bin", tarfile.SYMTYPE, link="usr/bin"),
        _entry("./usr/bin/same", tarfile.LNKTYPE, link="usr/bin/tool"),
    ])  # fmt: skip
    upper = _layer(tmp_path, "upper", [
        _entry("etc/.wh.gone"),
        _entry("opt/old/.wh..wh..opq"),
        _entry("opt/old/b", data=b"new"),
        _entry("bin/added", data=b"through the link"),  # bin -> usr/bin, inside the root
    ])  # fmt: skip
    rootfs = tmp_path / "rootfs"
    unpack_layers([lower, upper], rootfs)
    assert (rootfs / "etc" / "keep").read_bytes() == b"kept"
    assert not (rootfs / "etc" / "gone").exists()
    assert not (rootfs / "etc" / ".wh.gone").exists()
    assert sorted(p.name for p in (rootfs / "opt" / "old").iterdir()) == ["b"]
    tool = (rootfs / "usr" / "bin" / "tool").lstat()
    assert stat.S_IMODE(tool.st_mode) == 0o4755
    if os.geteuid() == 0:
        assert (tool.st_uid, tool.st_gid) == (1234, 5678)
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert (rootfs / "usr" / "bin" / "same").stat().st_ino == tool.st_ino
    assert (rootfs / "usr" / "bin" / "added").read_bytes() == b"through the link"


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside", "a/../../outside"])
def test_paths_leaving_the_root_are_refused(tmp_path: Path, name: str) -> None:
    layer = _layer(tmp_path, "evil", [_entry(name, data=b"x")])
    with pytest.raises(ConfigurationError, match="refused"):
        unpack_layers([layer], tmp_path / "rootfs")
    assert not (tmp_path / "outside").exists()


def test_links_cannot_lead_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = _layer(tmp_path, "evil", [
        _entry("escape", tarfile.SYMTYPE, link=str(outside)),
        _entry("escape/file", data=b"x"),
        _entry("up", tarfile.SYMTYPE, link="../../../../.."),
        _entry(f"up{tmp_path}/outside/other", data=b"y"),
    ])  # fmt: skip
    rootfs = tmp_path / "rootfs"
    unpack_layers([layer], rootfs)
    assert list(outside.iterdir()) == []
    assert (rootfs / str(outside).lstrip("/") / "file").read_bytes() == b"x"
    assert (rootfs / str(outside).lstrip("/") / "other").read_bytes() == b"y"


def test_a_corrupt_layer_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_bytes(gzip.compress(b"not a tar at all" * 100)[:50])
    with pytest.raises(ConfigurationError, match="cannot unpack layer broken"):
        unpack_layers([broken], tmp_path / "rootfs")


PROBE = """
import json, os, socket, sys
interfaces = sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:])
print(json.dumps({'ok': True, 'argv': sys.argv[1:], 'uid': os.getuid(), 'cwd': os.getcwd(),
    'hostname': socket.gethostname(), 'interfaces': interfaces, 'pid': os.getpid(),
    'nofile': __import__('resource').getrlimit(__import__('resource').RLIMIT_NOFILE),
    'base': os.environ.get('SEMATIC_TEST_BASE'), 'tmp': os.access('/tmp', os.W_OK)}))
"""


@pytest.mark.slow
@pytest.mark.usefixtures("untouched_host")
def test_the_container_is_isolated_and_runs_as_the_image_says(
    client: RegistryClient, base: str, cache: Path
) -> None:
    def probe(config: dict[str, Any]) -> None:
        config["config"]["Entrypoint"] = ["python3", "-c", PROBE]
        config["config"]["WorkingDir"] = "/etc"

    image = _variant(client, base, probe)
    result = _check(client, image, cache)
    assert result.ok, result.output
    report = result.report()
    assert report is not None
    assert report["argv"] == ["--self-check"]
    assert (report["uid"], report["cwd"], report["pid"]) == (0, "/etc", 1)
    assert report["hostname"] == "sematic-check"
    assert report["interfaces"] == ["lo"]  # its own network namespace: loopback only
    assert report["nofile"] == [1024, 1024]
    assert report["base"] == "default"  # the image's environment
    assert report["tmp"] is True
    print(f"\nbase: unpack {result.unpack_seconds:.2f} s, run {result.run_seconds:.2f} s")
