"""The real parts the image-builder tests stand on: registries, base images, the runner.

These check the fixtures of tests/harness/registry.py, tests/harness/images.py and
tests/harness/containers.py themselves, so that a failing builder test points at the
builder, not at its test bench.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.containers import ContainerRunner, cgroup_folders, host_snapshot
from tests.harness.images import (
    BOOKWORM,
    BOOKWORM_ARM64,
    BOOKWORM_MINBASE,
    PYENV_310,
    TRIXIE,
    BaseImageUnavailableError,
    DebianRootfs,
    PyenvPython,
    SkopeoError,
    base_rootfs,
    cached_layer,
    cached_tar,
    debian_mirror,
    pack_rootfs,
    push_base,
)
from tests.harness.registry import RegistryServer

PROBE = (
    "import sys,os; print(sys.version_info[:2], open('/etc/sematic-base').read().strip(), "
    "os.environ['SEMATIC_TEST_BASE'])"
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ELF_MACHINE_AARCH64 = 183


def test_registry_answers_v2(registry: RegistryServer) -> None:
    assert registry.url == f"http://{registry.address}"
    assert registry.address.startswith("127.0.0.1:")
    assert (registry.username, registry.password) == (None, None)
    assert registry.storage.is_dir()
    answer = httpx.get(f"{registry.url}/v2/")
    assert answer.status_code == 200
    assert answer.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_auth_registry_refuses_anonymous_requests(auth_registry: RegistryServer) -> None:
    assert auth_registry.username == "sematic"
    assert auth_registry.password
    assert httpx.get(f"{auth_registry.url}/v2/").status_code == 401
    anonymous = httpx.post(f"{auth_registry.url}/v2/anonymous/blobs/uploads/")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")

    credentials = (auth_registry.username, auth_registry.password)
    wrong = httpx.post(f"{auth_registry.url}/v2/x/blobs/uploads/", auth=("sematic", "nope"))
    assert wrong.status_code == 401
    started = httpx.post(f"{auth_registry.url}/v2/x/blobs/uploads/", auth=credentials)
    assert started.status_code == 202
    location = started.headers["Location"]
    cancelled = httpx.delete(httpx.URL(auth_registry.url).join(location), auth=credentials)
    assert cancelled.status_code == 204


@pytest.mark.slow
def test_auth_registry_refuses_an_anonymous_push_and_takes_an_authenticated_one(
    auth_registry: RegistryServer,
) -> None:
    anonymous = RegistryServer(
        auth_registry.address, auth_registry.url, None, None, auth_registry.storage
    )
    with pytest.raises(SkopeoError, match="authentication required"):
        push_base(anonymous, "base/python", "anonymous")

    reference = push_base(auth_registry, "base/python", "signed-in")
    assert reference == f"{auth_registry.address}/base/python:signed-in"
    credentials = (auth_registry.username or "", auth_registry.password or "")
    tags = httpx.get(f"{auth_registry.url}/v2/base/python/tags/list", auth=credentials)
    assert tags.json()["tags"] == ["signed-in"]


def test_pack_rootfs_is_deterministic_and_keeps_links(tmp_path: Path) -> None:
    owner = (1234, 5678) if os.geteuid() == 0 else (os.geteuid(), os.getegid())

    def tree(root: Path, mtime: int) -> Path:
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
        (root / "usr" / "bin" / "tool").chmod(0o4755)
        os.link(root / "usr" / "bin" / "tool", root / "usr" / "bin" / "alias")
        (root / "bin").symlink_to("usr/bin")
        (root / "home").mkdir()
        (root / "home" / "notes").write_text("mine")
        os.chown(root / "home" / "notes", *owner)
        (root / "dev").mkdir()
        os.mkfifo(root / "dev" / "fifo")
        for path in root.rglob("*"):
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        return root

    first, second = tmp_path / "first.tar", tmp_path / "second.tar"
    pack_rootfs(tree(tmp_path / "a", 1_000_000), first)
    pack_rootfs(tree(tmp_path / "b", 2_000_000), second)
    assert first.read_bytes() == second.read_bytes()

    with tarfile.open(first) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert list(members) == [
        *("bin", "dev", "home", "home/notes"),
        *("usr", "usr/bin", "usr/bin/alias", "usr/bin/tool"),
    ]
    assert all(member.mtime == 0 for member in members.values())
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/alias"].isfile()  # first in sorted order carries the content
    assert members["usr/bin/tool"].islnk()
    assert members["usr/bin/tool"].linkname == "usr/bin/alias"
    assert members["usr/bin/alias"].mode == 0o4755
    assert (members["home/notes"].uid, members["home/notes"].gid) == owner
    assert members["home/notes"].uname == members["home/notes"].gname == ""


def test_the_debian_mirror_is_read_from_the_apt_sources(tmp_path: Path) -> None:
    folder, one_line = tmp_path / "sources.list.d", tmp_path / "sources.list"
    folder.mkdir()
    (folder / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://sources.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
        "  bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror(one_line, folder) == "http://mirror.example/debian"

    (folder / "debian.sources").unlink()
    one_line.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://old.example/debian bookworm main\n"
    )
    assert debian_mirror(one_line, folder) == "http://old.example/debian"

    one_line.write_text("deb http://security.example/debian-security bookworm-security main\n")
    with pytest.raises(BaseImageUnavailableError, match="No Debian mirror found"):
        debian_mirror(one_line, folder)


def test_a_missing_pyenv_interpreter_fails_saying_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMATIC_DEV_CACHE", str(tmp_path))
    with pytest.raises(BaseImageUnavailableError, match=r"pyenv install 3\.99\.1"):
        cached_tar(PyenvPython("pyenv-python3.99-v1", "3.99.1"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe", [BOOKWORM, TRIXIE, BOOKWORM_MINBASE, BOOKWORM_ARM64], ids=lambda r: r.name
)
def test_each_cached_debian_base_has_nothing_that_cannot_go_into_a_layer(
    recipe: DebianRootfs,
) -> None:
    with tarfile.open(cached_tar(recipe)) as tar:
        members = tar.getmembers()
    names = {member.name for member in members}
    assert {"etc/os-release", "bin", *recipe.expected} <= names
    assert ("usr/bin/python3" in names) == ("python3" in recipe.include)
    assert not [member.name for member in members if member.isdev() or member.isfifo()]
    emptied = ("dev/", "var/lib/apt/lists/", "var/cache/apt/", "var/log/", "tmp/")
    left = [m.name for m in members if m.name.startswith(emptied) and not m.isdir()]
    assert not left
    assert "etc/resolv.conf" not in names  # the host's, copied by debootstrap
    assert not [name for name in names if name.startswith("debootstrap")]
    assert all(member.mtime == 0 for member in members)


@pytest.mark.slow
def test_the_bookworm_base_is_the_one_cached_before_recipes_had_names() -> None:
    assert base_rootfs() == cached_tar(BOOKWORM)
    assert base_rootfs().name == "bookworm-python3-v1.tar"


@pytest.mark.slow
def test_the_pyenv_layer_keeps_the_interpreter_at_its_path_without_the_extras() -> None:
    with tarfile.open(cached_tar(PYENV_310)) as tar:
        members = {member.name: member for member in tar.getmembers()}
    prefix = "root/.pyenv/versions/3.10.13"
    library = f"{prefix}/lib/python3.10"
    assert f"{prefix}/bin/python3.10" in members
    assert f"{prefix}/lib/libpython3.10.so.1.0" in members
    assert f"{library}/lib-dynload" in members
    assert f"{library}/site-packages" in members
    for link in ("usr/local/bin/python3", "usr/local/bin/python3.10"):
        assert members[link].issym()
        assert members[link].linkname == f"/{prefix}/bin/python3.10"
    assert members["root"].mode == 0o700  # as in Debian's /root, which this layer overlays
    left_out = [
        name
        for name in members
        if "__pycache__" in name.split("/")
        or name.startswith(
            tuple(
                f"{library}/{folder}"
                for folder in ("test/", "idlelib", "tkinter", "turtledemo", "ensurepip")
            )
        )
        or name.startswith((f"{library}/site-packages/", f"{prefix}/include", f"{prefix}/share"))
    ]
    assert not left_out
    assert all(member.mtime == 0 for member in members.values())


@pytest.mark.slow
def test_base_images_are_in_the_registry_with_their_own_base_and_extra_layers(
    registry: RegistryServer, base_images: dict[str, str]
) -> None:
    assert base_images == {
        "default": f"{registry.address}/base/python:default",
        "cuda": f"{registry.address}/base/python:cuda",
    }
    tags = httpx.get(f"{registry.url}/v2/base/python/tags/list").json()["tags"]
    assert {"default", "cuda"} <= set(tags)
    layers = {}
    for tag in ("default", "cuda"):
        manifest = httpx.get(
            f"{registry.url}/v2/base/python/manifests/{tag}", headers={"Accept": OCI_MANIFEST}
        ).json()
        assert manifest["mediaType"] == OCI_MANIFEST
        layers[tag] = [layer["digest"] for layer in manifest["layers"]]
        config = httpx.get(
            f"{registry.url}/v2/base/python/blobs/{manifest['config']['digest']}"
        ).json()
        assert (config["architecture"], config["os"]) == ("amd64", "linux")
        assert config["config"]["Cmd"] == ["python3"]
        assert f"SEMATIC_TEST_BASE={tag}" in config["config"]["Env"]
        assert any(item.startswith("PATH=") for item in config["config"]["Env"])
        assert len(config["rootfs"]["diff_ids"]) == 2
    # default is bookworm (this machine's Python), cuda is trixie (another Python).
    assert layers["default"][0] == cached_layer(BOOKWORM).digest
    assert layers["cuda"][0] == cached_layer(TRIXIE).digest
    assert layers["default"][1] != layers["cuda"][1]


@pytest.mark.slow
@pytest.mark.parametrize(("tag", "version"), [("default", (3, 11)), ("cuda", (3, 13))])
def test_each_base_runs_python_with_its_own_file_and_env(
    tag: str,
    version: tuple[int, int],
    base_images: dict[str, str],
    container_runner: ContainerRunner,
) -> None:
    done = container_runner.run(base_images[tag], ["python3", "-c", PROBE])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{version} {tag} {tag}\n"


def _manifest(registry: RegistryServer, tag: str, accept: str = OCI_MANIFEST) -> httpx.Response:
    answer = httpx.get(
        f"{registry.url}/v2/base/targets/manifests/{tag}", headers={"Accept": accept}
    )
    assert answer.status_code == 200, answer.text
    return answer


def _config(registry: RegistryServer, tag: str) -> dict[str, Any]:
    manifest = _manifest(registry, tag).json()
    config: dict[str, Any] = httpx.get(
        f"{registry.url}/v2/base/targets/blobs/{manifest['config']['digest']}"
    ).json()
    return config


@pytest.mark.slow
def test_target_bases_are_in_the_registry(
    registry: RegistryServer, target_bases: dict[str, str]
) -> None:
    tags = ("py311", "py313", "py310", "py39", "nopython", "arm64", "multi")
    assert target_bases == {tag: f"{registry.address}/base/targets:{tag}" for tag in tags}
    listed = httpx.get(f"{registry.url}/v2/base/targets/tags/list").json()["tags"]
    assert set(tags) <= set(listed)
    py310 = _config(registry, "py310")
    assert py310["config"]["Env"][0].startswith("PATH=/usr/local/bin:")
    assert "PYTHON_VERSION=3.10.13" in py310["config"]["Env"]
    assert len(py310["rootfs"]["diff_ids"]) == 2
    nopython = _config(registry, "nopython")
    assert py310["rootfs"]["diff_ids"][0] == nopython["rootfs"]["diff_ids"][0]
    assert "PYTHON_VERSION=3.9.18" in _config(registry, "py39")["config"]["Env"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tag", "version"), [("py311", "3.11"), ("py313", "3.13"), ("py39", "3.9.18")]
)
def test_each_target_base_runs_the_python_it_claims(
    tag: str, version: str, target_bases: dict[str, str], container_runner: ContainerRunner
) -> None:
    done = container_runner.run(target_bases[tag], ["python3", "--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Python {version}"), done.stdout


@pytest.mark.slow
def test_the_py310_base_is_a_slim_like_python_with_its_extension_modules(
    target_bases: dict[str, str], container_runner: ContainerRunner
) -> None:
    code = (
        "import ssl, sqlite3, ctypes, os, sys, importlib.util as u; "
        "print(sys.version.split()[0], sys.executable, os.environ['PYTHON_VERSION'], "
        "ssl.OPENSSL_VERSION.split()[0], sqlite3.sqlite_version > '3', "
        "ctypes.sizeof(ctypes.c_void_p), u.find_spec('pip'), u.find_spec('ensurepip'))"
    )
    done = container_runner.run(target_bases["py310"], ["python3", "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3.10.13 /usr/local/bin/python3 3.10.13 OpenSSL True 8 None None\n"


@pytest.mark.slow
def test_the_nopython_base_has_no_python_but_the_libraries_a_python_needs(
    target_bases: dict[str, str], container_runner: ContainerRunner
) -> None:
    image = target_bases["nopython"]
    python = container_runner.run(image, ["python3", "--version"])
    assert python.returncode != 0
    assert "python3" in python.stderr
    listed = container_runner.run(
        image,
        ["sh", "-c", "ls /usr/bin/python3; ls /usr/lib/x86_64-linux-gnu/libssl.so.3"],
    )
    assert "/usr/bin/python3" in listed.stderr  # no such file
    assert listed.stdout == "/usr/lib/x86_64-linux-gnu/libssl.so.3\n"


@pytest.mark.slow
def test_the_arm64_base_is_for_arm64_and_holds_an_aarch64_python(
    registry: RegistryServer, target_bases: dict[str, str]
) -> None:
    config = _config(registry, "arm64")
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    manifest = _manifest(registry, "arm64").json()
    layer = cached_layer(BOOKWORM_ARM64)
    assert [entry["digest"] for entry in manifest["layers"]] == [layer.digest]
    with tarfile.open(cached_tar(BOOKWORM_ARM64)) as tar:
        names = set(tar.getnames())
        lib = tar.getmember("lib")
        binary = tar.extractfile("usr/bin/python3.11")
        assert binary is not None
        header = binary.read(20)
    assert "usr/lib/aarch64-linux-gnu/libc.so.6" in names
    assert lib.issym() and lib.linkname == "usr/lib"  # merged /usr, as debootstrap makes it
    assert "usr/lib/x86_64-linux-gnu/libc.so.6" not in names
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64


@pytest.mark.slow
def test_the_multi_base_is_an_index_of_the_amd64_and_arm64_images(
    registry: RegistryServer, target_bases: dict[str, str]
) -> None:
    answer = _manifest(registry, "multi", accept=OCI_INDEX)
    assert answer.headers["Content-Type"] == OCI_INDEX
    index = answer.json()
    assert index["mediaType"] == OCI_INDEX
    by_platform = {
        (
            item["platform"]["os"],
            item["platform"]["architecture"],
            item["platform"].get("variant"),
        ): item["digest"]
        for item in index["manifests"]
    }
    assert by_platform == {
        ("linux", "amd64", None): _manifest(registry, "py311").headers["Docker-Content-Digest"],
        ("linux", "arm64", "v8"): _manifest(registry, "arm64").headers["Docker-Content-Digest"],
    }


@pytest.mark.slow
def test_env_is_added_to_the_image_env_and_the_workdir_comes_from_the_image(
    base_images: dict[str, str], container_runner: ContainerRunner
) -> None:
    code = (
        "import os; print(os.getcwd(), os.environ['SEMATIC_TEST_BASE'], os.environ['EXTRA'], "
        "os.environ['PATH'])"
    )
    done = container_runner.run(
        base_images["default"],
        ["python3", "-c", code],
        env={"EXTRA": "1", "SEMATIC_TEST_BASE": "overridden"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "/ overridden 1 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )


@pytest.mark.slow
def test_a_bind_mounted_host_folder_is_writable_from_inside(
    tmp_path: Path, base_images: dict[str, str], container_runner: ContainerRunner
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from the host")
    code = (
        "text = open('/job/in.txt').read(); " "open('/job/out.txt', 'w').write(text + ', and back')"
    )
    done = container_runner.run(
        base_images["default"], ["python3", "-c", code], binds={shared: "/job"}
    )
    assert done.returncode == 0, done.stderr
    assert (shared / "out.txt").read_text() == "from the host, and back"


@pytest.mark.slow
def test_a_container_reaches_the_registry_on_the_host_loopback(
    registry: RegistryServer, base_images: dict[str, str], container_runner: ContainerRunner
) -> None:
    code = f"import urllib.request as r; print(r.urlopen('{registry.url}/v2/').status)"
    done = container_runner.run(base_images["default"], ["python3", "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200\n"


@pytest.mark.slow
def test_failures_and_timeouts_are_reported_and_nothing_is_left_behind(
    base_images: dict[str, str], container_runner: ContainerRunner
) -> None:
    image = base_images["default"]
    before = host_snapshot(container_runner)

    failed = container_runner.run(image, ["python3", "-c", "import sys; sys.exit(3)"])
    assert failed.returncode == 3

    # While a container runs, its cgroups exist where the snapshot looks for them (so an
    # empty list afterwards means they were removed, not that we looked elsewhere).
    seen: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not seen:
            seen.extend(cgroup_folders(container_runner.prefix))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            container_runner.run(image, ["sleep", "60"], timeout=3)
    finally:
        watcher.join()
    assert seen, "no cgroup named after the container was seen while it ran"

    after = host_snapshot(container_runner)
    assert after.mounts == before.mounts
    assert after.cgroups == before.cgroups == ()
    assert after.containers == before.containers == ()
    assert not list(container_runner.bundles.iterdir())
