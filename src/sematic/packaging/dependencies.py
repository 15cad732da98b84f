"""Third-party distributions for an image, installed with uv for the image's target.

Nothing compiled is copied from the environment that runs ``sematic build``: wheels are
chosen for the target's Python, ABI and platform (``cp313``, ``manylinux_2_36_x86_64``),
and environment markers are evaluated for the target, so a laptop with CPython 3.11 on
x86-64 builds images for CPython 3.10 on arm64 or 3.13 on musl.

What is installed (the settings' meaning):

- ``requirements``: the user's requirements file, plus what Sematic needs to run in the
  image (its own requirements, and ``kubernetes`` when it is installed here);
- default: every distribution installed here but Sematic and installers, each at its
  installed version;
- ``distributions``: those named, Sematic's own requirements, and ``kubernetes`` when it
  is installed here, at their installed versions when installed here.

In the last two, what these require in turn is resolved for the target with the
versions installed here as constraints (dropped when the target cannot have them).
Distributions installed here from a path or URL rather than an index are copied when
they are pure Python.

The result is a folder in the cache, keyed by what it holds, shared by every base image
with the same target; an unchanged second build does not run uv.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from sematic.core.errors import ConfigurationError
from sematic.packaging.target import Target

Report = Callable[[str], None]

# Names in the returned folder that do not belong in the image: the completion marker,
# uv's lock file, and console scripts (their shebangs name this machine's interpreter).
SKIP = frozenset({".complete", ".lock", "bin"})

_COMPLETE = ".complete"
# Not needed to run a pipeline: Sematic comes from its own layer, the rest are installers.
DISTRIBUTION = "sematic-next"  # this package's distribution (it imports as `sematic`)
_LEFT_OUT = frozenset({DISTRIBUTION, "sematic", "pip", "setuptools", "wheel", "uv"})
_COMPILED = (".so", ".pyd", ".dylib")
# The glibc versions uv's --python-platform accepts for manylinux (2.17 and 2.28..2.40).
_GLIBC_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
_UV_INDEX_VARIABLES = (
    "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS",
)  # fmt: skip
_UV_MACHINES = frozenset({"x86_64", "aarch64"})
_CULPRIT = re.compile(
    r"Because (?!the )(?:there (?:is|are) no versions? of |all versions of |only )?"
    r"([A-Za-z0-9][A-Za-z0-9._-]*)",
    re.IGNORECASE,
)
_NOT_ON_INDEX = re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to ask uv for, and what to copy from here."""

    mode: str  # "requirements", "environment" or "distributions"
    requirements: tuple[str, ...]  # requirement lines for uv
    constraints: tuple[str, ...]  # name==version of what is installed here
    local: tuple[metadata.Distribution, ...]  # installed from a path or URL, pure Python
    user_file: Path | None = None


