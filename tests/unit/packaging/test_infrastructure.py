"""The real parts the image-builder tests stand on: registries, base images, the runner.

These check the fixtures of tests/registry.py, tests/images.py and tests/containers.py
themselves, so that a failing builder test points at the builder, not at its test bench.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.containers import ContainerRunner, cgroup_folders, host_snapshot
from tests.images import SkopeoError, base_rootfs, pack_rootfs, push_base
from tests.registry import RegistryServer

PROBE = (
    "import sys,os; print(sys.version_info[:2], open('/etc/sematic-base').read().strip(), "
    "os.environ['SEMATIC_TEST_BASE'])"
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


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


@pytest.mark.slow
def test_the_cached_base_has_python_and_nothing_that_cannot_go_into_a_layer() -> None:
    with tarfile.open(base_rootfs()) as tar:
        members = tar.getmembers()
    names = {member.name for member in members}
    assert {"usr/bin/python3", "etc/os-release", "bin"} <= names
    assert not [member.name for member in members if member.isdev() or member.isfifo()]
    emptied = ("dev/", "var/lib/apt/lists/", "var/cache/apt/", "var/log/", "tmp/")
    left = [m.name for m in members if m.name.startswith(emptied) and not m.isdir()]
    assert not left
    assert "etc/resolv.conf" not in names  # the host's, copied by debootstrap
    assert all(member.mtime == 0 for member in members)


@pytest.mark.slow
def test_base_images_are_in_the_registry_and_share_the_base_layer(
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
    assert layers["default"][0] == layers["cuda"][0]
    assert layers["default"][1] != layers["cuda"][1]


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["default", "cuda"])
def test_each_base_runs_python_with_its_own_file_and_env(
    tag: str, base_images: dict[str, str], container_runner: ContainerRunner
) -> None:
    done = container_runner.run(base_images[tag], ["python3", "-c", PROBE])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"(3, 11) {tag} {tag}\n"


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
