"""Runs images from a registry without a Docker daemon: skopeo, umoci and runc.

``container_runner`` (session-scoped) gives a ``ContainerRunner``. Its ``run(reference,
args)`` pulls the image with ``skopeo copy`` into an OCI layout (one per runner, so blobs
shared between images are fetched once), unpacks it into a runc bundle with ``umoci
unpack``, adjusts the bundle's config.json (command, environment, bind mounts, no terminal)
and runs it with ``runc run`` in the foreground, capturing its output. Afterwards the
container is always deleted (``runc delete --force``) and the bundle removed. Bundles are
unpacked on /dev/shm when it exists (about 2.5 s per run there, about 9 s on this machine's
disk); the pulled layout and runc's state stay in a temporary folder.

The container has its own PID, IPC, UTS and mount namespaces but shares the host's network
namespace, so it reaches servers listening on 127.0.0.1 (the test registry, a test API
server). Its working directory, user and environment come from the image's config (umoci
translates them; umoci also adds ``HOME`` and ``TERM``). runc creates the container's
cgroups, named after its id, in each hierarchy relative to the test process's own cgroup
there, and removes them on delete;
``host_snapshot`` lets a test check that nothing (mounts, cgroups, containers) is left.

Needs root (runc and umoci unpack ownership as in the image). Missing ``skopeo``, ``umoci``
or ``runc`` fails the tests that need them (never skips them): run ``scripts/setup``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.images import remove_tree, skopeo


class ContainerUnavailableError(RuntimeError):
    pass


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise ContainerUnavailableError(
            f"{name!r} is not installed, so the packaging tests cannot run images. Run "
            "scripts/setup (as root it installs skopeo, umoci, runc and the other container "
            "tools)."
        )
    return found


@dataclass(frozen=True)
class HostSnapshot:
    """What running containers could leave behind on the host: the mount table of this
    process's mount namespace, cgroup folders named after the runner's containers, and
    containers known to the runner's runc state."""

    mounts: tuple[str, ...]
    cgroups: tuple[str, ...]
    containers: tuple[str, ...]