def install_dependencies(
    target: Target,
    *,
    cache: Path,
    requirements: Path | None = None,
    distributions: tuple[str, ...] | None = None,
    report: Report = lambda _l: None,
) -> Path:
    """Install the pipeline's third-party distributions for ``target`` and return the
    folder whose contents go under site-packages in the image (leave out the names in
    ``SKIP``). ``requirements`` (a requirements file) wins over ``distributions``;
    without either, every distribution installed here is taken.

    Raises ``ConfigurationError`` when a distribution has no wheel for the target, when
    one installed here from a path holds compiled code, or when uv is missing."""
    platform = uv_platform(target)
    uv = _uv_binary()
    plan = _plan(requirements, distributions)
    for dist in plan.local:
        if _editable(dist):
            report(
                f"{dist.metadata['Name']} is installed in editable mode: only its metadata "
                "goes into the image; list its folder in `sources` for its code"
            )
    folder = cache / "dependencies" / _key(plan, target, _uv_version(uv))
    label = f"dependencies for {target.describe()}"
    if (folder / _COMPLETE).is_file():
        report(f"{label}: cached")
        return folder
    count = len(plan.requirements) + len(plan.local)
    report(f"{label}: installing {count} distributions with uv")
    started = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        plan = _install(uv, plan, target, platform, partial, report)
        for dist in plan.local:
            _copy_distribution(dist, partial)
        (partial / _COMPLETE).write_text("")
        _publish(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    installed = sum(1 for p in folder.iterdir() if p.name.endswith(".dist-info"))
    report(f"{label}: {installed} distributions in {time.perf_counter() - started:.1f} s")
    return folder


def uv_platform(target: Target) -> str:
    """uv's ``--python-platform`` for ``target`` (``x86_64-manylinux_2_36``,
    ``aarch64-unknown-linux-musl``); glibc newer than uv knows is clamped to the newest
    it accepts. Raises ``ConfigurationError`` for a target uv cannot install for."""
    where = target.describe()
    if target.free_threaded:
        raise ConfigurationError(
            f"cannot install dependencies for {where}: uv does not select wheels for "
            "free-threaded Python (cp3XXt) here; use a base image with a regular CPython"
        )
    if target.os != "linux" or target.machine not in _UV_MACHINES:
        raise ConfigurationError(
            f"cannot install dependencies for {where}: only linux on amd64 or arm64 is "
            "supported; use a base image for one of those platforms"
        )
    if target.libc == "musl":
        if target.libc_version < (1, 2):
            raise ConfigurationError(
                f"cannot install dependencies for {where}: musllinux wheels need musl 1.2 "
                "or newer; use a newer base image (Alpine 3.13 or later)"
            )
        return f"{target.machine}-unknown-linux-musl"
    major, minor = target.libc_version
    if (major, minor) < (2, 17):
        raise ConfigurationError(
            f"cannot install dependencies for {where}: manylinux wheels need glibc 2.17 or "
            "newer; use a newer base image"
        )
    usable = max(m for m in _GLIBC_MINORS if major > 2 or m <= minor)
    return f"{target.machine}-manylinux_2_{usable}"


def index_arguments(environ: Mapping[str, str]) -> list[str]:
    """uv arguments for the index settings pip users have in their environment
    (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS``), each unless the
    matching ``UV_`` variable, which uv reads itself, is set."""
    arguments: list[str] = []
    if environ.get("PIP_INDEX_URL") and not (
        environ.get("UV_INDEX_URL") or environ.get("UV_DEFAULT_INDEX")
    ):
        arguments += ["--index-url", environ["PIP_INDEX_URL"]]
    if environ.get("PIP_EXTRA_INDEX_URL") and not (
        environ.get("UV_EXTRA_INDEX_URL") or environ.get("UV_INDEX")
    ):
        for url in environ["PIP_EXTRA_INDEX_URL"].split():
            arguments += ["--extra-index-url", url]
    if environ.get("PIP_FIND_LINKS") and not environ.get("UV_FIND_LINKS"):
        for url in environ["PIP_FIND_LINKS"].split():
            arguments += ["--find-links", url]
    return arguments


def is_local(dist: metadata.Distribution) -> bool:
    """Whether ``dist`` was installed from a path or URL (``pip install ./lib``, ``-e``,
    ``git+https://``) rather than from an index: uv cannot fetch it for the target."""
    return dist.read_text("direct_url.json") is not None


def is_pure(dist: metadata.Distribution) -> bool:
    """Whether ``dist`` is pure Python (its WHEEL says ``Root-Is-Purelib: true`` and its
    RECORD lists no compiled module), so its files run on any target."""
    wheel = dist.read_text("WHEEL")
    if wheel is None or dist.files is None:
        return False
    purelib = email.message_from_string(wheel).get("Root-Is-Purelib", "")
    compiled = any(f.name.endswith(_COMPILED) for f in dist.files)
    return purelib.strip().lower() == "true" and not compiled


def _plan(requirements: Path | None, distributions: tuple[str, ...] | None) -> _Plan:
    installed = _installed()
    # What Sematic needs in the image: taken at the versions installed here when the
    # target can have them (as constraints), else at versions it can.
    needed = [*_own_requirements(), *(["kubernetes"] if "kubernetes" in installed else [])]
    if requirements is not None:
        if not requirements.is_file():
            raise ConfigurationError(
                f"the requirements file {requirements} does not exist; fix the setting"
            )
        return _Plan("requirements", tuple(sorted(set(needed))), (), (), requirements)
    wanted = {n: d for n, d in installed.items() if n not in _LEFT_OUT}
    if distributions is None:
        mode = "environment"
        beneath = _closure(needed, wanted)
        chosen = [str(d.metadata["Name"]) for n, d in wanted.items() if n not in beneath]
    else:
        mode, chosen = "distributions", list(distributions)
    soft, soft_local = _resolve_roots(needed, wanted, pin=False)
    hard, hard_local = _resolve_roots(chosen, wanted, pin=True)
    local = {id(d): d for d in (*soft_local, *hard_local)}
    constraints = tuple(sorted(f"{n}=={d.version}" for n, d in wanted.items() if not is_local(d)))
    return _Plan(mode, tuple(sorted({*soft, *hard})), constraints, tuple(local.values()))


def _closure(roots: Iterable[str], installed: Mapping[str, metadata.Distribution]) -> set[str]:
    """The installed distributions ``roots`` require, in turn (markers evaluated here)."""
    found: set[str] = set()
    pending = list(roots)
    while pending:
        requirement = _parse(pending.pop())
        name = canonicalize_name(requirement.name)
        applies = requirement.marker is None or requirement.marker.evaluate({"extra": ""})
        if name in found or name not in installed or not applies:
            continue
        found.add(name)
        pending.extend(installed[name].requires or [])
    return found


def _resolve_roots(
    roots: Iterable[str], installed: Mapping[str, metadata.Distribution], *, pin: bool = True
) -> tuple[tuple[str, ...], tuple[metadata.Distribution, ...]]:
    """Requirement lines for uv (with ``pin``, at the installed version when it fits),
    and the distributions to copy: those installed from a path, with their requirements
    in turn."""
    lines: set[str] = set()
    local: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        requirement = _parse(pending.pop())
        name = canonicalize_name(requirement.name)
        dist = installed.get(name)
        if dist is not None and is_local(dist):
            if name not in local:
                local[name] = _checked_local(dist)
                pending.extend(_runtime_requirements(dist))
            continue
        if name in (DISTRIBUTION, "sematic"):
            continue  # from its own layer
        fits = dist is not None and requirement.url is None
        if pin and fits and dist is not None and dist.version in requirement.specifier:
            requirement.specifier = SpecifierSet(f"=={dist.version}")
        lines.add(str(requirement))
    return tuple(sorted(lines)), tuple(local[n] for n in sorted(local))


def _checked_local(dist: metadata.Distribution) -> metadata.Distribution:
    if is_pure(dist):
        return dist
    raise ConfigurationError(
        f"{dist.metadata['Name']} {dist.version} is installed here from a path or URL and "
        "holds compiled code built for this machine, so it cannot be installed for the "
        "image's target from here; build a wheel of it for the target and list it (or "
        "its index) in a requirements file, or set `requirements` to what the image needs"
    )


def _installed() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        found.setdefault(name, dist)  # the first on sys.path wins, as for imports
    return found


def _own_requirements() -> list[str]:
    """Sematic's requirements without extras and installers (uv builds images and has
    no use in them): the worker in the image needs them."""
    try:
        found = _runtime_requirements(metadata.distribution(DISTRIBUTION))
    except metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"Sematic's package metadata ({DISTRIBUTION}) is not found in this environment; "
            f"install it (pip install {DISTRIBUTION}) into {sys.prefix}"
        ) from None
    return [r for r in found if canonicalize_name(_parse(r).name) not in _LEFT_OUT]


