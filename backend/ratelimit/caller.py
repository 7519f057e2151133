"""Who is calling, as the edge middlewares (rate limits, idempotency) need to know it.

Middlewares run before FastAPI's dependencies, so `request.state.principal` (set by
`backend.auth.deps.current_principal`) is not there yet. `caller_of` resolves the bearer
credential itself with the auth layer's `CredentialResolver`, once per request (the result is
kept in the ASGI scope's state for the next middleware). A missing or invalid credential is not
an error here: the caller is then anonymous and known by IP, and the endpoint's own auth
dependency answers the 401 with its precise reason.

The principal is kept under `CALLER_KEY`, not `principal`: the audit log names an actor only
once the endpoint itself authenticated the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.types import Scope

from backend.auth.principal import Principal
from backend.auth.resolver import CredentialResolver
from backend.auth.tokens import API_KEY_PREFIX, parse_api_key
from backend.config import Settings
from backend.db import SessionFactory, session_scope
from backend.exceptions import CredaggError

CALLER_KEY = "edge_caller"
UNKNOWN_IP = "unknown"


@dataclass(frozen=True)
class Caller:
    """The client IP, and the verified principal and API key id if the credential is valid."""

    ip: str
    principal: Principal | None = None
    api_key_id: str | None = None

    @property
    def scope(self) -> str:
        """What idempotency keys are scoped by: the actor, else the client IP."""
        return self.principal.actor if self.principal is not None else f"ip:{self.ip}"


def client_ip(scope: Scope) -> str:
    """The peer address (uvicorn's `proxy_headers` puts the forwarded client here)."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_IP


def resolve_caller(scope: Scope, settings: Settings, session_factory: SessionFactory) -> Caller:
    """Blocking: verify the request's bearer credential (one query) and describe the caller."""
    ip = client_ip(scope)
    authorization = Headers(scope=scope).get("authorization")
    if not authorization:
        return Caller(ip=ip)
    try:
        with session_scope(session_factory) as session:
            principal = CredentialResolver(settings).resolve(session, authorization)
    except CredaggError:
        return Caller(ip=ip)  # the endpoint's auth dependency explains the 401
    token = authorization.strip().partition(" ")[2].strip()
    parts = parse_api_key(token) if token.startswith(API_KEY_PREFIX) else None
    return Caller(ip=ip, principal=principal, api_key_id=parts.key_id if parts else None)


async def caller_of(scope: Scope, settings: Settings, session_factory: SessionFactory) -> Caller:
    """The request's `Caller`, resolved at most once per request."""
    state: dict[str, Any] = scope.setdefault("state", {})
    cached = state.get(CALLER_KEY)
    if isinstance(cached, Caller):
        return cached
    caller = await anyio.to_thread.run_sync(resolve_caller, scope, settings, session_factory)
    state[CALLER_KEY] = caller
    return caller
