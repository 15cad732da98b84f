"""Registry credentials from docker's and podman's files and from real credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from sematic.core.errors import ConfigurationError, RegistryAuthError
from sematic.packaging.credentials import Credentials, find_credentials

# A credential helper as docker runs them: `docker-credential-NAME get`, the server on stdin.
# It knows two servers, and records every server it was asked about.
HELPER = """#!/bin/sh
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }
read -r server
echo "$server" >> "$(dirname "$0")/asked"
case "$server" in
  127.0.0.1:5000) echo '{"Username":"helper-user","Secret":"s3cret"}' ;;
  https://index.docker.io/v1/) echo '{"Username":"hub-user","Secret":"hub-token"}' ;;
  broken.example) echo 'this is not json' ;;
  failing.example) echo "the keychain is locked" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path: Path, config: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(autouse=True)
def _no_ambient_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the machine running the tests: an empty home, no overriding variables."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on PATH holding docker-credential-sematictest."""
    folder = tmp_path / "bin"
    folder.mkdir()
    helper = folder / "docker-credential-sematictest"
    helper.write_text(HELPER)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def test_credentials_do_not_show_the_password() -> None:
    credentials = Credentials("user", "hunter2")
    assert "hunter2" not in repr(credentials)
    assert "hunter2" not in str(credentials)
    assert "user" in repr(credentials)


@pytest.mark.parametrize(
    ("registry", "key", "entry", "expected"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000", {"auth": _auth("u", "p:w:c")}, ("u", "p:w:c")),
        ("ghcr.io", "https://ghcr.io", {"auth": _auth("octo", "ghp_x")}, ("octo", "ghp_x")),
        ("ghcr.io", "https://ghcr.io/v2/", {"auth": _auth("octo", "ghp_y")}, ("octo", "ghp_y")),
        ("quay.io", "quay.io", {"username": "robot", "password": "tok"}, ("robot", "tok")),
        ("docker.io", "https://index.docker.io/v1/", {"auth": _auth("hub", "pw")}, ("hub", "pw")),
        ("docker.io", "index.docker.io", {"auth": _auth("hub2", "pw2")}, ("hub2", "pw2")),
    ],
)  # fmt: skip
def test_auths_entries_by_host(
    tmp_path: Path, registry: str, key: str, entry: dict[str, str], expected: tuple[str, str]
) -> None:
    config = _write(tmp_path / "config.json", {"auths": {key: entry, "other.example": {}}})
    assert find_credentials(registry, config_path=config) == Credentials(*expected)


def test_nothing_stored_is_none(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "config.json", {"auths": {"ghcr.io": {"auth": _auth("a", "b")}, "x.io": {}}}
    )
    assert find_credentials("127.0.0.1:5000", config_path=config) is None
    assert find_credentials("x.io", config_path=config) is None  # an entry without secrets
    assert find_credentials("ghcr.io", config_path=tmp_path / "missing.json") is None
    assert find_credentials("ghcr.io") is None  # no ~/.docker/config.json at all


def test_default_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home_config = tmp_path / "home" / ".docker" / "config.json"
    _write(home_config, {"auths": {"ghcr.io": {"auth": _auth("home", "1")}}})
    assert find_credentials("ghcr.io") == Credentials("home", "1")

    docker_config = tmp_path / "docker-config"
    _write(docker_config / "config.json", {"auths": {"ghcr.io": {"auth": _auth("env", "2")}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    assert find_credentials("ghcr.io") == Credentials("env", "2")

    # podman's files are read after docker's, for what docker's does not have
    podman = _write(tmp_path / "auth.json", {"auths": {"quay.io": {"auth": _auth("pod", "3")}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    runtime = tmp_path / "run"
    _write(
        runtime / "containers" / "auth.json",
        {"auths": {"registry.example": {"auth": _auth("xdg", "4")}}},
    )
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert find_credentials("quay.io") == Credentials("pod", "3")
    assert find_credentials("registry.example") == Credentials("xdg", "4")
    assert find_credentials("ghcr.io") == Credentials("env", "2")
    # config_path is the only file read when given
    assert find_credentials("quay.io", config_path=docker_config / "config.json") is None


def test_credential_helper_per_registry(tmp_path: Path, helper_dir: Path) -> None:
    config = _write(
        tmp_path / "config.json",
        {
            "credHelpers": {"127.0.0.1:5000": "sematictest", "docker.io": "sematictest"},
            "auths": {"127.0.0.1:5000": {"auth": _auth("file-user", "ignored")}},
        },
    )
    assert find_credentials("127.0.0.1:5000", config_path=config) == Credentials(
        "helper-user", "s3cret"
    )
    # Docker Hub's server, as docker login stored it
    assert find_credentials("docker.io", config_path=config) == Credentials("hub-user", "hub-token")
    assert (helper_dir / "asked").read_text().split() == [
        "127.0.0.1:5000",
        "https://index.docker.io/v1/",
    ]


def test_credential_store_for_every_registry(tmp_path: Path, helper_dir: Path) -> None:
    config = _write(
        tmp_path / "config.json",
        {"credsStore": "sematictest", "auths": {"plain.example": {"auth": _auth("f", "g")}}},
    )
    assert find_credentials("127.0.0.1:5000", config_path=config) == Credentials(
        "helper-user", "s3cret"
    )
    # the helper has nothing for these: the file's own entry, else nothing
    assert find_credentials("plain.example", config_path=config) == Credentials("f", "g")
    assert find_credentials("unknown.example", config_path=config) is None
    # credHelpers wins over credsStore
    config = _write(
        tmp_path / "config.json",
        {"credsStore": "missing-store", "credHelpers": {"127.0.0.1:5000": "sematictest"}},
    )
    assert find_credentials("127.0.0.1:5000", config_path=config) == Credentials(
        "helper-user", "s3cret"
    )


def test_failing_helpers(tmp_path: Path, helper_dir: Path) -> None:
    config = _write(
        tmp_path / "config.json",
        {
            "credHelpers": {
                "failing.example": "sematictest",
                "broken.example": "sematictest",
                "gone.example": "nosuchhelper",
            }
        },
    )
    with pytest.raises(RegistryAuthError, match="docker-credential-nosuchhelper is not on PATH"):
        find_credentials("gone.example", config_path=config)
    with pytest.raises(RegistryAuthError, match="the keychain is locked") as failed:
        find_credentials("failing.example", config_path=config)
    assert "docker-credential-sematictest" in str(failed.value)
    assert "docker login failing.example" in str(failed.value)
    with pytest.raises(RegistryAuthError, match="'Username' and 'Secret'"):
        find_credentials("broken.example", config_path=config)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot read"),
        ("[1, 2]", "not a JSON object"),
        ('{"auths": []}', "'auths' must be an object"),
        ('{"auths": {"ghcr.io": "x"}}', "must be an object"),
        ('{"auths": {"ghcr.io": {"auth": "%%%"}}}', "not base64"),
        ('{"auths": {"ghcr.io": {"auth": "' + base64.b64encode(b"nocolon").decode() + '"}}}',
         "does not decode to 'user:password'"),
        ('{"credHelpers": ["x"]}', "'credHelpers' must be an object"),
    ],
)  # fmt: skip
def test_malformed_files_are_named(tmp_path: Path, content: str, problem: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(content)
    with pytest.raises(ConfigurationError, match=problem) as raised:
        find_credentials("ghcr.io", config_path=config)
    assert str(config) in str(raised.value)
