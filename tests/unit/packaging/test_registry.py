"""The OCI distribution client against real registries.

``registry`` and ``auth_registry`` (tests/harness/registry.py) are Debian's docker-registry, open
and behind htpasswd Basic authentication. ``token_registry`` (here) is the same registry
behind Docker token authentication: a small token server in a thread issues RS256 JWTs
signed with ``openssl`` (user ``sematic`` may push, anonymous users may pull), and the
registry answers with relative ``Location`` headers (``http.relativeurls``). A scripted
HTTP server checks what no honest registry does on demand: 5xx answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import tracemalloc
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sematic.core.errors import (
    ConfigurationError,
    ImageNotFoundError,
    RegistryAuthError,
    RegistryError,
)
from sematic.packaging.credentials import Credentials
from sematic.packaging.reference import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)
from sematic.packaging.registry import ImageReference, Manifest, RegistryClient
from tests.harness.ports import free_port
from tests.harness.registry import RegistryServer

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "0123456789abcdef" * 4

# -- references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "canonical"),
    [
        ("python:3.11", "docker.io", "library/python", "3.11", None,
         "docker.io/library/python:3.11"),
        ("python", "docker.io", "library/python", "latest", None,
         "docker.io/library/python:latest"),
        ("acme/base", "docker.io", "acme/base", "latest", None, "docker.io/acme/base:latest"),
        ("docker.io/python:3", "docker.io", "library/python", "3", None,
         "docker.io/library/python:3"),
        ("index.docker.io/library/python", "docker.io", "library/python", "latest", None,
         "docker.io/library/python:latest"),
        (f"ubuntu@{D1}", "docker.io", "library/ubuntu", None, D1, f"docker.io/library/ubuntu@{D1}"),
        ("ghcr.io/acme/base:1.0", "ghcr.io", "acme/base", "1.0", None, "ghcr.io/acme/base:1.0"),
        ("127.0.0.1:5000/base/python", "127.0.0.1:5000", "base/python", "latest", None,
         "127.0.0.1:5000/base/python:latest"),
        ("localhost/foo", "localhost", "foo", "latest", None, "localhost/foo:latest"),
        (f"localhost:5000/a/b:c@{D2}", "localhost:5000", "a/b", "c", D2,
         f"localhost:5000/a/b:c@{D2}"),
        ("foo:5000", "docker.io", "library/foo", "5000", None, "docker.io/library/foo:5000"),
        ("a.b.example/c__d/e-f.g:V1_x-y.z", "a.b.example", "c__d/e-f.g", "V1_x-y.z", None,
         "a.b.example/c__d/e-f.g:V1_x-y.z"),
        ("[::1]:5000/x", "[::1]:5000", "x", "latest", None, "[::1]:5000/x:latest"),
        ("nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04", "nvcr.io", "nvidia/cuda",
         "12.4.1-runtime-ubuntu22.04", None, "nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"),
    ],
)  # fmt: skip
def test_parse_references(
    text: str,
    registry: str,
    repository: str,
    tag: str | None,
    digest: str | None,
    canonical: str,
) -> None:
    parsed = ImageReference.parse(text)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(parsed) == canonical
    assert ImageReference.parse(canonical) == parsed
    assert parsed.reference == (digest or tag)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a repository name"),
        ("Python", "must be lowercase"),
        ("ghcr.io/Acme/base", "must be lowercase"),
        ("python:", "is not a tag"),
        ("python:-bad", "is not a tag"),
        ("python:" + "x" * 129, "is not a tag"),
        ("python@sha256:abc", "is not a digest"),
        (f"python@md5:{'a' * 32}", "is not a digest"),
        ("python:3.11@", "is not a digest"),
        ("ghcr.io/", "not a repository name"),
        ("a//b", "not a repository name"),
        ("a b", "not a repository name"),
        ("ex ample.com/x", "not a registry host name"),
        ("ghcr.io/a_/b", "not a repository name"),
        ("x.io/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid_references_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as raised:
        ImageReference.parse(text)
    assert repr(text) in str(raised.value)
    assert "REPOSITORY[:TAG]" in str(raised.value)


def test_reference_objects() -> None:
    both = ImageReference("ghcr.io", "a/b", "1", D1)
    assert both.reference == D1
    assert ImageReference("ghcr.io", "a/b", tag="1").reference == "1"
    with pytest.raises(ConfigurationError, match="is not a digest"):
        ImageReference("ghcr.io", "a/b", digest="sha256:short")
    with pytest.raises(ConfigurationError, match="must be lowercase"):
        ImageReference("ghcr.io", "A/b", "1")


def test_manifest_digest_is_its_body() -> None:
    body = b'{"schemaVersion":2}'
    manifest = Manifest.of(OCI_MANIFEST, body)
    assert manifest.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert manifest.json() == {"schemaVersion": 2}
    with pytest.raises(ConfigurationError, match="hashes to"):
        Manifest(OCI_MANIFEST, body, D1)


def test_names_are_checked_before_any_request() -> None:
    with RegistryClient("127.0.0.1:1", insecure=True) as client:
        with pytest.raises(ConfigurationError, match="not a repository name"):
            client.blob_exists("Bad/Name", D1)
        with pytest.raises(ConfigurationError, match="not a blob digest"):
            client.get_blob("ok", "sha256:1234")
        with pytest.raises(ConfigurationError, match="neither a tag nor a sha256 digest"):
            client.get_manifest("ok", "../../etc")
    with pytest.raises(ConfigurationError, match="not a registry host name"):
        RegistryClient("https://ghcr.io")


# -- blobs ---------------------------------------------------------------------------------


def _blob(size: int = 4096) -> tuple[bytes, str]:
    data = secrets.token_bytes(size)
    return data, sha256_digest(data)


def _client(server: RegistryServer, **options: Any) -> RegistryClient:
    return RegistryClient(server.address, insecure=True, **options)


def test_blob_push_head_get_round_trip(registry: RegistryServer) -> None:
    data, digest = _blob()
    with _client(registry) as client:
        assert not client.blob_exists("blobs/round-trip", digest)
        assert client.push_blob("blobs/round-trip", digest, data) is True
        assert client.bytes_uploaded == len(data)
        assert client.blob_exists("blobs/round-trip", digest)
        assert client.get_blob("blobs/round-trip", digest) == data

        # a second push finds it and sends nothing
        assert client.push_blob("blobs/round-trip", digest, data) is False
        assert client.bytes_uploaded == len(data)
    with _client(registry) as other:
        assert other.push_blob("blobs/round-trip", digest, data) is False
        assert other.bytes_uploaded == 0


def test_a_file_is_streamed_not_read_into_memory(registry: RegistryServer, tmp_path: Path) -> None:
    size = 24 * 1024 * 1024 + 17
    path = tmp_path / "layer.tar.gz"
    hasher = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(size // (1024 * 1024)):
            chunk = secrets.token_bytes(1024 * 1024)
            hasher.update(chunk)
            file.write(chunk)
        tail = secrets.token_bytes(size % (1024 * 1024))
        hasher.update(tail)
        file.write(tail)
    digest = f"sha256:{hasher.hexdigest()}"
    with _client(registry) as client:
        tracemalloc.start()
        try:
            assert client.push_blob("blobs/streamed", digest, path) is True
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, f"{peak:,} bytes allocated while uploading"
        assert client.bytes_uploaded == size
        assert client.blob_exists("blobs/streamed", digest)
        assert sha256_digest(client.get_blob("blobs/streamed", digest)) == digest
        assert client.push_blob("blobs/streamed", digest, path) is False
        assert client.bytes_uploaded == size


def test_a_blob_is_downloaded_to_a_file_in_chunks(registry: RegistryServer, tmp_path: Path) -> None:
    data, digest = _blob(12 * 1024 * 1024)
    with _client(registry) as client:
        client.push_blob("blobs/download", digest, data)
        del data
        destination = tmp_path / "cache" / "layer"
        tracemalloc.start()
        try:
            size = client.download_blob("blobs/download", digest, destination)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 6 * 1024 * 1024, f"{peak:,} bytes allocated while downloading"
        assert size == destination.stat().st_size == 12 * 1024 * 1024
        assert sha256_digest(destination.read_bytes()) == digest
        assert os.listdir(destination.parent) == ["layer"]

        with pytest.raises(ImageNotFoundError, match=f"blob {D1}"):
            client.download_blob("blobs/download", D1, tmp_path / "missing")
        assert not (tmp_path / "missing").exists()

        small, small_digest = _blob(1000)
        client.push_blob("blobs/download", small_digest, small)
        _blob_file(registry, small_digest).write_bytes(bytes(b ^ 0xFF for b in small))
        with pytest.raises(RegistryError, match="that hash to"):
            client.download_blob("blobs/download", small_digest, tmp_path / "cache" / "bad")
        assert os.listdir(destination.parent) == ["layer"]  # nothing half-written left


def test_a_wrong_digest_is_refused_by_the_registry(registry: RegistryServer) -> None:
    data, _ = _blob()
    with _client(registry) as client, pytest.raises(RegistryError) as raised:
        client.push_blob("blobs/wrong", D1, data)
    assert "DIGEST_INVALID" in str(raised.value)
    assert f"{registry.address}/blobs/wrong" in str(raised.value)


def test_cross_repository_mount(registry: RegistryServer) -> None:
    data, digest = _blob(100_000)
    with _client(registry) as client:
        assert client.push_blob("mount/source", digest, data)
        assert client.bytes_uploaded == len(data)
        assert client.push_blob("mount/target", digest, data, mount_from="mount/source") is False
        assert client.bytes_uploaded == len(data)
        assert client.get_blob("mount/target", digest) == data

        # a source that lacks the blob: the registry starts an ordinary upload instead
        other, other_digest = _blob(1000)
        assert client.push_blob("mount/target", other_digest, other, mount_from="mount/empty")
        assert client.bytes_uploaded == len(data) + len(other)


def test_corrupted_blobs_are_detected(registry: RegistryServer) -> None:
    data, digest = _blob(512)
    with _client(registry) as client:
        client.push_blob("blobs/corrupted", digest, data)
        stored = _blob_file(registry, digest)
        stored.write_bytes(bytes(b ^ 0xFF for b in data))  # same length, other bytes
        with pytest.raises(RegistryError, match="that hash to") as raised:
            client.get_blob("blobs/corrupted", digest)
    assert digest in str(raised.value)


def _blob_file(server: RegistryServer, digest: str) -> Path:
    hexadecimal = digest.removeprefix("sha256:")
    return (
        server.storage / "docker/registry/v2/blobs/sha256" / hexadecimal[:2] / hexadecimal / "data"
    )


def test_missing_things_are_image_not_found(registry: RegistryServer) -> None:
    with _client(registry) as client:
        with pytest.raises(ImageNotFoundError) as raised:
            client.get_manifest("no/such-repository", "1.0")
        assert f"{registry.address}/no/such-repository:1.0" in str(raised.value)
        assert "check the repository name" in str(raised.value)
        assert isinstance(raised.value, LookupError)

        image = _push_image(client, "missing/tag")
        with pytest.raises(ImageNotFoundError, match="missing/tag:other"):
            client.get_image_manifest("missing/tag", "other")
        with pytest.raises(ImageNotFoundError, match=D1):
            client.get_manifest("missing/tag", D1)
        with pytest.raises(ImageNotFoundError, match=f"blob {D1}"):
            client.get_blob("missing/tag", D1)
        assert client.get_manifest("missing/tag", "latest") == image


# -- manifests -----------------------------------------------------------------------------


def _push_image(
    client: RegistryClient,
    repository: str,
    *,
    tag: str = "latest",
    architecture: str = "amd64",
    media_type: str = OCI_MANIFEST,
) -> Manifest:
    """Pushes a small image (a config and one layer) and tags it."""
    docker = media_type == DOCKER_MANIFEST
    layer, layer_digest = _blob(2048)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {},
        },
        sort_keys=True,
    ).encode()
    config_digest = sha256_digest(config)
    client.push_blob(repository, layer_digest, layer)
    client.push_blob(repository, config_digest, config)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json"
                if docker
                else "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"
                    if docker
                    else "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    manifest = Manifest.of(media_type, body)
    assert client.put_manifest(repository, tag, manifest) == manifest.digest
    return manifest


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_manifest_put_and_get_by_tag_and_digest(registry: RegistryServer, media_type: str) -> None:
    repository = f"manifests/{'oci' if media_type == OCI_MANIFEST else 'docker'}"
    with _client(registry) as client:
        manifest = _push_image(client, repository, tag="v1", media_type=media_type)
        by_tag = client.get_manifest(repository, "v1")
        assert by_tag == manifest
        assert by_tag.media_type == media_type
        assert client.get_manifest(repository, manifest.digest) == manifest
        assert client.get_image_manifest(repository, "v1") == manifest  # not an index
        # stored again under its digest, and under a second tag
        assert client.put_manifest(repository, manifest.digest, manifest) == manifest.digest
        assert client.put_manifest(repository, "v2", manifest) == manifest.digest
        assert client.get_manifest(repository, "v2").digest == manifest.digest
        with pytest.raises(ConfigurationError, match="under another digest"):
            client.put_manifest(repository, D1, manifest)


def test_a_manifest_naming_missing_blobs_is_refused(registry: RegistryServer) -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1,
                       "size": 10},
            "layers": [],
        }
    ).encode()  # fmt: skip
    with _client(registry) as client, pytest.raises(RegistryError) as raised:
        client.put_manifest("manifests/incomplete", "v1", Manifest.of(OCI_MANIFEST, body))
    assert "MANIFEST_BLOB_UNKNOWN" in str(raised.value)
    assert "push the blobs a manifest names before the manifest" in str(raised.value)


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_an_index_is_followed_to_the_platform(registry: RegistryServer, index_type: str) -> None:
    docker = index_type == DOCKER_MANIFEST_LIST
    repository = f"multi/{'docker' if docker else 'oci'}"
    image_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    with _client(registry) as client:
        images = {
            arch: _push_image(
                client, repository, tag=f"only-{arch}", architecture=arch, media_type=image_type
            )
            for arch in ("amd64", "arm64")
        }
        entries = [
            {
                "mediaType": image_type,
                "digest": images["arm64"].digest,
                "size": len(images["arm64"].body),
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
            {
                "mediaType": image_type,
                "digest": images["amd64"].digest,
                "size": len(images["amd64"].body),
                "platform": {"architecture": "amd64", "os": "linux"},
            },
        ]
        body = {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}
        index = Manifest.of(index_type, json.dumps(body).encode())
        client.put_manifest(repository, "multi", index)

        assert client.get_manifest(repository, "multi") == index
        assert client.get_image_manifest(repository, "multi") == images["amd64"]
        assert (
            client.get_image_manifest(repository, "multi", architecture="arm64") == images["arm64"]
        )
        assert client.get_image_manifest(repository, index.digest) == images["amd64"]
        with pytest.raises(ImageNotFoundError) as raised:
            client.get_image_manifest(repository, "multi", architecture="s390x")
    message = str(raised.value)
    assert f"{registry.address}/{repository}:multi is not built for linux/s390x" in message
    assert "it has linux/amd64, linux/arm64/v8" in message


# -- failures to connect -------------------------------------------------------------------


def test_a_refused_port_is_a_registry_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    with RegistryClient(address, insecure=True) as client, pytest.raises(RegistryError) as raised:
        client.get_manifest("base/python", "3.11")
    message = str(raised.value)
    assert f"cannot reach the registry {address}" in message
    assert "base/python:3.11" in message
    assert "check that the registry is running" in message
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_https_to_a_plain_http_registry_suggests_insecure(registry: RegistryServer) -> None:
    started = time.monotonic()
    with RegistryClient(registry.address) as client, pytest.raises(RegistryError) as raised:
        client.get_manifest("base/python", "3.11")
    message = str(raised.value)
    assert f"if {registry.address} is a plain-HTTP registry, mark it insecure" in message
    assert f'insecure_registries = ["{registry.address}"]' in message
    assert f"https://{registry.address}/v2/" in message  # never downgraded to http
    assert f"the image {registry.address}/base/python:3.11" in message
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert time.monotonic() - started < 5  # a TLS failure is not retried


# -- Basic authentication ------------------------------------------------------------------


def test_anonymous_requests_to_an_auth_registry(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # an empty one: nothing stored
    data, digest = _blob()
    with _client(auth_registry) as client:
        with pytest.raises(RegistryAuthError) as raised:
            client.push_blob("auth/anonymous", digest, data)
        with pytest.raises(RegistryAuthError, match="requires credentials to pull from"):
            client.get_manifest("auth/anonymous", "latest")
    message = str(raised.value)
    assert f"{auth_registry.address} requires credentials to push to " in message
    assert f"{auth_registry.address}/auth/anonymous" in message
    assert f"log in with `docker login {auth_registry.address}`" in message
    assert "~/.docker/config.json" in message


def test_a_wrong_password(auth_registry: RegistryServer) -> None:
    data, digest = _blob()
    wrong = Credentials("sematic", "not-the-password")
    with _client(auth_registry, credentials=wrong) as client:
        with pytest.raises(RegistryAuthError) as raised:
            client.push_blob("auth/wrong", digest, data)
        assert client.bytes_uploaded == 0
    message = str(raised.value)
    assert "refused the credentials of 'sematic' to push to" in message
    assert f"`docker login {auth_registry.address}`" in message
    assert "not-the-password" not in message


def _given(server: RegistryServer) -> Credentials:
    assert server.username is not None and server.password is not None
    return Credentials(server.username, server.password)


def test_given_credentials(auth_registry: RegistryServer) -> None:
    with _client(auth_registry, credentials=_given(auth_registry)) as client:
        manifest = _push_image(client, "auth/given")
        assert client.get_image_manifest("auth/given", "latest") == manifest


def test_credentials_from_docker_config(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pair = f"{auth_registry.username}:{auth_registry.password}".encode()
    config = {"auths": {auth_registry.address: {"auth": base64.b64encode(pair).decode()}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    data, digest = _blob()
    with _client(auth_registry) as client:
        assert client.push_blob("auth/config-json", digest, data)
        assert client.get_blob("auth/config-json", digest) == data


def test_credentials_from_a_credential_helper(
    auth_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = _given(auth_registry)
    answer = json.dumps({"Username": credentials.username, "Secret": credentials.password})
    helper = tmp_path / "bin" / "docker-credential-sematictest"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\n"
        'read -r server; echo "$server" > "$(dirname "$0")/asked"\n'
        f"echo '{answer}'\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = {"credHelpers": {auth_registry.address: "sematictest"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with _client(auth_registry) as client:
        manifest = _push_image(client, "auth/helper")
        assert client.get_manifest("auth/helper", "latest") == manifest
    assert (helper.parent / "asked").read_text().strip() == auth_registry.address


# -- token authentication ------------------------------------------------------------------

SERVICE = "sematic-test-registry"
ISSUER = "sematic-test-token-server"


@dataclass
class TokenRegistry:
    """A registry behind Docker token authentication, and its token server's log."""

    address: str
    realm: str
    password: str
    requests: list[tuple[str, list[str]]] = field(default_factory=list)  # (user, scopes)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenIssuer:
    """Signs JWTs the way distribution's token authentication verifies them (x5c, RS256)."""

    def __init__(self, folder: Path) -> None:
        self.key, self.certificate = folder / "key.pem", folder / "certificate.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=sematic-test-token-server",
             "-keyout", str(self.key), "-out", str(self.certificate)],
            check=True, capture_output=True,
        )  # fmt: skip
        pem = self.certificate.read_text().strip().splitlines()
        self.chain = ["".join(pem[1:-1])]  # base64 DER, as x5c wants it

    def token(self, subject: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.chain}
        claims = {
            "iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": secrets.token_hex(8), "access": access,
        }  # fmt: skip
        signing_input = ".".join(
            _b64url(json.dumps(part).encode()) for part in (header, claims)
        ).encode()
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input, check=True, capture_output=True,
        ).stdout  # fmt: skip
        return f"{signing_input.decode()}.{_b64url(signature)}"


