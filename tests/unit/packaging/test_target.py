"""detect_target: the interpreter, C library and platform of a base image, read from its
config and its layers (synthetic ones here, and the real Debian bookworm base)."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from sematic.core.errors import ConfigurationError
from sematic.packaging.target import Target, detect_target
from tests.harness.images import base_layer


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target``."""

    target: str


@dataclass(frozen=True)
class Hard:
    """A hard link to the member ``target`` of the same layer."""

    target: str


Entry: TypeAlias = bytes | Link | Hard | None  # None: a folder
MakeLayer: TypeAlias = Callable[..., Path]

DEBIAN_LIBC = (
    b"\x7fELF...\x00GLIBC_2.2.5\x00GLIBC_2.34\x00GLIBC_PRIVATE\x00"
    b"GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\nCopyright\x00"
)
MUSL_LOADER = b"\x7fELF...\x00musl libc (x86_64)\nVersion %s\n\x001.2.4\x00/etc/ld-musl\x00"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def make_layer(tmp_path: Path) -> MakeLayer:
    """Writes a layer of ``entries`` (in that order) to ``tmp_path``; gzip unless told."""

    def make(entries: Mapping[str, Entry], *, compress: bool = True) -> Path:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, entry in entries.items():
                info = tarfile.TarInfo(name)
                if isinstance(entry, bytes):
                    info.size, info.mode = len(entry), 0o755
                    tar.addfile(info, io.BytesIO(entry))
                    continue
                if entry is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                elif isinstance(entry, Link):
                    info.type, info.linkname = tarfile.SYMTYPE, entry.target
                else:
                    info.type, info.linkname = tarfile.LNKTYPE, entry.target
                tar.addfile(info)
        data = gzip.compress(raw.getvalue()) if compress else raw.getvalue()
        path = tmp_path / f"{hashlib.sha256(data).hexdigest()}.{'tgz' if compress else 'tar'}"
        path.write_bytes(data)
        return path

    return make


def config(
    env: Mapping[str, str] | None = None, *, architecture: str = "amd64", **extra: Any
) -> dict[str, Any]:
    """An image config for linux/``architecture`` with ``env`` (a default PATH if None)."""
    variables = {"PATH": DEFAULT_PATH} if env is None else env
    return {
        "os": "linux",
        "architecture": architecture,
        "config": {"Env": [f"{key}={value}" for key, value in variables.items()]},
        **extra,
    }


