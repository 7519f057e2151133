"""`Principal`: who is making a request, as every other domain sees it.

Re-exported by `backend.auth.deps`, which is where endpoints get it from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["wallet", "provider", "auditor"]

#: The receipts tenant grammar (backend/receipts/service.py `_TENANT`), for the tenants we mint.
_WALLET_ID = re.compile(r"^0x[0-9a-f]{40}$")
_PROVIDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `id` is the lowercase 0x address for a wallet, the provider's id (as a string) for a
    provider key, and the key's name for an auditor key.
    """

    kind: PrincipalKind
    id: str
    scopes: frozenset[str]

    def __post_init__(self) -> None:
        if self.kind == "wallet" and not _WALLET_ID.match(self.id):
            raise ValueError(f"wallet principal id must be a lowercase 0x address, got {self.id!r}")
        if self.kind == "provider" and not _PROVIDER_ID.match(self.id):
            raise ValueError(f"provider principal id {self.id!r} is not a valid tenant id")

    @property
    def actor(self) -> str:
        """How the audit log names this caller: `wallet:0x…`, `provider:<id>`, `auditor:<name>`."""
        return f"{self.kind}:{self.id}"

    @property
    def tenant(self) -> str | None:
        """The data this caller owns; None for an auditor, who owns nothing and reads all."""
        return None if self.kind == "auditor" else f"{self.kind}:{self.id}"

    @property
    def provider_id(self) -> int:
        """The provider's numeric id; only for provider principals."""
        if self.kind != "provider":
            raise ValueError(f"{self.actor} is not a provider")
        return int(self.id)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
