"""The server's front door: which requests reach the handlers at all (an ASGI middleware).

Checked in this order, before any handler runs; each refusal is ``{"error": "..."}``:

1. ``Host`` (421): when ``allowed_hosts`` is given (always for a keyless server), the name
   the request was addressed to must be one of them, whatever the port. A web page that
   rebinds its own DNS name to 127.0.0.1 still sends its own name, so it is refused.
2. ``Origin`` (403): with ``allowed_hosts`` too, a state-changing request (POST, PUT,
   PATCH, DELETE) that carries an ``Origin`` must come from the server's own origin
   (scheme aside: the one the ``Host`` header names). Browsers send ``Origin`` on every
   cross-site POST, so a page elsewhere cannot steer the server, even with a "simple"
   request that needs no CORS preflight. Without ``allowed_hosts`` (a keyed server, maybe
   behind a proxy that rewrites ``Host``), the key does this: a browser never attaches it
   by itself.
3. The API key (401): with a key, every path under ``key_prefix`` except ``public`` ones
   needs ``Authorization: Bearer KEY``, reads included. KEY is the server's own key (the
   bootstrap admin key, user ``admin``) or one of the keys ``keys`` knows (looked up on
   every request, so a revoked key is refused at once). Who it is (a ``Principal``) is put
   in the ASGI scope (``principal_of``) for the handlers.
4. The role (403): a ``read`` key may not send a state-changing request, except a POST to
   one of ``read_posts`` (a lookup that changes nothing).
5. ``Content-Type`` (415): a POST, PUT or PATCH with a body must be ``application/json``,
   or the type its route declares in ``body_types`` (payload uploads). No HTML form can
   send these types, so no cross-site "simple" request reaches a handler.

``decide`` is the decision, a function of the request line and headers (and of the keys
store); ``Guard`` applies it to every HTTP request.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sematic.core.errors import SematicError
from sematic.core.keys import BOOTSTRAP_USER, Principal

JSON = "application/json"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
KEY_NEEDED = "This server needs an API key: send 'Authorization: Bearer KEY'."
# Where the guard puts the ``Principal`` of an authenticated request in the ASGI scope.
PRINCIPAL = "sematic.principal"
# Headers the guard decides on: each may be sent once (two could tell two stories).
_SINGLE = frozenset({"host", "origin", "authorization", "content-type"})


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BodyType:
    """Requests ``method`` on a path matching ``path`` carry one of ``types``, not JSON."""

    method: str
    path: re.Pattern[str]
    types: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """What the guard lets through.

    ``allowed_hosts``: host names (lowercase, no port, IPv6 without brackets) requests may
    be addressed to; None: any (a server behind a proxy, protected by its key).
    """

    api_key: str | None = None
    allowed_hosts: frozenset[str] | None = None
    key_prefix: str = "/api/"
    public: frozenset[str] = frozenset()
    body_types: Sequence[BodyType] = ()
    # Who holds a key other than ``api_key`` (``ApiKeyStore.authenticate``); only asked
    # when the server has an ``api_key``.
    keys: Callable[[str], Principal | None] | None = None
    read_posts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """A refusal, or who sent the request (None: no key needed, or no key on this server)."""

    refusal: Refusal | None = None
    principal: Principal | None = None


def principal_of(scope: Mapping[str, Any]) -> Principal | None:
    """Who sent the request, as the guard found (None: a keyless server, a public path)."""
    found = scope.get(PRINCIPAL)
    return found if isinstance(found, Principal) else None


def local_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a keyless server answers to: loopback, the address it is bound to, and
    ``extra`` (names it is reached by, as configured)."""
    return LOOPBACK | {_bare(name) for name in (bound, *extra) if name.strip()}


