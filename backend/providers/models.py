"""The `providers` table: who a lender is, nothing more yet.

Only identity lives here (what API keys and tenants point at). Profile, rate cards, webhook URLs
and adapters belong to the providers feature and will be added as their own tables/columns, so
this table stays minimal: a stable integer id (the tenant is `provider:<id>`), a unique name,
the kind and a status that can switch a provider off without deleting its history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow


class ProviderKind(StrEnum):
    DEFI = "defi"  # a lending pool contract on a chain; rates read on-chain
    TRADITIONAL = "traditional"  # a lender with an HTTPS quote endpoint or a rate card


class ProviderStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its keys stop working; nothing is deleted


_KINDS_SQL = ", ".join(f"'{kind.value}'" for kind in ProviderKind)
_STATUSES_SQL = ", ".join(f"'{status.value}'" for status in ProviderStatus)


class Provider(Base):
    """One lender. `tenant` is what receipts, quotes and loans are scoped by."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind"),
        CheckConstraint(f"status IN ({_STATUSES_SQL})", name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ProviderStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def tenant(self) -> str:
        return f"provider:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.status == ProviderStatus.ACTIVE.value