def _token_server(issuer: _TokenIssuer, state: TokenRegistry) -> ThreadingHTTPServer:
    """``GET /token``: ``sematic`` may pull and push, anyone may pull, a wrong password gets 401."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            user = ""
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if (name, password) != ("sematic", state.password):
                    self._answer(401, {"details": "wrong user name or password"})
                    return
                user = name
            scopes = query.get("scope", [])
            state.requests.append((user, scopes))
            allowed = {"pull", "push"} if user else {"pull"}
            access = []
            for scope in scopes:
                kind, name, actions = scope.split(":")
                granted = [a for a in actions.split(",") if a in allowed]
                access.append({"type": kind, "name": name, "actions": granted})
            token = issuer.token(user, access)
            # the spec's two names for it: token for users, access_token for anonymous ones
            self._answer(200, {"token" if user else "access_token": token, "expires_in": 300})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def token_registry() -> Iterator[TokenRegistry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not on PATH: run scripts/setup", pytrace=False)
    base = Path(tempfile.mkdtemp(prefix="sematic-token-registry-"))
    issuer = _TokenIssuer(base)
    port = free_port()
    state = TokenRegistry(f"127.0.0.1:{port}", "", secrets.token_urlsafe(12))
    server = _token_server(issuer, state)
    state.realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(base / "storage")}},
        "http": {"addr": state.address, "secret": secrets.token_hex(16), "relativeurls": True},
        "auth": {
            "token": {
                "realm": state.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(issuer.certificate),
            }
        },
    }
    (base / "config.yml").write_text(json.dumps(config))
    log = (base / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(base / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{state.address}/v2/").status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "the token-authenticated registry did not start:\n"
                    + (base / "registry.log").read_text(errors="replace"),
                    pytrace=False,
                )
            time.sleep(0.05)
        yield state
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        server.shutdown()
        server.server_close()
        shutil.rmtree(base, ignore_errors=True)


def test_bearer_tokens_for_a_push_and_an_anonymous_pull(token_registry: TokenRegistry) -> None:
    user = Credentials("sematic", token_registry.password)
    token_registry.requests.clear()
    with RegistryClient(token_registry.address, insecure=True, credentials=user) as client:
        manifest = _push_image(client, "tokens/app")
        # one token for the push scope, fetched once and reused for every request
        assert token_registry.requests == [("sematic", ["repository:tokens/app:pull,push"])]
        data, digest = _blob(10_000)
        client.push_blob("tokens/app", digest, data)
        assert len(token_registry.requests) == 1
        # a mount asks for pull on the source repository too
        assert not client.push_blob("tokens/copy", digest, data, mount_from="tokens/app")
        assert token_registry.requests[-1] == (
            "sematic",
            ["repository:tokens/copy:pull,push", "repository:tokens/app:pull"],
        )
        assert client.get_blob("tokens/copy", digest) == data

    token_registry.requests.clear()
    with RegistryClient(token_registry.address, insecure=True) as anonymous:
        assert anonymous.get_image_manifest("tokens/app", "latest") == manifest
        config = manifest.json()["config"]["digest"]
        assert sha256_digest(anonymous.get_blob("tokens/app", config)) == config
    assert token_registry.requests == [("", ["repository:tokens/app:pull"])]


def test_bearer_refusals(
    token_registry: TokenRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # nothing stored
    data, digest = _blob()
    with (
        RegistryClient(token_registry.address, insecure=True) as anonymous,
        pytest.raises(RegistryAuthError) as raised,
    ):
        anonymous.push_blob("tokens/anonymous", digest, data)
    assert f"requires credentials to push to {token_registry.address}/tokens/anonymous" in str(
        raised.value
    )
    wrong = Credentials("sematic", "wrong")
    with RegistryClient(token_registry.address, insecure=True, credentials=wrong) as client:
        with pytest.raises(RegistryAuthError) as raised:
            client.push_blob("tokens/wrong", digest, data)
        assert client.bytes_uploaded == 0
    message = str(raised.value)
    assert "refused the credentials of 'sematic'" in message
    assert f"the token server {token_registry.realm} answered 401" in message


def test_upload_locations_may_be_relative(token_registry: TokenRegistry) -> None:
    """The registry of these tests answers relative Locations; the push tests above pass."""
    auth = ("sematic", token_registry.password)
    scope = {"service": SERVICE, "scope": "repository:tokens/location:pull,push"}
    token = httpx.get(token_registry.realm, params=scope, auth=auth).json()["token"]
    started = httpx.post(
        f"http://{token_registry.address}/v2/tokens/location/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert started.status_code == 202
    assert started.headers["Location"].startswith("/v2/tokens/location/blobs/uploads/")


# -- retries -------------------------------------------------------------------------------


@dataclass
class _Scripted:
    """An HTTP server answering each request with the next scripted answer."""

    answers: list[tuple[int, dict[str, str], bytes]]
    seen: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture
def scripted() -> Iterator[tuple[str, _Scripted]]:
    script = _Scripted([])

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if length:
                self.rfile.read(length)
            script.seen.append(f"{self.command} {self.path}")
            script.authorizations.append(self.headers.get("Authorization"))
            status, headers, body = script.answers.pop(0) if script.answers else (500, {}, b"")
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply()

        def do_HEAD(self) -> None:
            self._reply()

        def do_PUT(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            self._reply()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def test_reads_are_retried_on_5xx_and_uploads_are_not(scripted: tuple[str, _Scripted]) -> None:
    address, script = scripted
    body = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","layers":[]}'
    unavailable = (503, {}, b"busy")
    script.answers = [
        unavailable,
        (502, {}, b""),
        (200, {"Content-Type": OCI_MANIFEST}, body),
    ]
    with RegistryClient(address, insecure=True) as client:
        assert client.get_manifest("x", "t") == Manifest.of(OCI_MANIFEST, body)
        assert len(script.seen) == 3

        script.answers = [unavailable, unavailable, unavailable]
        with pytest.raises(RegistryError, match="answered 503 to GET") as raised:
            client.get_manifest("x", "t")
        assert "try again later" in str(raised.value)

        # HEAD: absent; POST: an upload at a relative Location; PUT: 503, not sent again
        script.seen.clear()
        script.answers = [
            (404, {}, b""),
            (202, {"Location": "/v2/x/blobs/uploads/u1?_state=s"}, b""),
            unavailable,
        ]
        data, digest = _blob(100)
        with pytest.raises(RegistryError, match="answered 503 to PUT"):
            client.push_blob("x", digest, data)
        assert script.seen == [
            f"HEAD /v2/x/blobs/{digest}",
            "POST /v2/x/blobs/uploads/",
            f"PUT /v2/x/blobs/uploads/u1?_state=s&digest={digest.replace(':', '%3A')}",
        ]


def test_manifests_not_matching_their_digest_are_refused(scripted: tuple[str, _Scripted]) -> None:
    """The real registry verifies what it stores, so a scripted one plays a tampering proxy."""
    address, script = scripted
    body = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","layers":[]}'
    script.answers = [
        (200, {"Content-Type": OCI_MANIFEST}, body),
        (200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": D2}, body),
    ]
    with RegistryClient(address, insecure=True) as client:
        with pytest.raises(RegistryError, match=f"answered a manifest for the image {address}/x@"):
            client.get_manifest("x", D1)
        with pytest.raises(RegistryError, match=f"announced {D2} for the image {address}/x:t"):
            client.get_manifest("x", "t")


def test_credentials_are_not_sent_to_another_upload_host(scripted: tuple[str, _Scripted]) -> None:
    address, script = scripted
    port = address.split(":")[1]
    script.answers = [
        (401, {"WWW-Authenticate": 'Basic realm="scripted"'}, b""),
        (404, {}, b""),
        (202, {"Location": f"http://localhost:{port}/storage/u1"}, b""),
        (201, {}, b""),
    ]
    data, digest = _blob(100)
    user = Credentials("user", "secret")
    with RegistryClient(address, insecure=True, credentials=user) as client:
        assert client.push_blob("x", digest, data)
    basic = "Basic " + base64.b64encode(b"user:secret").decode()
    assert script.seen[2:] == [
        "POST /v2/x/blobs/uploads/",
        f"PUT /storage/u1?digest={digest.replace(':', '%3A')}",
    ]
    assert script.authorizations == [None, basic, basic, None]
