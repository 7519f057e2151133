"""FastAPI dependencies for authentication: who is calling, and may they.

    @router.get("/v1/receipts")
    def list_receipts(principal: CurrentPrincipal, session: SessionDep) -> ...

    @router.post("/v1/provider/quotes", dependencies=[Depends(require_scope(QUOTES_WRITE))])
    def submit(provider: CurrentProvider) -> ...

`current_principal` also stores the principal on `request.state.principal`, where the audit
log middleware finds it to name the actor. FastAPI caches dependencies per request, so a
route asking for several of these resolves the credential (one query) only once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.principal import Principal, PrincipalKind
from backend.auth.resolver import CredentialResolver, bearer_token
from backend.db import SessionDep

__all__ = [
    "BearerToken",
    "CurrentAuditor",
    "CurrentPrincipal",
    "CurrentProvider",
    "CurrentWallet",
    "Principal",
    "current_auditor",
    "current_principal",
    "current_provider",
    "current_wallet",
    "require_scope",
]

_HOW_TO = {
    "wallet": "a wallet session token (sign in with POST /v1/auth/siwe)",
    "provider": "a provider API key",
    "auditor": "an auditor API key (issued by the operator: `credagg auth auditor-key`)",
}


#: Declares the scheme in the OpenAPI document; the header itself is parsed by the resolver,
#: which explains a bad one better than HTTPBearer's generic 403.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A wallet session token (cs_...) or an API key (ck_...).",
)


def current_principal(
    request: Request,
    session: SessionDep,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
) -> Principal:
    """The authenticated caller (401 if there is none)."""
    resolver = CredentialResolver(request.app.state.settings)
    principal = resolver.resolve(session, request.headers.get("Authorization"))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _require_kind(kind: PrincipalKind) -> Callable[[Principal], Awaitable[Principal]]:
    # Pure checks are `async def`: FastAPI runs a sync dependency in the thread pool, a hop
    # (and, under load, a queue and GIL hand-offs) that a comparison does not need.
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind != kind:
            raise WrongPrincipal(
                f"this endpoint is for {kind}s; you are authenticated as {principal.actor}",
                hint=f"Call it with {_HOW_TO[kind]}.",
            )
        return principal

    dependency.__name__ = f"current_{kind}"
    return dependency


current_wallet = _require_kind("wallet")
current_provider = _require_kind("provider")
current_auditor = _require_kind("auditor")

CurrentWallet = Annotated[Principal, Depends(current_wallet)]
CurrentProvider = Annotated[Principal, Depends(current_provider)]
CurrentAuditor = Annotated[Principal, Depends(current_auditor)]


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that passes the principal through if it holds `scope`, else 403."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_scope(scope):
            held = ", ".join(sorted(principal.scopes)) or "none"
            raise MissingScope(
                f"this endpoint needs the scope {scope!r}; your credentials hold: {held}",
                hint="Use a key created with this scope (POST /v1/provider/api-keys with "
                '"scopes").',
            )
        return principal

    dependency.__name__ = f"require_scope_{scope.replace(':', '_')}"
    return dependency


def provider_with_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency for a provider key holding `scope`: a wallet or auditor is refused first
    (`WrongPrincipal`), then a provider key without the scope (`MissingScope`)."""

    scoped = require_scope(scope)

    # A default, not an Annotated hint: with postponed annotations FastAPI resolves hints
    # from module globals, where the closure's `scope` does not exist.
    async def dependency(
        provider: CurrentProvider, _scoped: Principal = Depends(scoped)
    ) -> Principal:
        return provider

    dependency.__name__ = f"provider_with_{scope.replace(':', '_')}"
    return dependency


async def _bearer(request: Request) -> str:
    return bearer_token(request.headers.get("Authorization"))


#: The raw bearer token (logout needs it to find its session).
BearerToken = Annotated[str, Depends(_bearer)]
