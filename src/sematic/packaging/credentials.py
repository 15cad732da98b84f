"""Registry credentials the way ``docker login`` (and ``podman login``) leave them.

Where they are looked up, first match wins:

1. ``$DOCKER_CONFIG/config.json``, or ``~/.docker/config.json``;
2. then podman's ``$REGISTRY_AUTH_FILE`` and ``$XDG_RUNTIME_DIR/containers/auth.json``
   (the same format), when they exist.

``config_path``, when given, is the only file read.

In one file: ``credHelpers[registry]``, else ``credsStore``, names a credential helper,
``docker-credential-NAME get``, which reads the server on stdin and prints
``{"Username": ..., "Secret": ...}``; when a helper has nothing for the server, or none is
configured, ``auths`` is read: ``auth`` (base64 of ``user:password``) or
``username``/``password``. Docker Hub is stored under ``https://index.docker.io/v1/``;
``auths`` keys are matched by host name, so ``https://ghcr.io`` serves ``ghcr.io``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sematic.core.errors import ConfigurationError, RegistryAuthError

DOCKER_HUB = "docker.io"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({DOCKER_HUB, "index.docker.io", "registry-1.docker.io"})
_HELPER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Credentials:
    """A user name and a password (or token) for one registry; the password is not shown."""

    username: str
    password: str = field(repr=False)


def find_credentials(registry: str, *, config_path: Path | None = None) -> Credentials | None:
    """The credentials stored for ``registry`` (``host[:port]``, Docker Hub as ``docker.io``).

    None when nothing is stored for it. A malformed file raises ``ConfigurationError``
    naming it; a configured helper that is missing or fails raises ``RegistryAuthError``.
    """
    for path in _config_files(config_path):
        if not path.is_file():
            continue
        found = _from_file(path, registry)
        if found is not None:
            return found
    return None


def _config_files(config_path: Path | None) -> list[Path]:
    if config_path is not None:
        return [config_path]
    if os.environ.get("DOCKER_CONFIG"):
        docker = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    else:
        docker = Path.home() / ".docker" / "config.json"
    files = [docker]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return files


def _from_file(path: Path, registry: str) -> Credentials | None:
    config = _load(path)
    helpers = config.get("credHelpers", {})
    store = config.get("credsStore")
    if not isinstance(helpers, dict) or not isinstance(store, str | None):
        raise ConfigurationError(
            f"{path}: 'credHelpers' must be an object and 'credsStore' a string; fix the file "
            "or log in again with `docker login`"
        )
    helper = next((helpers[key] for key in _keys(registry) if key in helpers), None) or store
    if helper:
        found = _from_helper(str(helper), _server(registry), path)
        if found is not None:
            return found
    return _from_auths(config, registry, path)


def _load(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the registry credentials file {path}: {exc}; fix or delete it and "
            "log in again with `docker login`"
        ) from exc
    if not isinstance(config, dict):
        raise ConfigurationError(
            f"the registry credentials file {path} is not a JSON object; fix or delete it and "
            "log in again with `docker login`"
        )
    return config


def _keys(registry: str) -> list[str]:
    """The keys a registry may be stored under, most specific first."""
    if registry in DOCKER_HUB_HOSTS:
        return [DOCKER_HUB_KEY, *sorted(DOCKER_HUB_HOSTS)]
    return [registry, f"https://{registry}", f"http://{registry}"]


def _server(registry: str) -> str:
    """What a credential helper is asked about (what ``docker login`` stored)."""
    return DOCKER_HUB_KEY if registry in DOCKER_HUB_HOSTS else registry


def _host(key: str) -> str:
    """``https://ghcr.io/v1/`` -> ``ghcr.io`` (how docker matches ``auths`` keys)."""
    host = key.split("://", 1)[1] if "://" in key else key
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in DOCKER_HUB_HOSTS else host


def _from_auths(config: dict[str, Any], registry: str, path: Path) -> Credentials | None:
    auths = config.get("auths", {})
    if not isinstance(auths, dict):
        raise ConfigurationError(f"{path}: 'auths' must be an object; fix the file")
    wanted = _host(registry)
    keys = [key for key in _keys(registry) if key in auths]
    keys += [key for key in auths if key not in keys and _host(key) == wanted]
    for key in keys:
        entry = auths[key]
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{path}: auths[{key!r}] must be an object; fix the file")
        found = _from_entry(entry, key, path)
        if found is not None:
            return found
    return None


def _from_entry(entry: dict[str, Any], key: str, path: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{path}: auths[{key!r}].auth is not base64 of 'user:password'; log in again "
                f"with `docker login {_host(key)}`"
            ) from exc
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise ConfigurationError(
                f"{path}: auths[{key!r}].auth does not decode to 'user:password'; log in again "
                f"with `docker login {_host(key)}`"
            )
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(user, secret)
    return None


def _from_helper(name: str, server: str, path: Path) -> Credentials | None:
    program = f"docker-credential-{name}"
    binary = shutil.which(program)
    if binary is None:
        raise RegistryAuthError(
            f"{path} names the credential helper {name!r} for {server}, but {program} is not "
            "on PATH: install it, or remove it from the file and log in with "
            f"`docker login {server}`"
        )
    try:
        done = subprocess.run(
            [binary, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryAuthError(
            f"the credential helper {program} failed for {server}: {exc}"
        ) from exc
    output = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        if "credentials not found" in output.lower():
            return None
        problem = output or done.stderr.decode(errors="replace").strip()
        raise RegistryAuthError(
            f"the credential helper {program} failed for {server} (exit {done.returncode}): "
            f"{problem}; log in again with `docker login {server}`"
        )
    try:
        answer = json.loads(output)
        username, secret = answer["Username"], answer["Secret"]
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise RegistryAuthError(
            f"the credential helper {program} answered for {server} without a JSON object "
            "with 'Username' and 'Secret'"
        ) from exc
    if not isinstance(username, str) or not isinstance(secret, str):
        raise RegistryAuthError(
            f"the credential helper {program} answered for {server} with a non-string "
            "'Username' or 'Secret'"
        )
    return Credentials(username, secret)