class ContainerRunner:
    """Runs images (``run``), keeping its pulled images and runc state below ``work`` and
    unpacking each container's bundle below ``bundles`` (default: ``work``); ``prefix``
    starts every container id."""

    def __init__(self, work: Path, bundles: Path | None = None) -> None:
        self.skopeo_tool = _tool("skopeo")  # checked now: a clear failure before any pull
        self.umoci = _tool("umoci")
        self.runc = _tool("runc")
        if os.geteuid() != 0:
            raise ContainerUnavailableError(
                "Running images with runc in the packaging tests needs root (umoci unpack and "
                "runc run as root); run the tests as root."
            )
        self.work = work
        self.bundles = bundles or work
        self.layout = work / "layout"
        self.state = work / "runc"
        self.state.mkdir(parents=True, exist_ok=True)
        self.prefix = f"sematic-test-{uuid.uuid4().hex[:8]}-"
        self._counter = itertools.count()
        self._pull_lock = threading.Lock()

    def run(
        self,
        reference: str,
        args: list[str],
        *,
        env: dict[str, str] = {},  # noqa: B006 (never mutated)
        binds: dict[Path, str] = {},  # noqa: B006 (never mutated)
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``args`` in a container of the image ``reference`` (``HOST:PORT/REPO:TAG`` on
        a plain-HTTP registry, anonymous) and returns its exit status and output.

        ``env`` is added to (and overrides) the image's environment; ``binds`` maps host
        folders to paths inside the container, mounted read-write. After ``timeout`` seconds
        the container is killed and ``subprocess.TimeoutExpired`` raised. A failing command
        is not an error (see ``returncode``); failing to pull or start is.
        """
        number = next(self._counter)
        container = f"{self.prefix}{number}"
        bundle = self.bundles / f"bundle-{number}"
        try:
            self._pull(reference, f"t{number}")
            self._unpack(f"t{number}", bundle)
            self._configure(bundle, args, env, binds)
            return self._runc(container, bundle, timeout)
        finally:
            self._delete(container)
            remove_tree(bundle)

    def _pull(self, reference: str, tag: str) -> None:
        with self._pull_lock:
            skopeo(
                [
                    *("copy", "--src-tls-verify=false", "--src-no-creds"),
                    *(f"docker://{reference}", f"oci:{self.layout}:{tag}"),
                ],
                self.work / "skopeo",
            )

    def _unpack(self, tag: str, bundle: Path) -> None:
        command = [self.umoci, "unpack", "--image", f"{self.layout}:{tag}", str(bundle)]
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ContainerUnavailableError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )

    @staticmethod
    def _configure(
        bundle: Path, args: list[str], env: dict[str, str], binds: dict[Path, str]
    ) -> None:
        """Edits the bundle's config.json: command, environment, mounts, host network."""
        path = bundle / "config.json"
        config: dict[str, Any] = json.loads(path.read_text())
        process = config["process"]
        process["args"] = list(args)
        process["terminal"] = False
        image_env = [item for item in process.get("env", []) if item.split("=", 1)[0] not in env]
        process["env"] = [*image_env, *(f"{key}={value}" for key, value in env.items())]
        config["mounts"] = [
            *config.get("mounts", []),
            *(
                {
                    "destination": inside,
                    "type": "bind",
                    "source": str(host.resolve()),
                    "options": ["rbind", "rw"],
                }
                for host, inside in binds.items()
            ),
        ]
        linux = config.setdefault("linux", {})
        # The host's network: the container reaches servers on the host's 127.0.0.1.
        linux["namespaces"] = [
            namespace
            for namespace in linux.get("namespaces", [])
            if namespace.get("type") != "network"
        ]
        config.setdefault("root", {})["readonly"] = False
        path.write_text(json.dumps(config, indent=2))

    def _runc(
        self, container: str, bundle: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        command = [self.runc, "--root", str(self.state), "run", "--bundle", str(bundle), container]
        with subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Killing runc itself would leave the container running: kill the container.
                self._delete(container)
                stdout, stderr = process.communicate(timeout=30)
                raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def _delete(self, container: str) -> None:
        """Kills and deletes ``container`` (nothing happens if it does not exist)."""
        subprocess.run(
            [self.runc, "--root", str(self.state), "delete", "--force", container],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )

    def containers(self) -> list[str]:
        """The containers runc still knows in this runner's state folder."""
        done = subprocess.run(
            [self.runc, "--root", str(self.state), "list", "--quiet"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
        )
        return sorted(done.stdout.split())

    def close(self) -> None:
        """Deletes any container left in the runner's state (there should be none)."""
        for container in self.containers():
            self._delete(container)


def cgroup_folders(prefix: str) -> list[str]:
    """Cgroup folders named ``PREFIX*``, at the root of each hierarchy or below this process's
    own cgroup there (where runc makes them when the bundle names no cgroup path)."""
    found: set[str] = set()
    root = Path("/sys/fs/cgroup")
    with open("/proc/self/cgroup") as lines:
        for line in lines:
            _, controllers, own = line.rstrip("\n").split(":", 2)
            names = [name.removeprefix("name=") for name in controllers.split(",") if name]
            if len(names) > 1:
                names.append(",".join(names))  # co-mounted controllers: "cpu,cpuacct"
            for name in names or ["unified"]:
                for folder in {root / name, root / name / own.lstrip("/")}:
                    if folder.is_dir():
                        found.update(str(path) for path in folder.glob(f"{prefix}*"))
    return sorted(found)


def host_snapshot(runner: ContainerRunner) -> HostSnapshot:
    """The mount table, the runner's cgroup folders and its runc containers, right now."""
    with open("/proc/self/mountinfo") as mountinfo:
        # Without the mount ids (fields 1-2), which change when anything is remounted.
        mounts = tuple(sorted(" ".join(line.split()[2:]) for line in mountinfo))
    return HostSnapshot(
        mounts=mounts,
        cgroups=tuple(cgroup_folders(runner.prefix)),
        containers=tuple(runner.containers()),
    )


def _bundles_folder() -> Path:
    """A new folder for bundles: on /dev/shm (a tmpfs) when there is one.

    Unpacking the ~7,500 files of a base there takes about 2.5 s instead of about 9 s on this
    machine's disk; each bundle (~170 MB) is removed as soon as its container is deleted.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="sematic-bundles-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="sematic-bundles-"))


@pytest.fixture(scope="session")
def container_runner() -> Iterator[ContainerRunner]:
    """A ``ContainerRunner`` for the session (its pulled blobs shared by all tests)."""
    work = Path(tempfile.mkdtemp(prefix="sematic-containers-"))
    bundles = _bundles_folder()
    try:
        try:
            runner = ContainerRunner(work, bundles)
        except ContainerUnavailableError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        try:
            yield runner
        finally:
            runner.close()
    finally:
        remove_tree(bundles)
        remove_tree(work)


def run_function(
    runner: ContainerRunner,
    image: str,
    work: Path,
    function: str,
    inputs: dict[str, tuple[Any, Any]],
    returns: Any,
) -> Any:
    """Runs ``function`` (``module.name``) in ``image`` through the worker entry point, as a
    pod would: its ``inputs`` (name: (value, type hint)) are put in an artifact store in
    ``work`` (created), which the container sees as ``/job``; returns the output read back
    as ``returns``. Fails the test if the worker does not report a resolved run."""
    from sematic.core.jobs import InputRef, WorkerJob, WorkerResult
    from sematic.storage.artifacts import FsspecArtifactStore
    from sematic.storage.serialization import deserialize, serialize

    work.mkdir()
    store = FsspecArtifactStore(str(work / "artifacts"))
    refs = {}
    for name, (value, hint) in inputs.items():
        serialized = serialize(value, hint)
        store.put(serialized.artifact_id, serialized.payload)
        refs[name] = InputRef(serialized.artifact_id, serialized.type_description)
    job = WorkerJob(
        run_id="r1",
        root_id="r1",
        function_path=function,
        inputs=refs,
        artifact_url="/job/artifacts",
        result_path="/job/result.json",
    )
    (work / "job.json").write_text(job.to_json())
    done = runner.run(
        image, ["/opt/sematic/bin/sematic-worker", "/job/job.json"], binds={work: "/job"}
    )
    assert done.returncode == 0, done.stderr
    result = WorkerResult.from_json((work / "result.json").read_text())
    assert result.kind == "resolved", result
    assert result.artifact is not None
    return deserialize(
        store.get(result.artifact["id"]), result.artifact["type_description"], returns
    )
