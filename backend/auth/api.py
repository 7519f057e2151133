"""The auth API: SIWE sign-in and sessions (/v1/auth), provider API keys (/v1/provider)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from backend.auth import exceptions as errors
from backend.auth.deps import (
    BearerToken,
    CurrentPrincipal,
    CurrentProvider,
    CurrentWallet,
    Principal,
    require_scope,
)
from backend.auth.key_service import ApiKeyService
from backend.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    MeOut,
    NonceOut,
    SessionOut,
    SiweIn,
)
from backend.auth.scopes import API_KEYS_MANAGE
from backend.auth.siwe_service import SiweService
from backend.config import Settings
from backend.db import SessionDep
from backend.exceptions import error_responses
from backend.kit.columns import utcnow

router = APIRouter()

_AUTH_401 = (
    errors.MissingCredentials,
    errors.InvalidCredentials,
    errors.ExpiredCredentials,
    errors.RevokedCredentials,
)
KeyId = Annotated[str, Path(min_length=1, max_length=32, description="The key's public id.")]
KeyManager = Annotated[Principal, Depends(require_scope(API_KEYS_MANAGE))]


def _siwe(request: Request) -> SiweService:
    return SiweService(request.app.state.settings, request.app.state.chains)


def _keys(request: Request) -> ApiKeyService:
    settings: Settings = request.app.state.settings
    return ApiKeyService(settings)


# --------------------------------------------------------------------------------- /v1/auth


@router.get("/v1/auth/nonce", response_model=NonceOut, tags=["auth"], summary="SIWE nonce")
def get_nonce(request: Request, session: SessionDep, response: Response) -> NonceOut:
    """A fresh single-use nonce for a Sign-In with Ethereum message, with the domain, URI and
    chain ids the message must name. It expires after `siwe_nonce_ttl_seconds`."""
    service = _siwe(request)
    issued = service.issue_nonce(session)
    response.headers["Cache-Control"] = "no-store"
    return NonceOut(
        nonce=issued.nonce,
        expires_at=issued.expires_at,
        domain=service.settings.siwe_domain,
        uri=service.settings.siwe_uri,
        chain_ids=service.chain_ids,
    )


@router.post(
    "/v1/auth/siwe",
    response_model=SessionOut,
    tags=["auth"],
    summary="Sign in with Ethereum",
    responses=error_responses(
        errors.SiweInvalid, errors.SignatureCheckUnavailable, validation=True
    ),
)
def sign_in(body: SiweIn, request: Request, session: SessionDep, response: Response) -> SessionOut:
    """Verify an EIP-4361 message and its signature (EOA or EIP-1271 wallet) and open a
    session. Every rejection is `siwe_invalid` with the failed field first in `detail`."""
    signed_in = _siwe(request).sign_in(session, body.message, body.signature)
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        token=signed_in.token,
        address=signed_in.address,
        chain_id=signed_in.chain_id,
        signer=signed_in.signer,
        expires_at=signed_in.expires_at,
    )


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    summary="End this wallet session",
    responses=error_responses(*_AUTH_401, errors.WrongPrincipal),
)
def logout(
    _wallet: CurrentWallet, token: BearerToken, request: Request, session: SessionDep
) -> Response:
    """Revoke the session whose token authenticated this request."""
    _siwe(request).logout(session, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/auth/me",
    response_model=MeOut,
    tags=["auth"],
    summary="Who am I",
    responses=error_responses(*_AUTH_401),
)
def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        actor=principal.actor,
        tenant=principal.tenant,
        scopes=sorted(principal.scopes),
    )


# ------------------------------------------------------------------------- /v1/provider/api-keys

_KEY_ERRORS = (*_AUTH_401, errors.WrongPrincipal, errors.MissingScope)


@router.post(
    "/v1/provider/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["provider"],
    summary="Create an API key",
    responses=error_responses(*_KEY_ERRORS, errors.InvalidKeyRequest, errors.InvalidName),
)
def create_key(
    body: ApiKeyCreate,
    provider: CurrentProvider,
    manager: KeyManager,
    request: Request,
    session: SessionDep,
) -> ApiKeyCreated:
    """A new key for your provider. The `key` is shown in this response only; store it now.
    Its scopes must be among those of the key making the request."""
    created = _keys(request).create_provider_key(
        session,
        provider.provider_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        grantor_scopes=manager.scopes,
    )
    return ApiKeyCreated(**ApiKeyOut.of(created.key, utcnow()).model_dump(), key=created.token)


@router.get(
    "/v1/provider/api-keys",
    response_model=ApiKeyList,
    tags=["provider"],
    summary="List your API keys",
    responses=error_responses(*_KEY_ERRORS),
)
def list_keys(
    provider: CurrentProvider, _manager: KeyManager, request: Request, session: SessionDep
) -> ApiKeyList:
    """Your provider's keys, newest last, with status; never their secrets."""
    now = utcnow()
    keys = _keys(request).list_provider_keys(session, provider.provider_id)
    return ApiKeyList(items=[ApiKeyOut.of(key, now) for key in keys])


@router.post(
    "/v1/provider/api-keys/{key_id}/rotate",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["provider"],
    summary="Rotate an API key",
    responses=error_responses(*_KEY_ERRORS, errors.ApiKeyNotFound, errors.ApiKeyNotRotatable),
)
def rotate_key(
    key_id: KeyId,
    provider: CurrentProvider,
    _manager: KeyManager,
    request: Request,
    session: SessionDep,
) -> ApiKeyCreated:
    """A new key with the same name, scopes and expiry. The old key keeps working for
    `api_key_rotation_grace_seconds` (default 24 h) so you can roll the new one out; revoke it
    to stop it at once."""
    created = _keys(request).rotate_provider_key(session, provider.provider_id, key_id)
    return ApiKeyCreated(**ApiKeyOut.of(created.key, utcnow()).model_dump(), key=created.token)


@router.delete(
    "/v1/provider/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["provider"],
    summary="Revoke an API key",
    responses=error_responses(*_KEY_ERRORS, errors.ApiKeyNotFound),
)
def revoke_key(
    key_id: KeyId,
    provider: CurrentProvider,
    _manager: KeyManager,
    request: Request,
    session: SessionDep,
) -> Response:
    """Revoke one of your keys; it stops working immediately. Revoking twice is harmless."""
    _keys(request).revoke_provider_key(session, provider.provider_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
