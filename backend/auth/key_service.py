"""Providers' and auditors' API keys: create (secret shown once), list, rotate, revoke.

Rotation issues a new key with the same name, scopes and expiry and lets the old one live on
for `api_key_rotation_grace_seconds` (default 24 h): long enough for a deployment to roll out
the new secret across every replica and for a retrying job to finish, short enough that a key
believed leaked stops working the same day. A caller who needs it dead at once revokes it.

Every provider-facing method takes the provider id from the authenticated principal and the
repository filters on it, so another provider's key is indistinguishable from a missing one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from backend.auth.exceptions import (
    ApiKeyNotFound,
    ApiKeyNotRotatable,
    InvalidKeyRequest,
    InvalidName,
    ProviderNameTaken,
)
from backend.auth.models import ApiKey, ApiKeyKind
from backend.auth.repository import ApiKeyRepository, ProviderRepository
from backend.auth.scopes import AUDITOR_SCOPES, PROVIDER_SCOPES
from backend.auth.tokens import digest, new_api_key
from backend.config import Settings
from backend.kit.columns import utcnow
from backend.providers.models import Provider, ProviderKind, ProviderStatus

Clock = Callable[[], datetime]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str  # `ck_<id>_<secret>`: returned once, never stored


def key_status(key: ApiKey, now: datetime) -> str:
    """active | rotating (replaced, in its grace period) | expired | revoked."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.replaced_by_id is not None:
        return "rotating"
    return "active"


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise InvalidName(
            f"{what} name {name!r} is not allowed",
            hint="Use 1-64 characters: letters, digits, '_', '.', '@', '-', "
            "starting with a letter or digit.",
        )
    return name


class ApiKeyService:
    def __init__(self, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    @property
    def _pepper(self) -> str:
        return self.settings.secret_key.get_secret_value()

    # -- providers (operator) ---------------------------------------------------------------

    def create_provider(self, session: Session, *, name: str, kind: ProviderKind) -> Provider:
        providers = ProviderRepository(session)
        check_name(name, "provider")
        if providers.by_name(name) is not None:
            raise ProviderNameTaken(
                f"a provider named {name!r} already exists", hint="Choose another name."
            )
        return providers.create(
            Provider(
                name=name,
                kind=kind.value,
                status=ProviderStatus.ACTIVE.value,
                created_at=self.clock(),
            )
        )

    # -- keys -------------------------------------------------------------------------------

    def create_provider_key(
        self,
        session: Session,
        provider_id: int,
        *,
        name: str,
        scopes: Iterable[str] | None = None,
        expires_at: datetime | None = None,
        grantor_scopes: frozenset[str] = PROVIDER_SCOPES,
    ) -> CreatedKey:
        """A key for `provider_id`. Its scopes must be among the grantor's (no escalation)."""
        chosen = self._scopes(scopes, PROVIDER_SCOPES & grantor_scopes, "provider")
        return self._create(
            session,
            kind=ApiKeyKind.PROVIDER,
            provider_id=provider_id,
            name=check_name(name, "key"),
            scopes=chosen,
            expires_at=self._expiry(expires_at),
        )

    def create_auditor_key(
        self,
        session: Session,
        *,
        name: str,
        scopes: Iterable[str] | None = None,
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        return self._create(
            session,
            kind=ApiKeyKind.AUDITOR,
            provider_id=None,
            name=check_name(name, "auditor"),
            scopes=self._scopes(scopes, AUDITOR_SCOPES, "auditor"),
            expires_at=self._expiry(expires_at),
        )

    def list_provider_keys(self, session: Session, provider_id: int) -> Sequence[ApiKey]:
        return ApiKeyRepository(session).for_provider(provider_id)

    def rotate_provider_key(self, session: Session, provider_id: int, key_id: str) -> CreatedKey:
        old = self._own_key(session, provider_id, key_id)
        now = self.clock()
        status = key_status(old, now)
        if status != "active":
            successor = f"; rotate its successor {old.replaced_by_id}" if old.replaced_by_id else ""
            raise ApiKeyNotRotatable(
                f"API key {key_id} is {status} and cannot be rotated{successor}",
                hint="Create a new key with POST /v1/provider/api-keys instead."
                if not successor
                else "Rotate the newest key.",
            )
        new = self._create(
            session,
            kind=ApiKeyKind.PROVIDER,
            provider_id=provider_id,
            name=old.name,
            scopes=list(old.scopes),
            expires_at=old.expires_at,
        )
        grace_end = now + timedelta(seconds=self.settings.api_key_rotation_grace_seconds)
        old.expires_at = min(old.expires_at, grace_end) if old.expires_at else grace_end
        old.replaced_by_id = new.key.id
        session.flush()
        return new

    def revoke_provider_key(self, session: Session, provider_id: int, key_id: str) -> ApiKey:
        key = self._own_key(session, provider_id, key_id)
        return self._revoke(session, key)

    def revoke_any_key(self, session: Session, key_id: str) -> ApiKey:
        """Operator action (CLI): revoke any key by id."""
        key = ApiKeyRepository(session).by_id(key_id)
        if key is None:
            raise ApiKeyNotFound(f"no API key {key_id!r}", hint="List keys to find the id.")
        return self._revoke(session, key)

    # -- helpers ----------------------------------------------------------------------------

    def _create(
        self,
        session: Session,
        *,
        kind: ApiKeyKind,
        provider_id: int | None,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
    ) -> CreatedKey:
        parts = new_api_key()
        key = ApiKeyRepository(session).create(
            ApiKey(
                id=parts.key_id,
                kind=kind.value,
                provider_id=provider_id,
                name=name,
                secret_hash=digest(self._pepper, parts.token),
                scopes=scopes,
                created_at=self.clock(),
                expires_at=expires_at,
            )
        )
        return CreatedKey(key=key, token=parts.token)

    def _own_key(self, session: Session, provider_id: int, key_id: str) -> ApiKey:
        key = ApiKeyRepository(session).provider_key(provider_id, key_id)
        if key is None:
            raise ApiKeyNotFound(
                f"you have no API key {key_id!r}",
                hint="GET /v1/provider/api-keys lists your keys and their ids.",
            )
        return key

    def _revoke(self, session: Session, key: ApiKey) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = self.clock()
            session.flush()
        return key

    def _expiry(self, expires_at: datetime | None) -> datetime | None:
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidKeyRequest(
                f"expires_at {expires_at.isoformat()} is not in the future",
                hint="Give a future time with a UTC offset, or omit it for a key without expiry.",
            )
        return expires_at

    @staticmethod
    def _scopes(requested: Iterable[str] | None, allowed: frozenset[str], kind: str) -> list[str]:
        if requested is None:
            return sorted(allowed)
        chosen = sorted(set(requested))
        if not chosen:
            raise InvalidKeyRequest(
                "a key needs at least one scope",
                hint=f"Choose from: {', '.join(sorted(allowed))}.",
            )
        refused = [scope for scope in chosen if scope not in allowed]
        if refused:
            raise InvalidKeyRequest(
                f"scopes not allowed for this {kind} key: {', '.join(refused)}",
                hint=f"Choose from: {', '.join(sorted(allowed))} (you cannot grant a scope "
                "you do not hold).",
            )
        return chosen
