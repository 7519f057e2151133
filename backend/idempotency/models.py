"""`idempotency_keys`: one row per (caller scope, Idempotency-Key) while it can be replayed.

A row is claimed (`in_progress`, with a lease and an owner token) before the request runs and
completed with the response afterwards, or deleted if the request failed with a 5xx or an
exception, so the client may retry. `effects_committed_at` is written by the request's own
transaction, in the same commit as its effects (`backend.idempotency.recording`): a claim that
has it is never run again, even if its response was lost. The response body is personal data
(it can hold a freshly issued API key), so it is stored AES-GCM encrypted and bound to the row
(`backend.kit.crypto`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base
from backend.kit.columns import BigIntPK, UTCDateTime, utcnow
from backend.kit.crypto_rotation import register_encrypted_column


class IdempotencyState(StrEnum):
    IN_PROGRESS = "in_progress"  # claimed; the request is running (until `locked_until`)
    COMPLETED = "completed"  # the response is stored and is replayed for the same request


_STATES_SQL = ", ".join(f"'{state.value}'" for state in IdempotencyState)

TABLE = "idempotency_keys"


class IdempotencyKey(Base):
    __tablename__ = TABLE
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        CheckConstraint(f"state IN ({_STATES_SQL})", name="state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(320))  # "wallet:0x…", "provider:7", "ip:10.0.0.1"
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the request
    state: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(32))  # token of the request holding the claim
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    effects_committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)  # field ciphertext
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


register_encrypted_column(TABLE, "response_body")
