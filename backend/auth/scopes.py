"""The scopes a principal can hold. A key's scopes are a subset of its kind's; a wallet session
holds all of the wallet scopes. Endpoints ask for one with `require_scope(...)`."""

from __future__ import annotations

API_KEYS_MANAGE = "api_keys:manage"
PROFILE_WRITE = "profile:write"
REQUESTS_READ = "requests:read"
QUOTES_WRITE = "quotes:write"
LOANS_READ = "loans:read"
RECEIPTS_READ = "receipts:read"
AUDIT_READ = "audit:read"
CREDIT_WRITE = "credit:write"

PROVIDER_SCOPES: frozenset[str] = frozenset(
    {API_KEYS_MANAGE, PROFILE_WRITE, REQUESTS_READ, QUOTES_WRITE, LOANS_READ, RECEIPTS_READ}
)
AUDITOR_SCOPES: frozenset[str] = frozenset({RECEIPTS_READ, AUDIT_READ})
WALLET_SCOPES: frozenset[str] = frozenset({CREDIT_WRITE, LOANS_READ, RECEIPTS_READ})
