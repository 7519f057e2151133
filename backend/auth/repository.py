"""All SQL of the identity layer.

Provider API keys are only ever read through methods that take the owning provider's id and
put it in the WHERE clause, so one provider cannot address another's key even by guessing its
id: such a key is simply not found (404), which also does not reveal that it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update

from backend.auth.models import ApiKey, ApiKeyKind, SiweNonce, WalletSession
from backend.kit.repository import RepositoryBase
from backend.providers.models import Provider


class SiweNonceRepository(RepositoryBase[SiweNonce]):
    model = SiweNonce

    def consume(self, nonce: str) -> datetime | None:
        """Delete the nonce and return its expiry; None if it was not there (unknown or used).

        One DELETE ... RETURNING, so exactly one of two concurrent sign-ins with the same nonce
        gets the row: on PostgreSQL the second DELETE waits for the first transaction's row lock
        and then finds nothing; on SQLite every transaction holds the write lock from BEGIN.
        """
        statement = (
            delete(SiweNonce).where(SiweNonce.nonce == nonce).returning(SiweNonce.expires_at)
        )
        return self.session.execute(statement).scalar_one_or_none()

    def purge_expired(self, now: datetime) -> int:
        """Drop nonces nobody used in time (keeps the table at the size of live sign-ins)."""
        result = self.session.execute(delete(SiweNonce).where(SiweNonce.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)


class WalletSessionRepository(RepositoryBase[WalletSession]):
    model = WalletSession

    def by_token_hash(self, token_hash: bytes) -> WalletSession | None:
        statement = select(WalletSession).where(WalletSession.token_hash == token_hash)
        return self.get_one_or_none(statement)

    def revoke(self, session_id: int, now: datetime) -> None:
        self.session.execute(
            update(WalletSession)
            .where(WalletSession.id == session_id, WalletSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    def by_id(self, key_id: str) -> ApiKey | None:
        """Any key by its public id: for the credential resolver and the operator CLI only."""
        return self.get(key_id)

    def for_provider(self, provider_id: int) -> Sequence[ApiKey]:
        statement = (
            select(ApiKey)
            .where(ApiKey.kind == ApiKeyKind.PROVIDER.value, ApiKey.provider_id == provider_id)
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return self.get_all(statement)

    def provider_key(self, provider_id: int, key_id: str) -> ApiKey | None:
        """The key if it belongs to this provider, else None (never another provider's)."""
        statement = select(ApiKey).where(
            ApiKey.id == key_id,
            ApiKey.kind == ApiKeyKind.PROVIDER.value,
            ApiKey.provider_id == provider_id,
        )
        return self.get_one_or_none(statement)

    def touch(self, key_id: str, now: datetime) -> None:
        self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


class ProviderRepository(RepositoryBase[Provider]):
    model = Provider

    def by_name(self, name: str) -> Provider | None:
        return self.get_one_or_none(select(Provider).where(Provider.name == name))
