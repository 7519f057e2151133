"""Errors of the credit domain (one family under the root error, see backend/exceptions.py)."""

from __future__ import annotations

from backend.exceptions import (
    Conflict,
    CredaggError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)


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


class NotADefiProvider(CreditError, Conflict):
    """Only a `defi` provider stands for a lending pool; a traditional lender quotes through its
    webhook or rate card."""

    code = "not_a_defi_provider"


class UnknownChain(CreditError, Unprocessable):
    """The chain id is not one credagg is configured for."""

    code = "unknown_chain"


class InvalidPool(CreditError, Unprocessable):
    """The address is not a lending pool credagg can price for this asset on this chain."""

    code = "invalid_pool"


class DefiPoolNotSet(CreditError, NotFound):
    """The provider has not declared its lending pool yet."""

    code = "defi_pool_not_set"


class ChainUnreachable(CreditError, ServiceUnavailable):
    """The chain's RPC did not answer; nothing was changed, the same request may succeed later."""

    code = "chain_unreachable"
