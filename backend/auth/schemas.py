"""Request and response shapes of the auth API (never the table models)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from backend.auth.key_service import key_status
from backend.auth.models import ApiKey


class NonceOut(BaseModel):
    """A single-use nonce and everything needed to build the SIWE message around it."""

    nonce: str
    expires_at: datetime
    domain: str
    uri: str
    version: Literal["1"] = "1"
    chain_ids: list[int]


class SiweIn(BaseModel):
    message: str = Field(min_length=1, max_length=16_384, description="The EIP-4361 text.")
    signature: str = Field(
        min_length=4, max_length=8_194, description="0x-hex EIP-191 (or EIP-1271) signature."
    )


class SessionOut(BaseModel):
    """A wallet session. `token` is shown only here; send it as `Authorization: Bearer`."""

    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, no secret
    address: str
    chain_id: int
    signer: Literal["eoa", "eip1271"]
    expires_at: datetime


class MeOut(BaseModel):
    kind: Literal["wallet", "provider", "auditor"]
    id: str
    actor: str
    tenant: str | None
    scopes: list[str]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["production"])
    scopes: list[str] | None = Field(
        default=None, description="Default: every provider scope the calling key holds."
    )
    expires_at: AwareDatetime | None = Field(default=None, description="Default: never.")


class ApiKeyOut(BaseModel):
    """A key as listed: never its secret."""

    id: str
    name: str
    kind: Literal["provider", "auditor"]
    scopes: list[str]
    status: Literal["active", "rotating", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    replaced_by: str | None

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            kind=key.kind,  # type: ignore[arg-type]
            scopes=list(key.scopes),
            status=key_status(key, now),  # type: ignore[arg-type]
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            replaced_by=key.replaced_by_id,
        )


class ApiKeyCreated(ApiKeyOut):
    """A new key with its secret: `key` is shown this once and cannot be recovered."""

    key: str


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
