"""The receipts domain's errors: one family under CredaggError, each with its HTTP status."""

from __future__ import annotations

from backend.exceptions import BadRequest, Conflict, CredaggError, NotFound, Unprocessable


class ReceiptError(CredaggError):
    """Root of the receipts domain's errors."""

    code = "receipt_error"


class InvalidReceipt(ReceiptError, Unprocessable):
    """The receipt cannot be issued as given (bad tenant, subject, version or payload)."""

    code = "invalid_receipt"


class UnknownCorrectedReceipt(ReceiptError, Unprocessable):
    """A correction names a receipt that does not exist."""

    code = "unknown_corrected_receipt"


class ReceiptNotFound(ReceiptError, NotFound):
    """No receipt has this id."""

    code = "receipt_not_found"


class ReceiptNotInTree(ReceiptError, Conflict):
    """The receipt was appended after the requested tree size."""

    code = "receipt_not_in_tree"


class InvalidTreeSize(ReceiptError, BadRequest):
    """The requested tree size(s) do not exist in the log (yet)."""

    code = "invalid_tree_size"
