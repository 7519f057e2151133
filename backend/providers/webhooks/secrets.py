"""Sealing webhook signing secrets of any subscriber (a provider or a wallet).

A signing secret is a credential we must be able to *use* (we compute HMACs with it), so it is
encrypted, not hashed: AES-256-GCM by `backend.kit.crypto`, bound to its table, column and row
(the subscriber's id) so a ciphertext copied to another subscriber's row fails to decrypt. The
associated data is the same `FieldContext` that `backend.providers.pii.ProviderSealer` uses, so
provider secrets written by either read back through both.
"""

from __future__ import annotations

from backend.kit.crypto import FieldCipher, FieldContext, RowSealer

SECRET_COLUMNS = ("secret", "previous_secret")


class EndpointSealer(RowSealer):
    """Encrypt/decrypt the secrets of one subscriber's endpoint row in `table`."""

    def __init__(self, cipher: FieldCipher, table: str, row_id: str | int) -> None:
        super().__init__(cipher)
        self.table = table
        self.row_id = row_id

    def _context(self, table: str, column: str) -> FieldContext:
        if table != self.table or column not in SECRET_COLUMNS:
            raise ValueError(f"{table}.{column} is not a secret column of {self.table}")
        return FieldContext(table=table, column=column, row_id=self.row_id)
