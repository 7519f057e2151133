"""Bearer credentials: how they look, how they are made, how they are stored.

Two kinds, told apart by prefix so the resolver knows which table to look in without trying both:

* wallet session tokens `cs_<43 url-safe chars>` (32 random bytes), and
* API keys `ck_<key id>_<secret>`: a public key id (16 hex chars; the row's primary key, shown in
  listings and logs) and a secret of 32 random bytes (43 url-safe chars).

Only `HMAC-SHA256(pepper, credential)` is stored. A plain salted slow hash (bcrypt, argon2) is
for low-entropy passwords; these secrets have 256 bits of entropy, so a fast hash cannot be
brute-forced and keeps every authenticated request cheap. The HMAC key (the pepper: settings'
`secret_key` for API keys, `session_secret` for sessions) lives outside the database, so a
leaked database dump alone does not even let anyone *check* a guessed key. The cost: rotating
either secret invalidates every credential hashed with it (all API keys, or all sessions).
Digests are compared with `hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SESSION_PREFIX = "cs_"
API_KEY_PREFIX = "ck_"
SECRET_BYTES = 32
KEY_ID_BYTES = 8

_SESSION_TOKEN = re.compile(r"^cs_[A-Za-z0-9_-]{43}$")
_API_KEY = re.compile(r"^ck_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


def digest(pepper: str, credential: str) -> bytes:
    """The stored form of a credential: HMAC-SHA256 keyed with the pepper."""
    return hmac.new(pepper.encode(), credential.encode(), hashlib.sha256).digest()


def same_digest(expected: bytes, pepper: str, credential: str) -> bool:
    """Constant-time check that `credential` hashes to `expected`."""
    return hmac.compare_digest(expected, digest(pepper, credential))


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def is_session_token(token: str) -> bool:
    return bool(_SESSION_TOKEN.match(token))


@dataclass(frozen=True)
class ApiKeyParts:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{API_KEY_PREFIX}{self.key_id}_{self.secret}"


def new_api_key() -> ApiKeyParts:
    return ApiKeyParts(
        key_id=secrets.token_hex(KEY_ID_BYTES), secret=secrets.token_urlsafe(SECRET_BYTES)
    )


def parse_api_key(token: str) -> ApiKeyParts | None:
    """The parts of a well-formed API key, or None."""
    match = _API_KEY.match(token)
    if match is None:
        return None
    return ApiKeyParts(key_id=match["key_id"], secret=match["secret"])