def debian(python: str = "python3.11") -> dict[str, Entry]:
    """A merged-/usr Debian: /bin, /lib, /lib64 link into /usr; ``python`` in /usr/bin."""
    version = python.removeprefix("python").rstrip("t")
    return {
        "./": None,
        "./bin": Link("usr/bin"),
        "./lib": Link("usr/lib"),
        "./lib64": Link("usr/lib64"),
        "./usr/": None,
        "./usr/bin/": None,
        "./usr/bin/python3": Link(python),
        f"./usr/bin/{python}": b"\x7fELF python",
        f"./usr/lib/python{version}/os.py": b"# os\n",
        "./usr/lib/python3/dist-packages/": None,
        "./usr/lib/x86_64-linux-gnu/libc.so.6": DEBIAN_LIBC,
        "./usr/lib64/ld-linux-x86-64.so.2": Link("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    }


def elf(loader: bytes) -> bytes:
    """The start of a little-endian ELF64 executable whose PT_INTERP names ``loader``."""
    header = b"\x7fELF\x02\x01\x01" + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    program = struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, len(loader) + 1, len(loader) + 1, 1)
    return header + program + loader + b"\x00"


# --- interpreters ------------------------------------------------------------------------


def test_merged_usr_debian(make_layer: MakeLayer) -> None:
    target = detect_target("debian:bookworm", config(), [make_layer(debian())])
    assert target == Target(
        os="linux",
        architecture="amd64",
        variant="",
        python=(3, 11),
        libc="glibc",
        libc_version=(2, 36),
        interpreter="/usr/bin/python3.11",
    )
    assert target.key == "cp311-manylinux_2_36_x86_64"


def test_links_in_parent_folders_are_followed(make_layer: MakeLayer) -> None:
    # Only /bin in PATH: /bin/python3 -> (bin -> usr/bin) -> python3.11.
    target = detect_target("debian", config({"PATH": "/bin"}), [make_layer(debian())])
    assert target.interpreter == "/usr/bin/python3.11"


def test_absolute_links_and_chains(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "usr/local/bin/python3": Link("/usr/local/bin/py"),
        "usr/local/bin/py": Link("../../bin/python3"),
    }
    target = detect_target("debian", config(), [make_layer(layer)])
    assert target.interpreter == "/usr/bin/python3.11"


def test_official_python_image(make_layer: MakeLayer) -> None:
    """python:3.10-slim: Debian (older glibc, libc.so.6 -> libc-2.31.so), then Python built
    into /usr/local; plain tar layers."""
    os_layer = {
        "lib/x86_64-linux-gnu/libc.so.6": Link("libc-2.31.so"),
        "lib/x86_64-linux-gnu/libc-2.31.so": b"\x7fELF no banner",
        "usr/bin/perl": b"",
    }
    python_layer = {
        "usr/local/bin/python3": Link("python3.10"),
        "usr/local/bin/python3.10": b"\x7fELF",
        "usr/local/lib/python3.10/os.py": b"",
    }
    env = {"PATH": "/usr/local/bin:" + DEFAULT_PATH, "PYTHON_VERSION": "3.10.13"}
    target = detect_target(
        "python:3.10-slim",
        config(env),
        [make_layer(os_layer, compress=False), make_layer(python_layer, compress=False)],
    )
    assert (target.interpreter, target.python) == ("/usr/local/bin/python3.10", (3, 10))
    assert (target.libc, target.libc_version) == ("glibc", (2, 31))


def test_alpine_musl(make_layer: MakeLayer) -> None:
    layer = {
        "lib/ld-musl-x86_64.so.1": MUSL_LOADER,
        "lib/libc.musl-x86_64.so.1": Link("ld-musl-x86_64.so.1"),
        "usr/bin/python3": Link("python3.12"),
        "usr/bin/python3.12": b"\x7fELF",
        "usr/lib/python3.12/os.py": b"",
    }
    target = detect_target("python:3.12-alpine", config(), [make_layer(layer)])
    assert (target.libc, target.libc_version) == ("musl", (1, 2))
    assert target.wheel_platform == "musllinux_1_2_x86_64"


def test_musl_version_from_the_loader_or_assumed(make_layer: MakeLayer) -> None:
    layer = {"lib/ld-musl-aarch64.so.1": b"\x001.1.24\x00", "usr/bin/python3": Link("python3.11")}
    layer["usr/bin/python3.11"] = b""
    old = detect_target("alpine", config(architecture="arm64"), [make_layer(layer)])
    assert old.wheel_platform == "musllinux_1_1_aarch64"
    layer["lib/ld-musl-aarch64.so.1"] = b"no version"
    unknown = detect_target("alpine", config(), [make_layer(layer), make_layer({"x": b""})])
    assert unknown.libc_version == (1, 2)


def test_glibc_version_from_symbol_versions(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "./usr/lib/x86_64-linux-gnu/libc.so.6": b"\x00GLIBC_2.17\x00GLIBC_2.28\x00GLIBC_2.3\x00"
    }
    assert detect_target("rhel", config(), [make_layer(layer)]).libc_version == (2, 28)


def test_hard_linked_libc(make_layer: MakeLayer) -> None:
    layer = {
        "usr/bin/python3": Link("python3.11"),
        "usr/bin/python3.11": b"",
        "usr/lib64/libc.so.6": DEBIAN_LIBC,
        "lib64/libc.so.6": Hard("usr/lib64/libc.so.6"),
    }
    assert detect_target("centos", config(), [make_layer(layer)]).libc_version == (2, 36)


def test_libc_outside_the_library_folders_is_read_again(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "./usr/lib/x86_64-linux-gnu/libc.so.6": Link("/opt/glibc/lib/libc.so"),
        "./opt/glibc/lib/libc.so": DEBIAN_LIBC.replace(b"2.36", b"2.39"),
    }
    other = make_layer({"etc/hostname": b"base\n"})
    target = detect_target("base", config(), [make_layer(layer), other])
    assert target.libc_version == (2, 39)


def test_debian_with_the_musl_package_is_glibc(make_layer: MakeLayer) -> None:
    """Both C libraries: the interpreter's ELF header names the one it runs with."""
    layer = debian() | {
        "./usr/bin/python3.11": elf(b"/lib64/ld-linux-x86-64.so.2"),
        "./usr/lib/ld-musl-x86_64.so.1": Link("x86_64-linux-musl/libc.so"),
        "./usr/lib/x86_64-linux-musl/libc.so": MUSL_LOADER,
    }
    target = detect_target("debian", config(), [make_layer(layer)])
    assert (target.libc, target.libc_version) == ("glibc", (2, 36))
    layer["./usr/bin/python3.11"] = elf(b"/lib/ld-musl-x86_64.so.1")
    assert detect_target("debian", config(), [make_layer(layer)]).libc == "musl"


def test_free_threaded(make_layer: MakeLayer) -> None:
    target = detect_target("python:3.13t", config(), [make_layer(debian("python3.13t"))])
    assert (target.python, target.free_threaded, target.abi) == ((3, 13), True, "cp313t")


def test_arm64(make_layer: MakeLayer) -> None:
    arm = config(architecture="arm64", variant="v8")
    target = detect_target("debian", arm, [make_layer(debian())])
    assert (target.platform, target.machine) == ("linux/arm64/v8", "aarch64")
    assert target.wheel_platform == "manylinux_2_36_aarch64"


def test_absolute_python_setting(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "opt/conda/bin/python": Link("python3.12"),
        "opt/conda/bin/python3.12": b"",
        "opt/conda/lib/python3.12/os.py": b"",
    }
    target = detect_target("conda", config(), [make_layer(layer)], python="/opt/conda/bin/python")
    assert (target.interpreter, target.python) == ("/opt/conda/bin/python3.12", (3, 12))


def test_unversioned_interpreter_takes_its_stdlib_version(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "opt/py/bin/python3": b"\x7fELF",
        "opt/py/lib/python3.13t/os.py": b"",
        "opt/py/lib/python3.13t/site-packages/": None,
    }
    target = detect_target("custom", config({"PATH": "/opt/py/bin"}), [make_layer(layer)])
    assert (target.interpreter, target.abi) == ("/opt/py/bin/python3", "cp313t")
    # Two builds next to it: PYTHON_VERSION cannot tell which (3.13 or 3.13t) this is.
    layer["opt/py/lib/python3.13/os.py"] = b""
    env = {"PATH": "/opt/py/bin", "PYTHON_VERSION": "3.13.1"}
    with pytest.raises(ConfigurationError, match=r"python3.13, python3.13t"):
        detect_target("custom", config(env), [make_layer(layer)])
    layer["opt/py/lib/python3.12/os.py"] = layer.pop("opt/py/lib/python3.13t/os.py")
    assert detect_target("custom", config(env), [make_layer(layer)]).abi == "cp313"


def test_unversioned_interpreter_falls_back_to_python_version(make_layer: MakeLayer) -> None:
    layer = debian() | {"opt/py/bin/python3": b"\x7fELF"}
    env = {"PATH": "/opt/py/bin", "PYTHON_VERSION": "3.13.1"}
    assert detect_target("custom", config(env), [make_layer(layer)]).python == (3, 13)
    with pytest.raises(ConfigurationError, match=r"cannot tell the version.*/opt/py/bin/python3"):
        detect_target("custom", config({"PATH": "/opt/py/bin"}), [make_layer(layer)])


def test_a_stdlib_of_another_version_is_refused(make_layer: MakeLayer) -> None:
    layer = debian() | {"opt/py/bin/python3.12": b"", "opt/py/lib/python3.11/os.py": b""}
    with pytest.raises(ConfigurationError, match=r"named for Python 3.12.*python3.11"):
        detect_target(
            "odd", config({"PATH": "/opt/py/bin"}), [make_layer(layer)], python="python3.12"
        )


# --- whiteouts and links -----------------------------------------------------------------


def test_whiteout_removes_an_interpreter(make_layer: MakeLayer) -> None:
    first = debian() | {
        "usr/local/bin/python3": Link("python3.12"),
        "usr/local/bin/python3.12": b"",
        "usr/local/lib/python3.12/os.py": b"",
    }
    second = {"usr/local/bin/.wh.python3.12": b"", "usr/local/lib/.wh.python3.12": b""}
    layers = [make_layer(first)]
    assert detect_target("base", config(), layers).python == (3, 12)
    # /usr/local/bin/python3 now dangles: the next folder of PATH has the interpreter.
    target = detect_target("base", config(), [*layers, make_layer(second)])
    assert target.interpreter == "/usr/bin/python3.11"


def test_whiteout_removes_a_whole_folder(make_layer: MakeLayer) -> None:
    first = debian() | {"opt/py/bin/python3.13": b"", "opt/py/lib/python3.13/os.py": b""}
    layers = [make_layer(first), make_layer({"opt/.wh.py": b""})]
    with pytest.raises(ConfigurationError, match=r"/opt/py/bin/python3.13 is not a file"):
        detect_target("base", config(), layers, python="/opt/py/bin/python3.13")


def test_opaque_folder_hides_lower_layers(make_layer: MakeLayer) -> None:
    first = debian() | {
        "usr/local/bin/python3": Link("python3.12"),
        "usr/local/bin/python3.12": b"",
    }
    # The marker after the layer's own entries: it hides only what is below.
    second = {
        "usr/local/bin/python3": Link("python3.13"),
        "usr/local/bin/python3.13": b"",
        "usr/local/bin/.wh..wh..opq": b"",
    }
    target = detect_target("base", config(), [make_layer(first), make_layer(second)])
    assert target.interpreter == "/usr/local/bin/python3.13"
    third = {"usr/local/bin/.wh..wh..opq": b"", "usr/local/bin/other": b""}
    layers = [make_layer(first), make_layer(second), make_layer(third)]
    assert detect_target("base", config(), layers).interpreter == "/usr/bin/python3.11"


def test_link_loops_are_skipped(make_layer: MakeLayer) -> None:
    layer = debian() | {
        "usr/local/bin/python3": Link("python3"),
        "usr/local/sbin/python3": Link("/usr/local/sbin/a"),
        "usr/local/sbin/a": Link("b"),
        "usr/local/sbin/b": Link("a"),
    }
    assert detect_target("base", config(), [make_layer(layer)]).python == (3, 11)
    del layer["./usr/bin/python3"]
    with pytest.raises(ConfigurationError, match=r"/usr/local/bin/python3: a loop"):
        detect_target("base", config(), [make_layer(layer)])


def test_a_folder_link_loop_does_not_hang(make_layer: MakeLayer) -> None:
    layer = debian() | {"loop": Link("loop/x"), "./usr/lib/python3.11": Link("/loop")}
    with pytest.raises(ConfigurationError, match="not a file"):
        detect_target("base", config(), [make_layer(layer)], python="/loop/python3")
    assert detect_target("base", config(), [make_layer(layer)]).python == (3, 11)


# --- refusals ----------------------------------------------------------------------------


def test_no_python(make_layer: MakeLayer) -> None:
    layer = {k: v for k, v in debian().items() if "python" not in k}
    with pytest.raises(ConfigurationError) as raised:
        detect_target("distroless/base", config(), [make_layer(layer)])
    message = str(raised.value)
    for part in ("'distroless/base'", "'python3'", DEFAULT_PATH.replace(":", ", "), "sematic.toml"):
        assert part in message
    assert "3.10 to 3.13" in message


@pytest.mark.parametrize("python", ["python3.9", "python2.7", "python3.14"])
def test_unsupported_python(make_layer: MakeLayer, python: str) -> None:
    version = python.removeprefix("python")
    with pytest.raises(ConfigurationError) as raised:
        detect_target("old:base", config(), [make_layer(debian(python))])
    message = str(raised.value)
    for part in ("'old:base'", f"/usr/bin/{python}", f"Python {version}", "3.10 to 3.13"):
        assert part in message


def test_zstd_layers(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(100))
    with pytest.raises(ConfigurationError, match=r"Layer 1 of base image 'zstd:base'.*zstd"):
        detect_target("zstd:base", config(), [layer])


def test_unreadable_layer(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.write_bytes(gzip.compress(b"not a tar")[:-4])
    with pytest.raises(ConfigurationError, match=r"'broken'.*not a readable tar"):
        detect_target("broken", config(), [layer])


def test_no_c_library(make_layer: MakeLayer) -> None:
    layer = {"usr/bin/python3.11": b""}
    with pytest.raises(ConfigurationError, match=r"'static'.*no C library found"):
        detect_target("static", config(), [make_layer(layer)], python="python3.11")


@pytest.mark.parametrize(
    ("image_config", "problem"),
    [
        ({"architecture": "amd64"}, "no os or architecture"),
        ({"os": "linux"}, "no os or architecture"),
        ({"os": "windows", "architecture": "amd64"}, "windows/amd64"),
    ],
)
def test_bad_platform(make_layer: MakeLayer, image_config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"'base'.*{problem}"):
        detect_target("base", image_config, [make_layer(debian())])


def test_relative_python_setting(make_layer: MakeLayer) -> None:
    with pytest.raises(ConfigurationError, match="neither a name"):
        detect_target("base", config(), [make_layer(debian())], python="bin/python3")


# --- records -----------------------------------------------------------------------------


def test_json_round_trip() -> None:
    target = Target("linux", "arm64", "v8", (3, 13), "musl", (1, 2), "/usr/bin/python3.13t", True)
    assert Target.from_json(target.to_json()) == target
    assert target.to_json()["python"] == [3, 13]


@pytest.mark.parametrize(
    "change", [{"python": "3.13"}, {"libc_version": [2]}, {"os": None}, {"python": [3, True]}]
)
def test_json_refuses_other_records(change: dict[str, Any]) -> None:
    record = Target("linux", "amd64", "", (3, 13), "glibc", (2, 41), "/x").to_json() | change
    with pytest.raises(ConfigurationError, match="Not a recorded target"):
        Target.from_json(record)
    with pytest.raises(ConfigurationError):
        Target.from_json({})


# --- the real base -----------------------------------------------------------------------


def test_real_debian_bookworm_base() -> None:
    layer = base_layer().path
    started = time.monotonic()
    target = detect_target("bookworm", config(), [layer])
    elapsed = time.monotonic() - started
    assert (target.python, target.libc, target.libc_version) == ((3, 11), "glibc", (2, 36))
    assert target.interpreter == "/usr/bin/python3.11"
    assert elapsed < 10, f"detecting the target of a 65 MB layer took {elapsed:.1f} s"