def bearer_matches(authorization: str | None, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer API_KEY`` (constant time)."""
    given = bearer(authorization)
    return given is not None and hmac.compare_digest(given.encode(), api_key.encode())


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, or None."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def authenticate(policy: Policy, authorization: str | None) -> Principal | None:
    """Who holds the key of an ``Authorization`` header: the server's own key is the
    bootstrap admin; any other is looked up in ``policy.keys``."""
    if policy.api_key is None:
        return None
    if bearer_matches(authorization, policy.api_key):
        return Principal(BOOTSTRAP_USER, "admin")
    given = bearer(authorization)
    if given is None or policy.keys is None:
        return None
    return policy.keys(given)


def refusal(policy: Policy, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """Why the request must not reach a handler, or None. ``headers`` has lowercase names."""
    return decide(policy, method, path, headers).refusal


def decide(policy: Policy, method: str, path: str, headers: Mapping[str, str]) -> Decision:
    """The guard's decision on a request (see the module docstring)."""
    early = _refusal_before_key(policy, method, headers)
    if early is not None:
        return Decision(early)
    principal = None
    if _keyed(policy, path):
        principal = authenticate(policy, headers.get("authorization"))
        if principal is None:
            return Decision(Refusal(401, KEY_NEEDED, {"WWW-Authenticate": "Bearer"}))
        if not principal.can_write and method in UNSAFE and path not in policy.read_posts:
            return Decision(
                Refusal(
                    403,
                    f"Refused a {method} to {path}: the API key of user {principal.user!r} "
                    "is read-only (role read). Changing state needs a key with the write or "
                    "admin role.",
                )
            )
    return Decision(_refused_body(policy, method, path, headers), principal)


def _keyed(policy: Policy, path: str) -> bool:
    """Whether a request to ``path`` needs a key."""
    return (
        policy.api_key is not None
        and path.startswith(policy.key_prefix)
        and path not in policy.public
    )


def _refusal_before_key(policy: Policy, method: str, headers: Mapping[str, str]) -> Refusal | None:
    host = headers.get("host", "")
    if policy.allowed_hosts is not None and _host_name(host) not in policy.allowed_hosts:
        return Refusal(
            421,
            f"This server does not answer to the host name {host!r}. A keyless server only "
            "answers to 127.0.0.1, localhost, [::1] and its own address; to reach it by "
            "another name, start it with --allowed-host NAME.",
        )
    origin = headers.get("origin")
    if (
        policy.allowed_hosts is not None
        and method in UNSAFE
        and origin is not None
        and not _same_origin(origin, host)
    ):
        return Refusal(
            403,
            f"Refused a {method} from the web origin {origin!r}: this server only takes "
            "changes from its own pages and from programs that send no Origin.",
        )
    return None


def _refused_body(
    policy: Policy, method: str, path: str, headers: Mapping[str, str]
) -> Refusal | None:
    if method in WITH_BODY and _has_body(headers):
        allowed = _body_types(policy, method, path)
        given = headers.get("content-type", "").partition(";")[0].strip().lower()
        if given not in allowed:
            expected = " or ".join(sorted(allowed))
            shown = repr(given) if given else "none"
            return Refusal(
                415, f"The body of a {method} to {path} must be sent as {expected}, not {shown}."
            )
    return None


class Guard:
    """ASGI middleware: answers a refused request itself; passes the others on."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: dict[str, str] = {}
            refused = None
            for raw_name, raw_value in scope["headers"]:
                name = raw_name.decode("latin-1").lower()
                if name in _SINGLE and name in headers:
                    refused = Refusal(400, f"The {name} header may be sent only once.")
                headers[name] = raw_value.decode("latin-1")
            if refused is None:
                decision = await self._decide(scope["method"], scope["path"], headers)
                refused = decision.refusal
                scope[PRINCIPAL] = decision.principal
            if refused is not None:
                response = JSONResponse(
                    {"error": refused.message}, refused.status, dict(refused.headers)
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _decide(self, method: str, path: str, headers: Mapping[str, str]) -> Decision:
        if self.policy.keys is None or not _keyed(self.policy, path):
            return decide(self.policy, method, path, headers)
        try:  # keys are looked up in the database: not on the event loop
            return await asyncio.to_thread(decide, self.policy, method, path, headers)
        except SematicError as exc:
            return Decision(Refusal(503, f"Cannot check the API key: {exc}"))


def _bare(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")


def _host_name(host: str) -> str:
    """The name of a ``Host`` header value, without its port."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names the host the request was sent to (and its port)."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    host = host.strip().lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host


def _has_body(headers: Mapping[str, str]) -> bool:
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length", "").strip()
    return length not in ("", "0")


def _body_types(policy: Policy, method: str, path: str) -> frozenset[str]:
    for rule in policy.body_types:
        if rule.method == method and rule.path.fullmatch(path):
            return rule.types
    return frozenset({JSON})
