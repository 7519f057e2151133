"""Tables of the identity layer: SIWE nonces, wallet sessions, API keys.

No credential is stored in a usable form: session tokens and API key secrets are kept only as
HMAC-SHA256 digests (see `backend.auth.tokens`). SIWE nonces are stored as they are, because a
nonce is not a secret: it travels in the clear inside the message the wallet signs, and holding
it grants nothing without that signature. What matters for nonces is that each is single-use and
expires, which the row's existence (deleted on use) and `expires_at` give.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow
from backend.providers import models as _providers  # noqa: F401 - api_keys.provider_id FK


class SiweNonce(Base):
    """An issued, not yet used SIWE nonce. Using it deletes the row (single use)."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WalletSession(Base):
    """A wallet signed in with SIWE: the digest of its bearer token, and its lifetime."""

    __tablename__ = "wallet_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    address: Mapped[str] = mapped_column(String(42), index=True)  # lowercase 0x address
    chain_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKeyKind(StrEnum):
    PROVIDER = "provider"  # belongs to one provider; tenant provider:<id>
    AUDITOR = "auditor"  # read-only across tenants; no provider


class ApiKey(Base):
    """An API key `ck_<id>_<secret>`: the public id is the primary key, the secret a digest."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('provider', 'auditor')", name="kind"),
        CheckConstraint(
            "(kind = 'provider' AND provider_id IS NOT NULL) "
            "OR (kind = 'auditor' AND provider_id IS NULL)",
            name="owner",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("providers.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaced_by_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("api_keys.id"))