def _runtime_requirements(dist: metadata.Distribution) -> list[str]:
    """``dist``'s requirements but those of extras; other markers stay, for uv to
    evaluate for the target."""
    return [r for r in dist.requires or [] if "extra" not in str(_parse(r).marker or "")]


def _parse(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as error:
        raise ConfigurationError(f"{text!r} is not a valid requirement: {error}") from None


def _key(plan: _Plan, target: Target, uv_version: str) -> str:
    parts = [
        plan.mode, target.key, target.python_version, uv_version,
        *plan.requirements, "--", *plan.constraints, "--",
        *(d.read_text("RECORD") or d.version for d in plan.local),
        *index_arguments(os.environ),
        *(os.environ.get(v, "") for v in _UV_INDEX_VARIABLES),
    ]  # fmt: skip
    if plan.user_file is not None:
        parts.append(plan.user_file.read_text())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _install(
    uv: str, plan: _Plan, target: Target, platform: str, folder: Path, report: Report
) -> _Plan:
    """Run uv until it succeeds: dropping the constraints (versions installed here) the
    target cannot have, and copying from here what the index does not have. Returns the
    plan that worked."""
    constraints = plan.constraints
    while True:
        done = _run_uv(uv, plan, target, platform, folder, constraints)
        if done.returncode == 0:
            return plan
        missing = _NOT_ON_INDEX.search(done.stderr)
        copyable = _installed().get(canonicalize_name(missing.group(1))) if missing else None
        if (
            plan.mode != "requirements"
            and copyable is not None
            and copyable not in plan.local
            and is_pure(copyable)
        ):
            report(f"{copyable.metadata['Name']} is not on the index: copying it from here")
            plan = _without(plan, copyable)
            constraints = tuple(c for c in constraints if c in plan.constraints)
        elif constraints and _relaxable(done.stderr, plan):
            named = tuple(c for c in constraints if c in done.stderr and c not in plan.requirements)
            report(
                f"{', '.join(named) or 'the versions installed here'} do not fit the target: "
                "resolving without them"
            )
            constraints = tuple(c for c in constraints if c not in named) if named else ()
        else:
            raise _failure(done.stderr, plan, target)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()


def _relaxable(stderr: str, plan: _Plan) -> bool:
    """Whether uv failed on a version installed here that is not asked for by name, so
    resolving without it may succeed."""
    if "No solution found" not in stderr:
        return False
    if any(c in stderr and c not in plan.requirements for c in plan.constraints):
        return True
    culprit = _CULPRIT.search(stderr)
    asked = {canonicalize_name(_parse(r).name) for r in plan.requirements if "==" in r}
    return culprit is None or canonicalize_name(culprit.group(1)) not in asked


def _without(plan: _Plan, dist: metadata.Distribution) -> _Plan:
    name = canonicalize_name(dist.metadata["Name"] or "")
    lines = tuple(r for r in plan.requirements if canonicalize_name(_parse(r).name) != name)
    constraints = tuple(c for c in plan.constraints if not c.startswith(f"{name}=="))
    local = (*plan.local, dist)
    return _Plan(plan.mode, lines, constraints, local, plan.user_file)


def _run_uv(
    uv: str,
    plan: _Plan,
    target: Target,
    platform: str,
    folder: Path,
    constraints: tuple[str, ...],
) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="sematic-uv-") as scratch:
        ours = Path(scratch, "requirements.txt")
        ours.write_text("".join(f"{line}\n" for line in plan.requirements))
        command = [
            uv, "pip", "install", "--color", "never", "--no-progress",
            "--python", sys.executable, "--target", str(folder),
            "--python-version", target.python_version, "--python-platform", platform,
            "--only-binary", ":all:", "--requirement", str(ours),
            *index_arguments(os.environ),
        ]  # fmt: skip
        if plan.user_file is not None:
            command += ["--requirement", str(plan.user_file)]
        if constraints:
            pins = Path(scratch, "constraints.txt")
            pins.write_text("".join(f"{line}\n" for line in constraints))
            command += ["--constraint", str(pins)]
        return subprocess.run(command, capture_output=True, text=True, check=False)


