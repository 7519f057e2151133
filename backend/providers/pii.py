"""Sealing personal data and webhook secrets before they reach the database.

Contact e-mail and phone are personal data; a webhook signing secret is a credential we must be
able to *use* (we compute HMACs with it), so unlike API keys it cannot be kept as a hash. Both
are encrypted with AES-256-GCM by `backend.kit.crypto` (key id in the envelope, rotation by
re-encryption), bound to their table, column and row (the provider id, which is the primary key
of every table listed here) so a ciphertext copied to another lender's row fails to decrypt.
"""

from __future__ import annotations

from backend.config import Settings
from backend.kit.crypto import FieldCipher, FieldContext, RowSealer

#: (table, column) of every encrypted column of this domain; each table's row id is
#: `provider_id`. For the data-key rotation job.
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("provider_profiles", "contact_email"),
    ("provider_profiles", "contact_phone"),
    ("provider_webhook_endpoints", "secret"),
    ("provider_webhook_endpoints", "previous_secret"),
)


def field_cipher(settings: Settings) -> FieldCipher:
    """The cipher of the configured data-encryption keyring."""
    return FieldCipher.from_spec(
        settings.data_encryption_keys.get_secret_value(), settings.data_encryption_active_key
    )


class ProviderSealer(RowSealer):
    """Encrypt/decrypt one provider's fields with the right associated data."""

    def __init__(self, cipher: FieldCipher, provider_id: int) -> None:
        super().__init__(cipher)
        self.provider_id = provider_id

    def _context(self, table: str, column: str) -> FieldContext:
        if (table, column) not in ENCRYPTED_COLUMNS:
            raise ValueError(f"{table}.{column} is not an encrypted column of providers")
        return FieldContext(table=table, column=column, row_id=self.provider_id)
