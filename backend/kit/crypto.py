"""Field encryption of personal data at rest: AES-256-GCM with key ids.

A ciphertext is one ASCII string (it fits a `Text` column on SQLite and PostgreSQL alike):

    v1.<kid>.<base64url nonce>.<base64url ciphertext+tag>

* a fresh random 96-bit nonce per encryption (never reused under a key: 2^32 encryptions per key
  keep the collision probability below 2^-32, far beyond what these columns see);
* the key id says which key of the keyring decrypts it, so keys can rotate while old rows stay
  readable (`backend.kit.crypto_rotation` re-encrypts them under the active key);
* associated data (AAD) binds the ciphertext to where it lives: version, key id, table, column and
  row id. A ciphertext copied to another row or column, or relabelled with another key id, fails
  authentication instead of decrypting as somebody else's data.

Why explicit `encrypt`/`decrypt` calls and not a SQLAlchemy `TypeDecorator`: a type decorator
sees only the value, never the row it belongs to, so it cannot bind the ciphertext to its row id
(and an autoincrement id does not even exist when the value is bound for INSERT). Services call
`FieldCipher.encrypt(value, FieldContext(table, column, row_id))` after the row has its id
(flush first), and decryption failures surface in the service, with that context in the error.

Keys come from settings (`CREDAGG_DATA_ENCRYPTION_KEYS="kid:base64key,kid2:base64key"`,
`CREDAGG_DATA_ENCRYPTION_ACTIVE_KEY=kid`); this module takes strings, never `Settings`, so the
settings class can validate the keyring with it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENVELOPE_VERSION",
    "DecryptionFailed",
    "FieldCipher",
    "FieldContext",
    "FieldEncryptionError",
    "InvalidKeyring",
    "UnknownKeyId",
    "envelope_key_id",
    "parse_keyring",
]

ENVELOPE_VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the GCM standard nonce size
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_HOW_TO_MAKE_A_KEY = (
    'generate a key with `python -c "import os, base64; '
    'print(base64.b64encode(os.urandom(32)).decode())"`'
)


class FieldEncryptionError(Exception):
    """Root of the errors of this module (configuration and decryption)."""


class InvalidKeyring(FieldEncryptionError, ValueError):
    """The configured keys cannot be used (bad format, wrong length, active key missing)."""


class UnknownKeyId(FieldEncryptionError):
    """A ciphertext names a key id that is not (or no longer) configured."""


class DecryptionFailed(FieldEncryptionError):
    """The ciphertext is malformed, was tampered with, or belongs to another row or column."""


@dataclass(frozen=True)
class FieldContext:
    """Where a ciphertext lives; part of its associated data."""

    table: str
    column: str
    row_id: str | int

    def aad(self, kid: str) -> bytes:
        # Unit separators cannot appear in table/column names; the row id is the last field, so
        # the encoding is unambiguous whatever the id contains.
        parts = ("credagg-field", ENVELOPE_VERSION, kid, self.table, self.column, str(self.row_id))
        return "\x1f".join(parts).encode()

    def describe(self) -> str:
        return f"{self.table}.{self.column} of row {self.row_id}"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url: only the canonical spelling of some bytes is accepted.

    The lenient decoder ignores stray characters and the unused low bits of the last one, which
    would let an altered envelope decrypt to the same plaintext.
    """
    if not _B64URL.match(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


def parse_keyring(spec: str) -> dict[str, bytes]:
    """`"kid:base64key,kid2:base64key"` -> {kid: 32-byte key}. Raises `InvalidKeyring`.

    Standard or URL-safe base64 are both accepted; every key must be exactly 32 bytes.
    """
    keys: dict[str, bytes] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        kid = kid.strip()
        if not sep or not _KID.match(kid):
            raise InvalidKeyring(
                f"data encryption key entry {kid[:32]!r} must be '<kid>:<base64 key>' with a kid "
                "of 1-32 letters, digits, '_' or '-'"
            )
        try:
            text = encoded.strip().rstrip("=").replace("-", "+").replace("_", "/")
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidKeyring(f"data encryption key {kid!r} is not base64: {exc}") from None
        if len(key) != KEY_BYTES:
            raise InvalidKeyring(
                f"data encryption key {kid!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES} "
                f"({_HOW_TO_MAKE_A_KEY})"
            )
        if kid in keys:
            raise InvalidKeyring(f"data encryption key id {kid!r} appears twice")
        keys[kid] = key
    if not keys:
        raise InvalidKeyring(f"no data encryption keys configured ({_HOW_TO_MAKE_A_KEY})")
    return keys


def envelope_key_id(ciphertext: str) -> str | None:
    """The key id a ciphertext names, or None if it is not one of our envelopes."""
    parts = ciphertext.split(".")
    if len(parts) != 4 or parts[0] != ENVELOPE_VERSION:
        return None
    return parts[1]


class FieldCipher:
    """Encrypts under the active key; decrypts under any configured key.

    Thread-safe and cheap to share: it holds only the key material.
    """

    def __init__(self, keys: Mapping[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise InvalidKeyring(
                f"the active data encryption key {active_kid!r} is not among the configured "
                f"keys ({known}); add it to CREDAGG_DATA_ENCRYPTION_KEYS"
            )
        for kid, key in keys.items():
            if len(key) != KEY_BYTES or not _KID.match(kid):
                raise InvalidKeyring(f"data encryption key {kid!r} is not a valid AES-256 key")
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid

    @classmethod
    def from_spec(cls, spec: str, active_kid: str) -> FieldCipher:
        return cls(parse_keyring(spec), active_kid)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._aeads)

    def encrypt_bytes(self, plaintext: bytes, context: FieldContext) -> str:
        kid = self.active_kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[kid].encrypt(nonce, plaintext, context.aad(kid))
        return f"{ENVELOPE_VERSION}.{kid}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def encrypt(self, plaintext: str, context: FieldContext) -> str:
        return self.encrypt_bytes(plaintext.encode("utf-8"), context)

    def decrypt_bytes(self, ciphertext: str, context: FieldContext) -> bytes:
        parts = ciphertext.split(".")
        if len(parts) != 4 or parts[0] != ENVELOPE_VERSION:
            raise DecryptionFailed(
                f"{context.describe()} is not a {ENVELOPE_VERSION} field ciphertext"
            )
        _, kid, nonce_text, sealed_text = parts
        aead = self._aeads.get(kid)
        if aead is None:
            known = ", ".join(sorted(self._aeads))
            raise UnknownKeyId(
                f"{context.describe()} is encrypted under key {kid!r}, which is not configured "
                f"(configured: {known}); add that key back to CREDAGG_DATA_ENCRYPTION_KEYS until "
                "`credagg keys rotate-data-key` has re-encrypted every row"
            )
        try:
            nonce = _b64decode(nonce_text)
            sealed = _b64decode(sealed_text)
        except (binascii.Error, ValueError):
            raise DecryptionFailed(f"{context.describe()}: the ciphertext is not base64") from None
        if len(nonce) != NONCE_BYTES:
            raise DecryptionFailed(f"{context.describe()}: the nonce is not {NONCE_BYTES} bytes")
        try:
            return aead.decrypt(nonce, sealed, context.aad(kid))
        except InvalidTag:
            raise DecryptionFailed(
                f"{context.describe()} failed authentication: it was altered or belongs to "
                "another row or column"
            ) from None

    def decrypt(self, ciphertext: str, context: FieldContext) -> str:
        return self.decrypt_bytes(ciphertext, context).decode("utf-8")

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when `ciphertext` is not under the active key (rotation re-encrypts it)."""
        return envelope_key_id(ciphertext) != self.active_kid

    def reencrypt(self, ciphertext: str, context: FieldContext) -> str:
        """The same plaintext under the active key (unchanged if it already is)."""
        if not self.needs_rotation(ciphertext):
            return ciphertext
        return self.encrypt_bytes(self.decrypt_bytes(ciphertext, context), context)


class RowSealer:
    """Encrypt/decrypt the encrypted columns of one row, with that row's associated data.

    Subclasses say which (table, column) pairs they may touch and which row id binds them
    (`_context`); sealing a column they do not own is a programming error, refused at once.
    """

    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def _context(self, table: str, column: str) -> FieldContext:
        raise NotImplementedError

    def seal(self, value: str | None, table: str, column: str) -> str | None:
        if value is None:
            return None
        return self.cipher.encrypt(value, self._context(table, column))

    def open(self, stored: str | None, table: str, column: str) -> str | None:
        if stored is None:
            return None
        return self.cipher.decrypt(stored, self._context(table, column))
