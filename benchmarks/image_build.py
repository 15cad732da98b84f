"""`sematic build` vs `buildah bud` on the same base and the same files, one run, one registry.

Measures, for examples/two_bases (one base here, so both tools build one image):
- cold: empty caches, everything built and pushed;
- code change: one line appended to the pipeline, rebuilt and pushed (median of --repeat);
- no change: built again with nothing changed;
and the bytes each code-change build uploaded. buildah uses its layer cache (`--layers`),
vfs storage and chroot isolation (what runs here without a daemon), then `buildah push`.

Needs scripts/setup's packages (docker-registry, buildah, debootstrap, skopeo); the base
image comes from tests/harness/images.py (built once, cached under ~/.cache/sematic-dev).
Usage: .venv/bin/python benchmarks/image_build.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sematic.packaging import contents  # noqa: E402
from sematic.packaging.builder import build  # noqa: E402
from sematic.packaging.config import find_config  # noqa: E402
from sematic.packaging.dependencies import SKIP, install_dependencies  # noqa: E402
from sematic.packaging.layers import tree_entries  # noqa: E402
from sematic.packaging.target import Target  # noqa: E402
from tests.harness.images import push_base  # noqa: E402
from tests.harness.registry import RegistryServer, local_registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sematic-bench-") as tmp, local_registry() as registry:
        work = Path(tmp)
        base = push_base(
            registry, "base/python", "default", extra_files={"/etc/sematic-base": b"default\n"}
        )
        script = _project(work / "project", registry, base)
        ours = _sematic(script, work / "cache", args.repeat)
        theirs = _buildah(script, work, registry, base, args.repeat)
    _print(ours, theirs)


def _project(folder: Path, registry: RegistryServer, base: str) -> Path:
    shutil.copytree(
        ROOT / "examples" / "two_bases", folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    (folder / "sematic.toml").write_text(
        f'registry = "{registry.address}"\nrepository = "bench/sematic"\n'
        f'insecure_registries = ["{registry.address}"]\ndistributions = []\n'
        f'base = "{base}"\n[env]\nEXAMPLE_GREETING = "hi"\n'
    )
    return folder / "pipeline.py"


Figures = dict[str, float]


def _sematic(script: Path, cache: Path, repeat: int) -> Figures:
    config = find_config(script)

    def once() -> tuple[float, int]:
        started = time.perf_counter()
        result = build(script, config, cache=cache)
        return time.perf_counter() - started, result.bytes_uploaded

    cold, cold_bytes = once()
    changes = [_after_change(script, once) for _ in range(repeat)]
    unchanged, unchanged_bytes = once()
    return {
        "cold": cold,
        "cold bytes": cold_bytes,
        "code change": statistics.median(t for t, _ in changes),
        "code change bytes": statistics.median(b for _, b in changes),
        "no change": unchanged,
        "no change bytes": unchanged_bytes,
    }


def _after_change(script: Path, once: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    with script.open("a") as f:
        f.write(f"# change {time.time_ns()}\n")
    return once()


def _buildah(script: Path, work: Path, registry: RegistryServer, base: str, repeat: int) -> Figures:
    """The same files as a Containerfile: deps, sematic, worker, code, env, entry point."""
    context = work / "context"
    _stage(context, script)
    storage = work / "buildah"
    common = [
        "--root", str(storage / "root"), "--runroot", str(storage / "run"),
        "--storage-driver", "vfs",
    ]  # fmt: skip
    image = f"{registry.address}/bench/buildah:latest"

    def once() -> tuple[float, int]:
        shutil.rmtree(context / "app", ignore_errors=True)
        shutil.copytree(
            script.parent, context / "app", ignore=shutil.ignore_patterns("__pycache__")
        )
        before = _registry_bytes(registry)
        started = time.perf_counter()
        _run(["buildah", *common, "bud", "--layers", "--isolation", "chroot", "--tls-verify=false",
              "-t", image, "-f", str(context / "Containerfile"), str(context)])  # fmt: skip
        _run(["buildah", *common, "push", "--tls-verify=false", image, f"docker://{image}"])
        return time.perf_counter() - started, _registry_bytes(registry) - before

    (context / "Containerfile").write_text(
        f"FROM {base}\n"
        "COPY site-packages /opt/sematic/site-packages\n"
        "COPY sematic /opt/sematic/site-packages/sematic\n"
        "COPY sematic-worker /opt/sematic/bin/sematic-worker\n"
        "ENV PYTHONPATH=/app:/opt/sematic/site-packages EXAMPLE_GREETING=hi\n"
        "WORKDIR /app\n"
        "COPY app /app\n"
        'ENTRYPOINT ["/opt/sematic/bin/sematic-worker"]\n'
    )
    try:
        cold, cold_bytes = once()
        changes = [_after_change(script, once) for _ in range(repeat)]
        unchanged, unchanged_bytes = once()
    finally:
        _run(["buildah", *common, "rm", "--all"], check=False)
        _run(["buildah", *common, "rmi", "--all", "--force"], check=False)
    return {
        "cold": cold,
        "cold bytes": cold_bytes,
        "code change": statistics.median(t for t, _ in changes),
        "code change bytes": statistics.median(b for _, b in changes),
        "no change": unchanged,
        "no change bytes": unchanged_bytes,
    }


def _stage(context: Path, script: Path) -> None:
    # The same dependencies sematic build installs for the bookworm base (CPython 3.11).
    bookworm = Target("linux", "amd64", "", (3, 11), "glibc", (2, 36), "/usr/bin/python3.11")
    folder = install_dependencies(bookworm, cache=context.parent / "deps", distributions=())
    dependencies = tree_entries(folder, contents.SITE_PACKAGES, skip=SKIP)
    for entries in (dependencies, contents.sematic_entries()):
        for entry in entries:
            relative = entry.path.removeprefix(contents.SITE_PACKAGES + "/")
            target = (
                context
                / ("site-packages" if not relative.startswith("sematic/") else "")
                / relative
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.link_target is not None:
                target.symlink_to(entry.link_target)
            elif entry.source is not None:
                shutil.copy2(entry.source, target)
    worker = contents.worker_entries("python3")[0]
    assert worker.data is not None
    (context / "sematic-worker").write_bytes(worker.data)
    (context / "sematic-worker").chmod(0o755)


def _registry_bytes(registry: RegistryServer) -> int:
    blobs = registry.storage / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0


def _run(command: list[str], *, check: bool = True) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def _print(ours: Figures, theirs: Figures) -> None:
    print(f"{'':<20}{'sematic build':>16}{'buildah bud':>16}{'buildah/sematic':>18}")
    for key in ("cold", "code change", "no change"):
        ratio = theirs[key] / ours[key] if ours[key] else float("nan")
        print(f"{key + ' (s)':<20}{ours[key]:>16.3f}{theirs[key]:>16.3f}{ratio:>17.1f}x")
        bytes_key = f"{key} bytes"
        print(f"{'  bytes uploaded':<20}{ours[bytes_key]:>16,.0f}{theirs[bytes_key]:>16,.0f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
