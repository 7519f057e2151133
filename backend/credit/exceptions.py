"""Errors of the credit domain (one family under the root error, see backend/exceptions.py)."""

from __future__ import annotations

from backend.exceptions import CredaggError, Forbidden, NotFound, Unprocessable


class CreditError(CredaggError):
    """Root of the credit domain's errors."""


class Sanctioned(CreditError, Forbidden):
    """The wallet is on the sanctions deny-list: nothing is sent to any provider."""

    code = "sanctioned"


class CreditRequestNotFound(CreditError, NotFound):
    """No credit request with this id belongs to the caller."""

    code = "credit_request_not_found"


class UnknownAsset(CreditError, Unprocessable):
    """The asset (or the asset on the preferred chain) is not in the asset registry."""

    code = "unknown_asset"


class InvalidCreditRequest(CreditError, Unprocessable):
    """The request is well-formed JSON but its terms cannot be priced."""

    code = "invalid_credit_request"
