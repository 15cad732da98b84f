"""`sematic build` today (copying this environment's files) vs the builder that installs the
dependencies for each base's own Python with uv, on a same-Python and an other-Python base.

Two builders, each run in its own interpreter (the venv's Python, with PYTHONPATH naming
the source to use): "today" is the package at --old-rev (default 2668c68, extracted with
`git archive` into a temporary folder unless --old-src names one), "new" is this working
tree's src/. Two bases from tests/harness/images.py, pushed to one throwaway registry: Debian
bookworm with Python 3.11 (this machine's) and Debian trixie with Python 3.13.

For each builder and base, with examples/two_bases and `distributions = []`:
1. cold, empty uv cache: a fresh Sematic cache and a fresh UV_CACHE_DIR (the first build);
2. cold, warm uv cache: a fresh Sematic cache, the uv cache that build 1 filled;
3. code change: one line appended to the pipeline, rebuilt (median of --repeat);
4. dependency change: `distributions` goes from [] to ["numpy"], rebuilt;
5. no change: built again.
Each cold build pushes to a repository of its own, so it finds no blob of ours there.
Seconds are those of the `build(...)` call (interpreter start and imports left out);
bytes are what the build uploaded. "image works": after build 1, the image's layers are
pulled from the registry, unpacked into a root filesystem (device files skipped) and
`chroot ROOTFS /usr/bin/python3 -c "...; import pydantic_core"` runs (needs root).

Prints figures side by side; nothing is asserted. The bases come from tests/harness/images.py
(built once with debootstrap, cached under ~/.cache/sematic-dev); the new builder needs
uv and the package index. Usage:
    .venv/bin/python benchmarks/image_targets.py [--repeat 3] [--old-rev 2668c68]
                                                 [--old-src /tmp/old-sematic/src]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _bench import print_table

ROOT = Path(__file__).resolve().parents[1]
_RESULT = "IMAGE-TARGETS-RESULT "
_CHECK = (
    "import sys; sys.path.insert(0, '/opt/sematic/site-packages'); import pydantic_core; "
    "print(pydantic_core.__file__)"
)
_BASES = (  # (key, label, tests.harness.images image name)
    ("py311", "bookworm, Python 3.11", "PY311"),
    ("py313", "trixie, Python 3.13", "PY313"),
)
_SCENARIOS = (
    ("cold", "cold, empty uv cache"),
    ("warm", "cold, warm uv cache"),
    ("code", "code change"),
    ("deps", "dependency change"),
    ("same", "no change"),
)
_BUILDERS = ("today", "new")


# --- In the child: one build with the package on PYTHONPATH ----------------------------


def _child(script: Path, cache: Path) -> None:
    """Runs one build of ``script`` with the sematic that PYTHONPATH names; prints JSON."""
    import sematic
    from sematic.packaging.builder import build
    from sematic.packaging.config import find_config

    lines: list[str] = []
    config = find_config(script)
    started = time.perf_counter()
    result = build(script, config, cache=cache, report=lines.append)
    seconds = time.perf_counter() - started
    figures = {
        "seconds": seconds,
        "bytes": result.bytes_uploaded,
        "images": [image.image for image in result.images],
        "sematic": sematic.__file__,
        "report": lines,
    }
    print(_RESULT + json.dumps(figures), flush=True)


# --- In the parent ---------------------------------------------------------------------


@dataclass
class Cell:
    seconds: float | None = None
    bytes: float | None = None
    error: str = ""


@dataclass
class Column:
    """One builder on one base: a cell per scenario, and whether the cold image works."""

    cells: dict[str, Cell] = field(default_factory=dict)
    works: str = "-"
    works_detail: str = ""
    report: list[str] = field(default_factory=list)
    sematic: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="code-change builds (median)")
    parser.add_argument("--old-rev", default="2668c68", help="today's builder's commit")
    parser.add_argument("--old-src", type=Path, help="its src/ folder (default: extracted)")
    parser.add_argument("--child", nargs=2, metavar=("SCRIPT", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]))
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: the image check unpacks images and uses chroot")

    sys.path.insert(0, str(ROOT))
    from tests import images
    from tests.harness.registry import local_registry

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sematic-targets-") as tmp, local_registry() as reg:
        work = Path(tmp)
        sources = {"today": args.old_src or _extract(args.old_rev, work), "new": ROOT / "src"}
        bases = {
            key: images.push_base(reg, "base/python", key, image=getattr(images, name))
            for key, _label, name in _BASES
        }
        results: dict[tuple[str, str], Column] = {}
        for base_key, base in bases.items():
            for builder in _BUILDERS:
                print(f"building: {builder} on {base_key} ...", file=sys.stderr, flush=True)
                results[builder, base_key] = _measure(
                    builder,
                    sources[builder],
                    base_key,
                    base,
                    reg.address,
                    reg.url,
                    work,
                    args.repeat,
                )
    _print(results, sources, args.old_rev, time.perf_counter() - started)


def _extract(rev: str, work: Path) -> Path:
    """``git archive REV src`` unpacked into ``work``; returns its src folder."""
    folder = work / f"sematic-{rev}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def _project(folder: Path, registry: str, repository: str, base: str, deps: str) -> Path:
    if not folder.exists():
        shutil.copytree(
            ROOT / "examples" / "two_bases", folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    (folder / "sematic.toml").write_text(
        f'registry = "{registry}"\nrepository = "{repository}"\n'
        f'insecure_registries = ["{registry}"]\ndistributions = {deps}\n'
        f'base = "{base}"\n[env]\nEXAMPLE_GREETING = "hi"\n'
    )
    return folder / "pipeline.py"


def _measure(
    builder: str, source: Path, base_key: str, base: str, address: str, url: str, work: Path,
    repeat: int,
) -> Column:  # fmt: skip
    here = work / f"{builder}-{base_key}"
    uv_cache = here / "uv-cache"
    uv_cache.mkdir(parents=True)
    column = Column()

    def run(script: Path, cache: Path) -> tuple[Cell, list[str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEMATIC_")}
        env.update(PYTHONPATH=str(source), UV_CACHE_DIR=str(uv_cache), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(script), str(cache)],
            capture_output=True, text=True, env=env, cwd=here, check=False,
        )  # fmt: skip
        found = [line for line in done.stdout.splitlines() if line.startswith(_RESULT)]
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return Cell(error=last[:200]), []
        figures = json.loads(found[-1].removeprefix(_RESULT))
        column.report, column.sematic = figures["report"], figures["sematic"]
        return Cell(figures["seconds"], figures["bytes"]), figures["images"]

    # 1. the first build ever: nothing in either cache
    repository = f"bench/{builder}-{base_key}-cold"
    script = _project(here / "project-cold", address, repository, base, "[]")
    column.cells["cold"], built = run(script, here / "cache-cold")
    if built:
        try:
            column.works, column.works_detail = _image_works(url, built[0], here / "rootfs")
        except Exception as error:  # noqa: BLE001 (a failed check is a figure, not a crash)
            column.works, column.works_detail = "error", repr(error)
    # 2..5 in another project, cache and repository; the uv cache is now warm
    repository = f"bench/{builder}-{base_key}"
    script = _project(here / "project", address, repository, base, "[]")
    cache = here / "cache"
    column.cells["warm"], _ = run(script, cache)
    changes = []
    for _ in range(repeat):
        with script.open("a") as f:
            f.write(f"# change {time.time_ns()}\n")
        changes.append(run(script, cache)[0])
    column.cells["code"] = _median(changes)
    _project(here / "project", address, repository, base, '["numpy"]')
    column.cells["deps"], _ = run(script, cache)
    column.cells["same"], _ = run(script, cache)
    return column


def _median(cells: list[Cell]) -> Cell:
    failed = [c for c in cells if c.error]
    if failed:
        return failed[0]
    return Cell(
        statistics.median(c.seconds or 0.0 for c in cells),
        statistics.median(c.bytes or 0.0 for c in cells),
    )


# --- Does the image import pydantic_core? ----------------------------------------------


def _image_works(url: str, image: str, rootfs: Path) -> tuple[str, str]:
    """Pulls ``image`` (REGISTRY/REPOSITORY@DIGEST) over the registry's /v2 API, unpacks
    its layers into ``rootfs`` and imports pydantic_core there under chroot."""
    import httpx

    name, _, digest = image.partition("/")[2].partition("@")
    accept = ", ".join(
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
    )
    rootfs.mkdir(parents=True)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            response = client.get(f"/v2/{name}/manifests/{digest}", headers={"Accept": accept})
            response.raise_for_status()
            for layer in response.json()["layers"]:
                blob = rootfs.parent / "layer.tar.gz"
                with (
                    client.stream("GET", f"/v2/{name}/blobs/{layer['digest']}") as stream,
                    blob.open("wb") as out,
                ):  # fmt: skip
                    stream.raise_for_status()
                    for chunk in stream.iter_bytes(1 << 20):
                        out.write(chunk)
                _unpack(blob, rootfs)
                blob.unlink()
        done = subprocess.run(
            [_chroot(), str(rootfs), "/usr/bin/python3", "-c", _CHECK],
            capture_output=True, text=True, timeout=120, check=False,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
        )  # fmt: skip
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    if done.returncode == 0:
        return "yes", done.stdout.strip()
    return "NO", (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]


def _chroot() -> str:
    found = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    if found is None:
        raise SystemExit("chroot is not installed (coreutils)")
    return found


def _unpack(blob: Path, rootfs: Path) -> None:
    """One layer onto ``rootfs``: whiteouts applied, device files and FIFOs skipped, and
    nothing written through a link that leads out of ``rootfs``."""
    top = rootfs.resolve()
    with gzip.open(blob) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            path = Path(os.path.normpath(member.name.lstrip("/")))
            if path.parts[:1] == ("..",) or member.isdev():
                continue
            parent = (top / path).parent.resolve()
            if parent != top and top not in parent.parents:
                continue
            target = parent / path.name
            if path.name == ".wh..wh..opq":
                for child in parent.iterdir() if parent.is_dir() else ():
                    _remove(child)
                continue
            if path.name.startswith(".wh."):
                _remove(parent / path.name.removeprefix(".wh."))
                continue
            if not (member.isdir() and target.is_dir() and not target.is_symlink()):
                _remove(target)
            if member.islnk():
                linked = Path(os.path.normpath(member.linkname.lstrip("/")))
                if linked.parts[:1] == ("..",):
                    continue
                member.linkname = linked.as_posix()  # inside rootfs, not this machine
            tar.extract(member, top, set_attrs=True, filter="fully_trusted")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


# --- The table -------------------------------------------------------------------------


def _print(
    results: dict[tuple[str, str], Column], sources: dict[str, Path], rev: str, total: float
) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    version = (
        subprocess.run([uv, "--version"], capture_output=True, text=True, check=False).stdout
        if uv
        else "uv not found\n"
    )
    print(f"uv: {version.strip()} ({uv})")
    for builder in _BUILDERS:
        ran = {results[builder, b].sematic for b, _l, _n in _BASES} - {""}
        ran = {str(Path(path).parents[1]) for path in ran}
        print(f"{builder:<6} {', '.join(sorted(ran)) or sources[builder]}")
    print(f"today = {rev}; seconds: the build() call; bytes: uploaded (MB = 10^6 bytes)")
    print()
    headers = [
        "base", "scenario", "today s", "today MB", "new s", "new MB",
        "new/today s", "new/today MB", "image works (today / new)",
    ]  # fmt: skip
    rows = []
    for base_key, label, _name in _BASES:
        today, new = results["today", base_key], results["new", base_key]
        for number, (key, scenario) in enumerate(_SCENARIOS, start=1):
            a, b = today.cells.get(key, Cell(error="?")), new.cells.get(key, Cell(error="?"))
            works = f"{today.works} / {new.works}" if key == "cold" else ""
            rows.append([
                label if number == 1 else "", f"{number}. {scenario}",
                _seconds(a), _megabytes(a), _seconds(b), _megabytes(b),
                _ratio(a.seconds, b.seconds), _ratio(a.bytes, b.bytes), works,
            ])  # fmt: skip
    print_table(headers, rows)
    print()
    for (builder, base_key), column in results.items():
        detail = f"{builder} on {base_key}: image works {column.works}: {column.works_detail}"
        print(detail[:160])
        for key, cell in column.cells.items():
            if cell.error:
                print(f"  {key} failed: {cell.error}")
        if builder == "new":
            print("  " + " | ".join(line for line in column.report if line.startswith("base ")))
    print(f"\ntotal {total:.0f} s")


def _seconds(cell: Cell) -> str:
    return "error" if cell.error else f"{cell.seconds:.2f}"


def _megabytes(cell: Cell) -> str:
    if cell.error:
        return "error"
    size = cell.bytes or 0
    return f"{size / 1e6:.3f}" if size < 1e6 else f"{size / 1e6:.2f}"


def _ratio(today: float | None, new: float | None) -> str:
    if today is None or new is None:
        return "-"
    if today == 0:
        return "-" if new == 0 else "inf"
    return f"{new / today:.2f}x"


if __name__ == "__main__":
    main()
