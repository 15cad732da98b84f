"""A client of the OCI distribution API: pull and push manifests and blobs.

``RegistryClient`` speaks to one registry over HTTPS, or over plain HTTP when it is marked
insecure (never a silent downgrade). It pulls manifests (OCI and Docker v2, images and
indexes, an index followed to one platform) and blobs (into memory, or streamed into a
file), verifying every digest. It pushes blobs (HEAD first, then a cross-repository mount
or one monolithic upload streamed from disk) and manifests. Authentication (Basic, Bearer
tokens) is in ``auth.py``; names and manifests are in ``reference.py``.

GET and HEAD requests are retried a couple of times on connection errors and 5xx answers,
as are the other requests that can safely be sent again (starting an upload, storing a
manifest); a blob upload is not. A client is not thread-safe: use one per thread.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

import httpx

from sematic.core.errors import (
    ConfigurationError,
    ImageNotFoundError,
    RegistryAuthError,
    RegistryError,
)
from sematic.packaging.auth import (
    RETRIES,
    RETRY_STATUSES,
    Authenticator,
    backoff,
    login_command,
)
from sematic.packaging.credentials import DOCKER_HUB, DOCKER_HUB_HOSTS, Credentials
from sematic.packaging.reference import (
    DIGEST_PATTERN,
    DOCKER_HUB_API,
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    REGISTRY_PATTERN,
    REPOSITORY_PATTERN,
    TAG_PATTERN,
    ImageReference,
    Manifest,
    sha256_digest,
)

__all__ = ["Credentials", "ImageReference", "Manifest", "RegistryClient"]

_CHUNK = 1024 * 1024
_Body = Callable[[], Iterable[bytes]]


class RegistryClient:
    """The distribution API of one registry (``host[:port]``; Docker Hub is ``docker.io``)."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not REGISTRY_PATTERN.fullmatch(registry):
            raise ConfigurationError(
                f"{registry!r} is not a registry host name: give HOST or HOST:PORT, e.g. "
                "'ghcr.io' or '127.0.0.1:5000'"
            )
        self.registry = DOCKER_HUB if registry in DOCKER_HUB_HOSTS else registry
        self.insecure = insecure
        host = DOCKER_HUB_API if self.registry == DOCKER_HUB else registry
        self._base = f"{'http' if insecure else 'https'}://{host}"
        self._timeout = timeout
        self._uploaded = 0
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": "sematic"})
        self._auth = Authenticator(
            self.registry, self._http, insecure=insecure, credentials=credentials
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def bytes_uploaded(self) -> int:
        """Blob bytes sent to the registry by this client (not those it already had)."""
        return self._uploaded

    # -- manifests ---------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest or index ``repository:reference`` (a tag or a digest), as stored."""
        subject = self._subject(repository, reference)
        response = self._send(
            "GET",
            self._url(repository, "manifests", reference),
            subject=subject,
            scopes=self._scopes(repository),
            headers={"Accept": ", ".join(sorted(MANIFEST_TYPES))},
        )
        if response.status_code != 200:
            self._fail(response, subject, repository)
        body = response.content
        digest = sha256_digest(body)
        if DIGEST_PATTERN.fullmatch(reference) and digest != reference:
            raise RegistryError(
                f"{self.registry} answered a manifest for {subject} that hashes to {digest}: "
                "the registry or a proxy altered it; try again, or report it to the registry"
            )
        announced = response.headers.get("Docker-Content-Digest", "")
        if announced.startswith("sha256:") and announced != digest:
            raise RegistryError(
                f"{self.registry} announced {announced} for {subject} but sent a manifest "
                f"hashing to {digest}; try again, or report it to the registry"
            )
        media_type = _media_type(response, body)
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(
                f"{subject} has a manifest of type {media_type!r}, which is neither an OCI nor "
                "a Docker v2 image or index: push the image again with a current tool"
            )
        return Manifest(media_type, body, digest)

    def get_image_manifest(
        self,
        repository: str,
        reference: str,
        *,
        os: str = "linux",
        architecture: str = "amd64",
    ) -> Manifest:
        """The image manifest of ``repository:reference`` for a platform.

        An index (or Docker manifest list) is followed to the entry for ``os/architecture``;
        an image manifest is returned as it is (its platform is in its config blob).
        """
        manifest = self.get_manifest(repository, reference)
        if manifest.media_type not in INDEX_TYPES:
            return manifest
        subject = self._subject(repository, reference)
        entries = _index_entries(manifest, subject, self.registry)
        matches = [e for e in entries if _platform(e)[:2] == (os, architecture)]
        if not matches:
            present = sorted({"/".join(p for p in _platform(e) if p) for e in entries})
            present = [p for p in present if p and p != "unknown/unknown"]
            raise ImageNotFoundError(
                f"{subject} is not built for {os}/{architecture}; it has "
                f"{', '.join(present) or 'no platforms'}: pick a base image built for "
                f"{os}/{architecture}"
            )
        chosen = min(matches, key=lambda e: _platform(e)[2] != "")  # no variant first
        digest = str(chosen["digest"])
        image = self.get_manifest(repository, digest)
        if image.media_type not in IMAGE_MANIFEST_TYPES:
            raise RegistryError(
                f"the {os}/{architecture} entry of {subject} is a {image.media_type}, not an "
                "image manifest: nested indexes are not supported; name the image by digest"
            )
        return image

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Stores ``manifest`` as ``repository:reference``; returns its digest."""
        subject = self._subject(repository, reference)
        if DIGEST_PATTERN.fullmatch(reference) and reference != manifest.digest:
            raise ConfigurationError(
                f"cannot store the manifest {manifest.digest} under another digest, {subject}"
            )
        response = self._send(
            "PUT",
            self._url(repository, "manifests", reference),
            subject=subject,
            scopes=self._scopes(repository, push=True),
            headers={"Content-Type": manifest.media_type},
            body=lambda: (manifest.body,),
            retry=True,  # the same bytes again: idempotent
        )
        if not response.is_success:
            self._fail(response, subject, repository, push=True)
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != manifest.digest:
            raise RegistryError(
                f"{self.registry} stored {subject} as {announced}, but the manifest sent is "
                f"{manifest.digest}: the registry rewrote it; report it to the registry"
            )
        return announced or manifest.digest

    # -- blobs -------------------------------------------------------------------------

    def get_blob(self, repository: str, digest: str) -> bytes:
        """The blob ``digest`` of ``repository``, verified against its digest."""
        subject = self._blob_subject(repository, digest)
        response = self._send(
            "GET",
            self._url(repository, "blobs", digest),
            subject=subject,
            scopes=self._scopes(repository),
            follow_redirects=True,  # to the storage backend
        )
        if response.status_code != 200:
            self._fail(response, subject, repository)
        data = response.content
        actual = sha256_digest(data)
        if actual != digest:
            raise RegistryError(
                f"{self.registry} sent {len(data)} bytes for {subject} that hash to {actual}: "
                "the blob is corrupted in the registry or in transit; try again"
            )
        return data

    def download_blob(self, repository: str, digest: str, destination: Path) -> int:
        """Streams the blob ``digest`` into the file ``destination``; returns its size.

        The file appears (atomically) only once its bytes match the digest; a large layer
        is never held in memory.
        """
        subject = self._blob_subject(repository, digest)
        response = self._send(
            "GET",
            self._url(repository, "blobs", digest),
            subject=subject,
            scopes=self._scopes(repository),
            follow_redirects=True,
            stream=True,
        )
        partial = destination.with_name(f"{destination.name}.partial")
        hasher, size = hashlib.sha256(), 0
        try:
            if response.status_code != 200:
                self._fail(response, subject, repository)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as file:
                for chunk in response.iter_bytes(_CHUNK):
                    hasher.update(chunk)
                    file.write(chunk)
                    size += len(chunk)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            if isinstance(exc, httpx.TransportError):
                raise self._unreachable(exc, "GET", response.url, subject) from exc
            raise
        finally:
            response.close()
        if f"sha256:{hasher.hexdigest()}" != digest:
            partial.unlink()
            raise RegistryError(
                f"{self.registry} sent {size} bytes for {subject} that hash to "
                f"sha256:{hasher.hexdigest()}: the blob is corrupted in the registry or in "
                "transit; try again"
            )
        partial.replace(destination)
        return size

    def blob_exists(self, repository: str, digest: str) -> bool:
        """Whether ``repository`` has the blob ``digest``."""
        return self._blob_exists(repository, digest, self._scopes(repository))

    def push_blob(
        self,
        repository: str,
        digest: str,
        data: bytes | Path,
        *,
        mount_from: str | None = None,
    ) -> bool:
        """Makes sure ``repository`` has the blob ``digest`` (``data``: bytes, or a file).

        True when bytes were sent; False when the registry had it already or mounted it
        from the repository ``mount_from`` of the same registry. A file is streamed from
        disk in one request; the registry verifies the digest.
        """
        subject = self._blob_subject(repository, digest)
        if mount_from is not None:
            self._check_repository(mount_from)
        size = _size(data)
        scopes = self._scopes(repository, push=True, mount_from=mount_from)
        if self._blob_exists(repository, digest, scopes):
            return False
        response = self._send(
            "POST",
            f"{self._base}/v2/{repository}/blobs/uploads/",
            subject=subject,
            scopes=scopes,
            params={"mount": digest, "from": mount_from} if mount_from else None,
            retry=True,  # at worst an abandoned upload session, which registries purge
        )
        if response.status_code == 201:
            return False  # mounted
        if response.status_code != 202:
            self._fail(response, subject, repository, push=True)
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"{self.registry} started an upload for {subject} without a Location header, "
                "against the distribution spec; report it to the registry"
            )
        upload = response.url.join(location).copy_merge_params({"digest": digest})
        if upload.scheme != "https" and not self.insecure:
            raise RegistryError(
                f"{self.registry} wants {subject} uploaded over plain HTTP ({upload}): refused; "
                "mark the registry insecure only if you trust the network"
            )
        response = self._send(
            "PUT",
            upload,
            subject=subject,
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=lambda: self._chunks(data),
            retry=False,  # the upload session may have taken part of the bytes
        )
        if response.status_code not in (201, 204):
            self._fail(response, subject, repository, push=True)
        return True

    def _blob_exists(self, repository: str, digest: str, scopes: tuple[str, ...]) -> bool:
        subject = self._blob_subject(repository, digest)
        response = self._send(
            "HEAD", self._url(repository, "blobs", digest), subject=subject, scopes=scopes
        )
        if response.status_code == 404:
            return False
        if response.status_code == 200 or response.is_redirect:
            return True  # a redirect points at the storage that holds it
        self._fail(response, subject, repository, push=scopes[0].endswith(",push"))

    def _chunks(self, data: bytes | Path) -> Iterator[bytes]:
        if isinstance(data, bytes):
            for start in range(0, len(data), _CHUNK):
                chunk = data[start : start + _CHUNK]
                self._uploaded += len(chunk)
                yield chunk
            return
        with data.open("rb") as file:
            while chunk := file.read(_CHUNK):
                self._uploaded += len(chunk)
                yield chunk

    # -- requests ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        subject: str,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: _Body | None = None,
        retry: bool | None = None,
        follow_redirects: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """Sends a request, authenticating on a 401 and retrying transient failures.

        ``retry`` defaults to True for GET and HEAD. The final answer is returned whatever
        its status; connection failures raise ``RegistryError``. With ``stream``, the body
        of a 200 is left unread, for the caller to read and close.
        """
        if retry is None:
            retry = method in ("GET", "HEAD")
        # credentials go to the registry only, not to a storage host an upload is sent to
        ours = httpx.URL(url).netloc == httpx.URL(self._base).netloc
        attempt = 0
        authenticated = False
        while True:
            request_headers = dict(headers or {})
            authorization = self._auth.authorization(scopes, subject) if ours else None
            if authorization is not None:
                request_headers["Authorization"] = authorization
            request = self._http.build_request(
                method,
                url,
                params=params,
                headers=request_headers,
                content=None if body is None else body(),
            )
            try:
                response = self._http.send(request, stream=True, follow_redirects=follow_redirects)
                try:
                    if not (stream and response.status_code == 200):
                        response.read()
                except BaseException:
                    response.close()
                    raise
            except httpx.TransportError as exc:
                if retry and attempt < RETRIES and not _is_tls_error(exc):
                    attempt += 1
                    backoff(attempt)
                    continue
                raise self._unreachable(exc, method, url, subject) from exc
            if response.status_code in RETRY_STATUSES and retry and attempt < RETRIES:
                attempt += 1
                backoff(attempt)
                continue
            if response.status_code == 401 and ours and not authenticated:
                authenticated = True
                if self._auth.challenged(response, scopes, subject, authorization):
                    continue
            return response

    def _unreachable(
        self, exc: httpx.TransportError, method: str, url: str | httpx.URL, subject: str
    ) -> RegistryError:
        cause = str(exc) or type(exc).__name__
        if _is_tls_error(exc) and not self.insecure:
            hint = (
                f"if {self.registry} is a plain-HTTP registry, mark it insecure "
                f'(insecure_registries = ["{self.registry}"] in the packaging settings)'
            )
        elif isinstance(exc, httpx.TimeoutException):
            hint = (
                f"it did not answer within {self._timeout:g} s: check the network, or "
                "raise the timeout"
            )
        elif isinstance(exc, httpx.ConnectError):
            hint = "check that the registry is running and that its address is right"
        else:
            hint = "check the network and that the registry is healthy, then try again"
        return RegistryError(
            f"cannot reach the registry {self.registry} for {subject} ({method} {url}): "
            f"{cause}; {hint}"
        )

    def _fail(
        self, response: httpx.Response, subject: str, repository: str, *, push: bool = False
    ) -> NoReturn:
        status = response.status_code
        detail = _error_detail(response)
        if status == 401:
            raise self._auth.refused(repository, subject, push=push, detail=detail)
        if status == 403:
            who = repr(self._auth.username) if self._auth.username else "an anonymous user"
            action = "push to" if push else "pull from"
            raise RegistryAuthError(
                f"{who} is not allowed to {action} {self.registry}/{repository} ({subject}: "
                f"{detail}): ask for access to the repository, or log in as another user "
                f"with `{login_command(self.registry)}`"
            )
        if status == 404 and not push:
            raise ImageNotFoundError(
                f"{subject} is not in the registry ({detail}): check the repository name and "
                "the tag or digest, and that it was pushed"
            )
        hint = "try again later; if it persists, look at the registry's logs"
        if status == 400 and self.insecure and "HTTPS" in response.text:
            hint = f"{self.registry} speaks HTTPS: do not mark it insecure"
        elif status in (400, 404) and ("BLOB_UNKNOWN" in detail or "MANIFEST_BLOB" in detail):
            hint = "push the blobs a manifest names before the manifest"
        raise RegistryError(
            f"{self.registry} answered {status} to {response.request.method} for {subject}: "
            f"{detail}; {hint}"
        )

    # -- names -------------------------------------------------------------------------

    def _check_repository(self, repository: str) -> None:
        if not REPOSITORY_PATTERN.fullmatch(repository):
            raise ConfigurationError(
                f"{repository!r} is not a repository name of {self.registry} (lowercase "
                "components joined by '/', e.g. 'acme/pipelines')"
            )

    def _subject(self, repository: str, reference: str) -> str:
        self._check_repository(repository)
        if DIGEST_PATTERN.fullmatch(reference):
            return f"the image {self.registry}/{repository}@{reference}"
        if not TAG_PATTERN.fullmatch(reference):
            raise ConfigurationError(
                f"{reference!r} is neither a tag nor a sha256 digest, for "
                f"{self.registry}/{repository}"
            )
        return f"the image {self.registry}/{repository}:{reference}"

    def _blob_subject(self, repository: str, digest: str) -> str:
        self._check_repository(repository)
        if not DIGEST_PATTERN.fullmatch(digest):
            raise ConfigurationError(
                f"{digest!r} is not a blob digest (sha256: and 64 lowercase hex digits), for "
                f"{self.registry}/{repository}"
            )
        return f"the blob {digest} of {self.registry}/{repository}"

    def _url(self, repository: str, kind: str, reference: str) -> str:
        return f"{self._base}/v2/{repository}/{kind}/{reference}"

    @staticmethod
    def _scopes(
        repository: str, *, push: bool = False, mount_from: str | None = None
    ) -> tuple[str, ...]:
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        if mount_from is None or mount_from == repository:
            return (scope,)
        return (scope, f"repository:{mount_from}:pull")


def _size(data: bytes | Path) -> int:
    if isinstance(data, bytes):
        return len(data)
    try:
        return data.stat().st_size
    except OSError as exc:
        raise ConfigurationError(f"cannot read the blob file {data}: {exc}") from exc


def _media_type(response: httpx.Response, body: bytes) -> str:
    header = str(response.headers.get("Content-Type", "")).split(";")[0].strip()
    if header in MANIFEST_TYPES:
        return header
    try:
        parsed = json.loads(body)
    except ValueError:
        return header
    if not isinstance(parsed, dict):
        return header
    declared = parsed.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in parsed:
        return OCI_INDEX
    if "layers" in parsed and "config" in parsed:
        return OCI_MANIFEST
    return header


def _index_entries(manifest: Manifest, subject: str, registry: str) -> list[dict[str, Any]]:
    try:
        entries = manifest.json()["manifests"]
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and DIGEST_PATTERN.fullmatch(str(e.get("digest", "")))
            for e in entries
        ):
            raise TypeError("malformed 'manifests'")
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"{registry} answered an index for {subject} that cannot be read ({exc}); "
            "push the image again"
        ) from exc
    return entries


def _platform(entry: dict[str, Any]) -> tuple[str, str, str]:
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return ("", "", "")
    return (
        str(platform.get("os", "")),
        str(platform.get("architecture", "")),
        str(platform.get("variant", "")),
    )


def _error_detail(response: httpx.Response) -> str:
    """The registry's error codes and messages, else the start of the body, else the status."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        errors = None
    if isinstance(errors, list) and errors:
        return "; ".join(
            f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ")
            for e in errors
            if isinstance(e, dict)
        )
    text = response.text.strip() if response.request.method != "HEAD" else ""
    return text[:200] if text else f"HTTP {response.status_code} {response.reason_phrase}"


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
