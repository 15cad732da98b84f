"""Authentication to a registry: the ``WWW-Authenticate`` challenge, Basic, Bearer tokens.

A registry answers ``401`` with a challenge. ``Basic`` means the credentials go with
every request. ``Bearer realm=...,service=...,scope=...`` means a token is fetched from the
realm (``GET realm?service=...&scope=...``, with the credentials as Basic if there are
any, anonymously otherwise), read from ``token`` or ``access_token`` and sent as
``Authorization: Bearer``; tokens are cached per scope until shortly before
``expires_in``. Credentials not given are looked up once, on the first challenge.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass

import httpx

from sematic.core.errors import RegistryAuthError, RegistryError
from sematic.packaging.credentials import DOCKER_HUB, Credentials, find_credentials

RETRIES = 2  # after the first attempt
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF = 0.2  # seconds, doubled at each retry
_TOKEN_MARGIN = 10.0  # a token is renewed this long before it expires
_DEFAULT_LIFETIME = 60.0  # the token spec's default expires_in
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def backoff(attempt: int) -> None:
    """Waits before retry number ``attempt`` (1, 2, ...)."""
    time.sleep(_BACKOFF * 2 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: ``basic`` or ``bearer`` and its parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """None for a scheme other than Basic or Bearer."""
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() not in ("basic", "bearer"):
            return None
        params = {}
        for match in _PARAM.finditer(rest):
            quoted, bare = match.group(2), match.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            params[match.group(1).lower()] = value
        return cls(scheme.lower(), params)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires: float  # time.monotonic()


def login_command(registry: str) -> str:
    return "docker login" if registry == DOCKER_HUB else f"docker login {registry}"


class Authenticator:
    """What a client of ``registry`` sends as ``Authorization``, learned from its challenges."""

    def __init__(
        self,
        registry: str,
        http: httpx.Client,
        *,
        insecure: bool,
        credentials: Credentials | None,
    ) -> None:
        self._registry = registry
        self._http = http
        self._insecure = insecure
        self._credentials = credentials
        self._looked_up = credentials is not None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}

    @property
    def username(self) -> str | None:
        """The user of the credentials in use (None: anonymous, or not looked up yet)."""
        return None if self._credentials is None else self._credentials.username

    def authorization(self, scopes: tuple[str, ...], subject: str) -> str | None:
        """The ``Authorization`` header for a request needing ``scopes``; None: anonymous."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            credentials = self._found_credentials()
            if credentials is None:
                return None
            pair = f"{credentials.username}:{credentials.password}".encode()
            return f"Basic {base64.b64encode(pair).decode('ascii')}"
        token = self._tokens.get(scopes)
        if token is None or token.expires <= time.monotonic():
            token = self._fetch_token(challenge, scopes, subject)
            self._tokens[scopes] = token
        return f"Bearer {token.value}"

    def challenged(
        self, response: httpx.Response, scopes: tuple[str, ...], subject: str, sent: str | None
    ) -> bool:
        """Learns from a 401 answered to ``sent``; whether sending again may succeed."""
        header = str(response.headers.get("WWW-Authenticate", ""))
        challenge = Challenge.parse(header)
        if challenge is None:
            raise RegistryError(
                f"{self._registry} answered 401 for {subject} with the challenge {header!r}, "
                "which is neither Basic nor Bearer: this client cannot authenticate to it"
            )
        self._challenge = challenge
        self._tokens.pop(scopes, None)
        if challenge.scheme == "basic":
            if self._found_credentials() is None:
                raise self.refused(_repository(scopes), subject, push=_pushes(scopes))
            return sent is None or not sent.startswith("Basic ")
        wanted = _merge(scopes, challenge.params.get("scope", "").split())
        self._tokens[scopes] = self._fetch_token(challenge, wanted, subject)
        return True

    def refused(
        self, repository: str, subject: str, *, push: bool, detail: str = ""
    ) -> RegistryAuthError:
        """The error for a request to ``repository`` the registry would not authorize."""
        action = "push to" if push else "pull from"
        where = f"{self._registry}/{repository}"
        reason = f"{subject}: {detail}" if detail else subject
        login = login_command(self._registry)
        if self._credentials is None:
            return RegistryAuthError(
                f"{self._registry} requires credentials to {action} {where} ({reason}): log "
                f"in with `{login}` or add credentials to ~/.docker/config.json"
            )
        return RegistryAuthError(
            f"{self._registry} refused the credentials of {self._credentials.username!r} to "
            f"{action} {where} ({reason}): check them, and log in again with `{login}`"
        )

    def _found_credentials(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = find_credentials(self._registry)
            self._looked_up = True
        return self._credentials

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...], subject: str) -> _Token:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(
                f"{self._registry} asked for a Bearer token for {subject} without a usable "
                f"realm ({realm!r}); report it to the registry's operators"
            )
        credentials = self._found_credentials()
        if credentials is not None and realm.startswith("http://") and not self._insecure:
            raise RegistryError(
                f"{self._registry} wants the credentials for {subject} sent to a plain-HTTP "
                f"token server ({realm}): refused; mark the registry insecure only if you "
                "trust the network"
            )
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("scope", scope) for scope in scopes
        ]
        if "service" in challenge.params:
            params.insert(0, ("service", challenge.params["service"]))
        auth = None if credentials is None else (credentials.username, credentials.password)
        response = self._token_response(realm, params, auth, subject)
        if response.status_code in (401, 403):
            raise self.refused(
                _repository(scopes),
                subject,
                push=_pushes(scopes),
                detail=f"the token server {realm} answered {response.status_code}",
            )
        try:
            answer = response.json() if response.status_code == 200 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        value = answer.get("token") or answer.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(
                f"the token server {realm} of {self._registry} answered "
                f"{response.status_code} without a token for {subject}; try again later"
            )
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = _DEFAULT_LIFETIME
        return _Token(value, time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0))

    def _token_response(
        self,
        realm: str,
        params: list[tuple[str, str | int | float | bool | None]],
        auth: tuple[str, str] | None,
        subject: str,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.get(realm, params=params, auth=auth, follow_redirects=True)
            except httpx.TransportError as exc:
                if attempt < RETRIES:
                    attempt += 1
                    backoff(attempt)
                    continue
                raise RegistryError(
                    f"cannot reach the token server {realm} of {self._registry} for "
                    f"{subject}: {str(exc) or type(exc).__name__}; check the network and try "
                    "again"
                ) from exc
            if response.status_code in RETRY_STATUSES and attempt < RETRIES:
                attempt += 1
                backoff(attempt)
                continue
            return response


def _pushes(scopes: tuple[str, ...]) -> bool:
    """Whether the first scope (``repository:NAME:ACTIONS``) asks to push."""
    return scopes[0].endswith(",push")


def _repository(scopes: tuple[str, ...]) -> str:
    """NAME of the first scope, ``repository:NAME:ACTIONS``."""
    return scopes[0].split(":")[1]


def _merge(ours: tuple[str, ...], asked: list[str]) -> tuple[str, ...]:
    """``ours`` and the scopes a challenge asked for that ours do not already cover."""
    covered: dict[str, set[str]] = {}
    for scope in ours:
        resource, _, actions = scope.rpartition(":")
        covered.setdefault(resource, set()).update(actions.split(","))
    extra = []
    for scope in asked:
        resource, _, actions = scope.rpartition(":")
        if not set(actions.split(",")) <= covered.get(resource, set()):
            extra.append(scope)
    return (*ours, *dict.fromkeys(extra))
