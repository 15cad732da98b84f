"""Dependencies installed with real uv from the real index, for targets unlike this host."""

from __future__ import annotations

import os
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging import dependencies
from sematic.packaging.dependencies import (
    SKIP,
    index_arguments,
    install_dependencies,
    is_local,
    is_pure,
    uv_platform,
)
from sematic.packaging.target import Target
from tests.harness.pythons import find_python

_ELF_X86_64 = 62
_ELF_AARCH64 = 183


def _target(
    python: tuple[int, int] = (3, 13),
    architecture: str = "amd64",
    libc: str = "glibc",
    libc_version: tuple[int, int] = (2, 36),
    free_threaded: bool = False,
) -> Target:
    interpreter = f"/usr/local/bin/python{python[0]}.{python[1]}"
    return Target("linux", architecture, "", python, libc, libc_version, interpreter, free_threaded)


def _python(version: str) -> str:
    path = find_python(version)
    assert path is not None, f"this test needs CPython {version}; install it with pyenv"
    return str(path)


def _imports(python: str, folder: Path, modules: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        [python, "-I", "-c", f"import sys; sys.path.insert(0, {str(folder)!r}); import {modules}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _files(folder: Path, pattern: str) -> list[Path]:
    return [p for p in folder.rglob(pattern) if p.is_file()]


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def cp313(cache: Path) -> Path:
    return install_dependencies(_target(), cache=cache, distributions=("numpy",))


@pytest.mark.slow
def test_cp313_gets_wheels_built_for_cp313(cp313: Path) -> None:
    assert (cp313 / "pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so").is_file()
    assert _files(cp313 / "numpy", "*.cpython-313-x86_64-linux-gnu.so")
    assert not _files(cp313, "*cpython-311*")
    assert (cp313 / "kubernetes").is_dir()  # installed here: the driver needs it
    assert not (cp313 / "sematic").exists()  # from its own layer
    assert (cp313 / ".complete").is_file()
    _imports(_python("3.13.0"), cp313, "pydantic_core, numpy, pydantic, sqlalchemy, kubernetes")


@pytest.mark.slow
def test_cp313_takes_the_versions_installed_here(cp313: Path) -> None:
    for name in ("numpy", "pydantic", "pydantic-core"):
        version = metadata.version(name)
        assert list(cp313.glob(f"{name.replace('-', '_')}-{version}.dist-info")), name


@pytest.mark.slow
def test_cp310_evaluates_markers_for_the_target(cache: Path) -> None:
    folder = install_dependencies(_target(python=(3, 10)), cache=cache, distributions=())
    assert list(folder.glob("exceptiongroup-*.dist-info"))  # anyio needs it before 3.11
    assert _files(folder / "pydantic_core", "*.cpython-310-x86_64-linux-gnu.so")
    assert not _files(folder, "*cpython-311*")
    _imports(_python("3.10.13"), folder, "pydantic_core, pydantic, anyio, exceptiongroup")


@pytest.mark.slow
def test_aarch64_gets_only_aarch64_code(cache: Path) -> None:
    folder = install_dependencies(
        _target(architecture="arm64"), cache=cache, distributions=("numpy",)
    )
    shared = _files(folder, "*.so")
    assert shared
    machines = {_elf_machine(p) for p in shared}
    assert machines == {_ELF_AARCH64}, machines
    extensions = [p.name for p in shared if "cpython-" in p.name]
    assert extensions
    assert all("aarch64" in name for name in extensions), extensions


@pytest.mark.slow
def test_musl_gets_musllinux_wheels(cache: Path) -> None:
    folder = install_dependencies(
        _target(libc="musl", libc_version=(1, 2)), cache=cache, distributions=()
    )
    (module,) = _files(folder / "pydantic_core", "*.so")
    assert "musl" in module.name


@pytest.mark.slow
def test_a_pin_without_a_wheel_for_the_target_is_named(cache: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==1.24.4\n")
    with pytest.raises(ConfigurationError) as raised:
        install_dependencies(_target(), cache=cache, requirements=requirements)
    message = str(raised.value)
    assert "numpy" in message
    assert "3.13" in message
    assert "Pin a version" in message
    assert not list((cache / "dependencies").glob("*.partial"))


@pytest.mark.slow
def test_requirements_file_gets_sematics_own_requirements(cache: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.17.0\n")
    folder = install_dependencies(_target(), cache=cache, requirements=requirements)
    assert (folder / "six.py").is_file()
    assert (folder / "pydantic").is_dir()


@pytest.mark.slow
def test_an_unchanged_second_call_does_not_run_uv(
    cp313: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = (cp313 / ".complete").stat().st_mtime_ns

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("uv ran for a cached folder")

    monkeypatch.setattr(dependencies, "_run_uv", refuse)
    lines: list[str] = []
    started = time.perf_counter()
    again = install_dependencies(
        _target(), cache=cache, distributions=("numpy",), report=lines.append
    )
    elapsed = time.perf_counter() - started
    assert again == cp313
    assert (cp313 / ".complete").stat().st_mtime_ns == marker
    assert lines and lines[-1].endswith("cached")
    assert elapsed < 2  # about 0.05 s here; loose for a busy machine


@pytest.mark.slow
def test_another_target_gets_another_folder(cp313: Path, cache: Path) -> None:
    other = install_dependencies(
        _target(architecture="arm64"), cache=cache, distributions=("numpy",)
    )
    assert other != cp313
    same = install_dependencies(
        _target(libc_version=(2, 36)), cache=cache, distributions=("numpy",)
    )
    assert same == cp313


def test_skip_names_what_is_not_for_the_image() -> None:
    assert {".complete", ".lock", "bin"} <= SKIP


def test_sematics_own_requirements_leave_out_installers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_distribution(
        tmp_path, "sematic", files={}, requires=("uv>=0.5", "pydantic>=2", "numpy; extra == 'n'")
    )
    monkeypatch.setattr(dependencies.metadata, "distribution", lambda _name: fake)
    assert dependencies._own_requirements() == ["pydantic>=2"]


def test_uv_platform_maps_and_clamps_glibc() -> None:
    assert uv_platform(_target(libc_version=(2, 36))) == "x86_64-manylinux_2_36"
    assert uv_platform(_target(libc_version=(2, 41))) == "x86_64-manylinux_2_40"
    assert uv_platform(_target(libc_version=(2, 30))) == "x86_64-manylinux_2_28"
    assert uv_platform(_target(libc_version=(2, 17))) == "x86_64-manylinux_2_17"
    assert uv_platform(_target(architecture="arm64")) == "aarch64-manylinux_2_36"
    musl = _target(architecture="arm64", libc="musl", libc_version=(1, 2))
    assert uv_platform(musl) == "aarch64-unknown-linux-musl"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (_target(libc_version=(2, 12)), "glibc 2.17"),
        (_target(libc="musl", libc_version=(1, 1)), "musl 1.2"),
        (_target(architecture="s390x"), "amd64 or arm64"),
        (_target(free_threaded=True), "free-threaded"),
    ],
)
def test_uv_platform_refuses_what_uv_cannot_target(target: Target, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words) as raised:
        uv_platform(target)
    assert target.describe() in str(raised.value)


def test_index_arguments_follow_pip_settings_unless_uv_ones_are_set() -> None:
    pip = {
        "PIP_INDEX_URL": "https://mirror/simple",
        "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple",
    }
    assert index_arguments(pip) == [
        "--index-url", "https://mirror/simple",
        "--extra-index-url", "https://a/simple", "--extra-index-url", "https://b/simple",
    ]  # fmt: skip
    both = {**pip, "UV_INDEX_URL": "https://uv/simple", "UV_EXTRA_INDEX_URL": "https://c"}
    assert index_arguments(both) == []
    assert index_arguments({}) == []


def _fake_distribution(
    site: Path,
    name: str,
    *,
    files: dict[str, str],
    purelib: bool = True,
    direct_url: str | None = '{"url": "file:///src/lib", "dir_info": {}}',
    requires: tuple[str, ...] = (),
) -> metadata.Distribution:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = [f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"]
    lines += [f"Requires-Dist: {r}\n" for r in requires]
    (info / "METADATA").write_text("".join(lines))
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: {str(purelib).lower()}\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url)
    record = [f"{info.name}/{n}," for n in ("METADATA", "WHEEL", "RECORD", "direct_url.json")]
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
        record.append(f"{path},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return metadata.PathDistribution(info)


def test_local_pure_distribution_is_copied_with_its_requirements(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = _fake_distribution(
        site,
        "mylib",
        files={"mylib/__init__.py": "X = 1\n"},
        requires=("six>=1", "a; extra == 'b'"),
    )
    index = _fake_distribution(site, "plain", files={"plain.py": ""}, direct_url=None)
    assert is_local(dist) and is_pure(dist)
    assert not is_local(index)
    lines, local = dependencies._resolve_roots(["mylib"], {"mylib": dist})
    assert lines == ("six>=1",)
    assert local == (dist,)
    out = tmp_path / "out"
    out.mkdir()
    dependencies._copy_distribution(dist, out)
    assert (out / "mylib/__init__.py").read_text() == "X = 1\n"
    assert (out / "mylib-1.0.dist-info/METADATA").is_file()


def test_local_compiled_distribution_is_refused_by_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = _fake_distribution(
        site, "fastlib", files={"fastlib/_speed.cpython-311-x86_64-linux-gnu.so": ""}
    )
    assert is_local(dist)
    assert not is_pure(dist)
    with pytest.raises(ConfigurationError, match="fastlib") as raised:
        dependencies._resolve_roots(["fastlib"], {"fastlib": dist})
    assert "wheel" in str(raised.value)


def test_non_purelib_wheel_is_not_pure(tmp_path: Path) -> None:
    dist = _fake_distribution(tmp_path, "platlib", files={"platlib.py": ""}, purelib=False)
    assert not is_pure(dist)


def test_publish_tolerates_a_build_that_finished_first(tmp_path: Path) -> None:
    folder = tmp_path / "key"
    winner = tmp_path / "winner.partial"
    loser = tmp_path / "loser.partial"
    for partial in (winner, loser):
        partial.mkdir()
        (partial / ".complete").write_text("")
        (partial / "a.py").write_text(partial.name)
    dependencies._publish(winner, folder)
    dependencies._publish(loser, folder)
    assert (folder / "a.py").read_text() == "winner.partial"
