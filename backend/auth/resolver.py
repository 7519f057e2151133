"""Bearer credential -> `Principal`, or the 401 that says exactly what is wrong with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.auth.exceptions import (
    ExpiredCredentials,
    InvalidCredentials,
    MissingCredentials,
    RevokedCredentials,
)
from backend.auth.models import ApiKey, ApiKeyKind
from backend.auth.principal import Principal
from backend.auth.repository import ApiKeyRepository, ProviderRepository, WalletSessionRepository
from backend.auth.scopes import WALLET_SCOPES
from backend.auth.tokens import (
    API_KEY_PREFIX,
    SESSION_PREFIX,
    digest,
    is_session_token,
    parse_api_key,
    same_digest,
)
from backend.config import Settings
from backend.kit.columns import utcnow

Clock = Callable[[], datetime]

#: `last_used_at` is refreshed at most this often per key, so authenticated reads do not each
#: turn into a row write.
LAST_USED_RESOLUTION = timedelta(seconds=60)

_SIGN_IN_AGAIN = "Sign in again: GET /v1/auth/nonce, then POST /v1/auth/siwe."
_NEW_KEY = "Use a current key; a provider can create one with POST /v1/provider/api-keys."


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization or not authorization.strip():
        raise MissingCredentials("no credentials: the Authorization header is missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingCredentials(
            f"the Authorization header must be 'Bearer <token>', got scheme {scheme!r}"
        )
    return token.strip()


class CredentialResolver:
    def __init__(self, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    def resolve(self, session: Session, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if token.startswith(SESSION_PREFIX):
            return self._wallet(session, token)
        if token.startswith(API_KEY_PREFIX):
            return self._api_key(session, token)
        raise InvalidCredentials(
            "the bearer token is not a credagg credential (expected cs_... or ck_...)"
        )

    def _wallet(self, session: Session, token: str) -> Principal:
        if not is_session_token(token):
            raise InvalidCredentials("malformed session token", hint=_SIGN_IN_AGAIN)
        pepper = self.settings.session_secret.get_secret_value()
        row = WalletSessionRepository(session).by_token_hash(digest(pepper, token))
        if row is None:
            raise InvalidCredentials("unknown session token", hint=_SIGN_IN_AGAIN)
        if row.revoked_at is not None:
            raise RevokedCredentials(
                f"this session was ended at {row.revoked_at.isoformat()}", hint=_SIGN_IN_AGAIN
            )
        if row.expires_at <= self.clock():
            raise ExpiredCredentials(
                f"this session expired at {row.expires_at.isoformat()}", hint=_SIGN_IN_AGAIN
            )
        return Principal(kind="wallet", id=row.address, scopes=WALLET_SCOPES)

    def _api_key(self, session: Session, token: str) -> Principal:
        parts = parse_api_key(token)
        if parts is None:
            raise InvalidCredentials(
                "malformed API key (expected ck_<16 hex key id>_<43-character secret>)",
                hint=_NEW_KEY,
            )
        keys = ApiKeyRepository(session)
        key = keys.by_id(parts.key_id)
        pepper = self.settings.secret_key.get_secret_value()
        if key is None or not same_digest(key.secret_hash, pepper, token):
            raise InvalidCredentials(
                f"unknown API key {parts.key_id} or wrong secret", hint=_NEW_KEY
            )
        now = self.clock()
        self._check_live(session, key, now)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            keys.touch(key.id, now)
        scopes = frozenset(key.scopes)
        if key.kind == ApiKeyKind.PROVIDER.value:
            return Principal(kind="provider", id=str(key.provider_id), scopes=scopes)
        return Principal(kind="auditor", id=key.name, scopes=scopes)

    @staticmethod
    def _check_live(session: Session, key: ApiKey, now: datetime) -> None:
        if key.revoked_at is not None:
            raise RevokedCredentials(
                f"API key {key.id} was revoked at {key.revoked_at.isoformat()}", hint=_NEW_KEY
            )
        if key.expires_at is not None and key.expires_at <= now:
            rotated = f" (rotated; use {key.replaced_by_id})" if key.replaced_by_id else ""
            raise ExpiredCredentials(
                f"API key {key.id} expired at {key.expires_at.isoformat()}{rotated}",
                hint=_NEW_KEY,
            )
        if key.provider_id is not None:
            provider = ProviderRepository(session).get(key.provider_id)
            if provider is None or not provider.is_active:
                raise RevokedCredentials(
                    f"provider {key.provider_id} is suspended; its keys do not work",
                    hint="Contact the operator.",
                )