def _failure(stderr: str, plan: _Plan, target: Target) -> ConfigurationError:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("Using ")]
    last = "\n".join(lines[-8:])
    culprit = _CULPRIT.search(stderr)
    what = culprit.group(1) if culprit else "the dependencies"
    source = f" (from {plan.user_file})" if plan.user_file is not None else ""
    if "wheel" not in stderr:
        return ConfigurationError(
            f"uv could not install {what} for {target.describe()}{source}; fix the "
            f"requirements or the index settings, or set `requirements`. uv said:\n{last}"
        )
    return ConfigurationError(
        f"{what} cannot be installed for {target.describe()}{source}: no wheel of it fits "
        f"Python {target.python_version} ({target.abi}) on {target.wheel_platform}, and "
        "nothing is built from source. Pin a version that publishes such a wheel, give a "
        "wheel for the target in a requirements file, or set `requirements` to exactly "
        f"what the image needs. uv said:\n{last}"
    )


def _copy_distribution(dist: metadata.Distribution, folder: Path) -> None:
    """Copy ``dist``'s files, as its RECORD lists them, into ``folder`` (site-packages);
    an editable install's path hooks are left out."""
    base = Path(str(dist.locate_file(""))).resolve()
    editable = _editable(dist)
    for file in dist.files or []:
        if file.is_absolute() or file.parts[:1] == ("..",) or file.suffix in (".pyc", ".pyo"):
            continue
        if file.name.startswith("__editable__") or (editable and file.suffix == ".pth"):
            continue
        source = base / file
        if not source.is_file():
            continue
        destination = folder / file
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.unlink(missing_ok=True)  # never write through a link into uv's cache
        shutil.copy2(source, destination)


def _editable(dist: metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    try:
        info = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return False
    return isinstance(info, dict) and bool((info.get("dir_info") or {}).get("editable"))


def _publish(partial: Path, folder: Path) -> None:
    """Move the finished ``partial`` folder to ``folder``; another build that finished
    the same folder first wins."""
    if folder.exists() and not (folder / _COMPLETE).is_file():
        shutil.rmtree(folder, ignore_errors=True)  # left by a crash; never returned
    try:
        partial.rename(folder)
    except OSError:
        if not (folder / _COMPLETE).is_file():
            raise


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise ConfigurationError(
                "uv is needed to install the image's dependencies and is not installed; "
                f"install it into {sys.prefix} (pip install uv)"
            ) from None
        return found


def _uv_version(uv: str) -> str:
    done = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()
