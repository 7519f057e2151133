"""The payload schema of every receipt kind, versioned: what an auditor can rely on finding.

A receipt is only as useful as its payload is unambiguous, years later, to someone who was not
there. So every payload here is a closed set of named fields (an unknown field is refused, not
silently carried), and every value has one spelling:

- **amounts** are decimal strings of non-negative integers in the asset's smallest unit (wei,
  USDC's 10**-6...), never floats and never JSON numbers: JCS (RFC 8785) cannot carry integers
  beyond 2**53 exactly, and a uint256 balance routinely is. The asset's `decimals` travel with it.
- **addresses** and hashes are `0x` + lowercase hex (one spelling; EIP-55 casing is display only).
- **chain ids** are JSON integers (every real chain id is far below 2**53).
- **rates** are decimal strings of a fraction per year ("0.0525" is 5.25 % a year) with the day
  count convention they assume (`day_count`), so two auditors compute the same interest.
- **times** are RFC 3339 UTC strings with a `Z` (`2025-11-23T12:00:00Z`, fraction optional).
- **ids** (credit requests, quotes, loans on-chain) are strings; on-chain loan ids are decimal
  strings because they are uint256.

Validation is strict (no coercion: "5" is not 5), and cross-field laws are checked too (a
repayment's parts add up to its amount, a billing statement's lines to its total, a quote set's
ranking names each quote once). `validate_payload` raises `PayloadError` naming the field.

Pure module: imports pydantic and the standard library only, so a verifier can reuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "KIND_SCHEMAS",
    "LATEST_SCHEMA_VERSION",
    "AcceptanceV1",
    "AssetRef",
    "AuditCheckpointV1",
    "BillingStatementV1",
    "LiquidationV1",
    "PayloadError",
    "QuoteSetV1",
    "QuoteV1",
    "RepaymentV1",
    "schema_for",
    "validate_payload",
]

MAX_UINT256_DIGITS = 78
MAX_SAFE_INTEGER = 2**53 - 1

_AMOUNT = re.compile(r"^(0|[1-9][0-9]*)$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_HASH32 = re.compile(r"^0x[0-9a-f]{64}$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9.\-]{1,16}$")
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$")


class PayloadError(ValueError):
    """A payload does not match its kind's schema; `field` is the dotted path to the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


# ---------------------------------------------------------------------------- value checkers


def _amount(value: str) -> str:
    if not _AMOUNT.match(value) or len(value) > MAX_UINT256_DIGITS:
        raise ValueError(
            "must be a decimal string of a non-negative integer in the asset's smallest unit "
            f"(uint256, no sign, no leading zeros, no decimal point), got {value!r}"
        )
    return value


def _decimal(value: str) -> str:
    if not _DECIMAL.match(value) or len(value) > 100:
        raise ValueError(
            f"must be a non-negative decimal string such as '0.0525' (no exponent), got {value!r}"
        )
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"must be 0x + 40 lowercase hex digits (lowercase it), got {value!r}")
    return value


def _hash32(value: str) -> str:
    if not _HASH32.match(value):
        raise ValueError(f"must be 0x + 64 lowercase hex digits, got {value!r}")
    return value


def _ident(value: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(
            f"must be 1-128 characters of letters, digits, '_', '.', ':' or '-', got {value!r}"
        )
    return value


def _symbol(value: str) -> str:
    if not _SYMBOL.match(value):
        raise ValueError(f"must be a 1-16 character ticker symbol, got {value!r}")
    return value


def _time(value: str) -> str:
    if not _TIME.match(value):
        raise ValueError(f"must be an RFC 3339 UTC time like '2025-11-23T12:00:00Z', got {value!r}")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"is not a real date and time: {value!r}") from error
    return value


Amount = Annotated[str, AfterValidator(_amount)]
"""Decimal string of a non-negative integer in the asset's smallest unit (fits a uint256)."""
DecimalString = Annotated[str, AfterValidator(_decimal)]
"""Non-negative decimal string such as "0.0525" (no exponent, no sign)."""
Address = Annotated[str, AfterValidator(_address)]
Hash32 = Annotated[str, AfterValidator(_hash32)]
Ident = Annotated[str, AfterValidator(_ident)]
Symbol = Annotated[str, AfterValidator(_symbol)]
Timestamp = Annotated[str, AfterValidator(_time)]
ReceiptId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")]
"""A receipt's id: a lowercase UUID string, as receipts carry it in `corrects`."""
ChainId = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]
BlockNumber = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
LogIndex = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]
DayCount = Literal["act/365", "act/360", "30/360"]
"""The day count convention a yearly rate assumes (interest = principal x rate x days / basis)."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AssetRef(_Payload):
    """A token on a chain: enough to turn a smallest-unit amount into a human one."""

    chain_id: ChainId
    address: Address
    symbol: Symbol
    decimals: int = Field(ge=0, le=77)


class OnChainRef(_Payload):
    """The event that caused a receipt: chain, contract, tx, block and log index (a unique key)."""

    chain_id: ChainId
    contract: Address
    tx_hash: Hash32
    block_number: BlockNumber
    block_hash: Hash32
    log_index: LogIndex


# ------------------------------------------------------------------------------------- kinds


class QuoteV1(_Payload):
    """One normalised quote as the borrower saw it, with every figure it was ranked on.

    `nominal_apr` and `effective_annual_rate` are yearly fractions under `day_count`; the
    effective rate comes from the IRR of the cash flows and so already includes fees and gas.
    `total_cost` is everything the borrower pays beyond the principal (interest + fees + gas),
    in the debt asset's smallest unit. `ltv` and `liquidation_price` are absent when unsecured.
    """

    quote_id: Ident
    provider: Ident
    source: Literal["traditional", "defi"]
    debt_asset: AssetRef
    principal: Amount
    term_seconds: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    nominal_apr: DecimalString
    effective_annual_rate: DecimalString
    day_count: DayCount
    fees: Amount
    gas_estimate: Amount  # in the chain's native unit (wei)
    total_cost: Amount
    collateral_asset: AssetRef | None = None
    collateral_amount: Amount | None = None
    ltv: DecimalString | None = None  # fraction, e.g. "0.6"
    liquidation_price: DecimalString | None = None  # debt asset per whole collateral unit
    expires_at: Timestamp

    @model_validator(mode="after")
    def _secured_fields_together(self) -> QuoteV1:
        given = [self.collateral_asset is not None, self.collateral_amount is not None]
        if any(given) and not all(given):
            raise ValueError("collateral_asset and collateral_amount come together or not at all")
        return self


class QuoteSetV1(_Payload):
    """Every quote a borrower was offered for one credit request, and the order shown.

    `ranking` lists each quote id once, best first, so an auditor can check that what was
    shown first was what the ranking rule put first. `ranking_rule` names that rule.
    """

    credit_request_id: Ident
    borrower: Address
    requested_asset: AssetRef
    requested_amount: Amount
    quotes: list[QuoteV1] = Field(min_length=1, max_length=200)
    ranking: list[Ident]
    ranking_rule: Ident
    quoted_at: Timestamp

    @model_validator(mode="after")
    def _ranking_is_a_permutation(self) -> QuoteSetV1:
        ids = [quote.quote_id for quote in self.quotes]
        if len(set(ids)) != len(ids):
            raise ValueError("quotes: quote ids must be unique")
        if sorted(self.ranking) != sorted(ids):
            raise ValueError("ranking must list every quote id exactly once")
        return self


class AcceptanceV1(_Payload):
    """The borrower's signed acceptance of one quote, and the on-chain loan it opened.

    `quote_set_receipt_id` ties it to the quote set receipt the quote came from;
    `acceptance_digest` is the EIP-712 digest the borrower signed (the signature itself is on
    chain, in the `openLoan` transaction at `opened_by`).
    """

    credit_request_id: Ident
    quote_id: Ident
    quote_set_receipt_id: ReceiptId
    borrower: Address
    loan_id: Amount  # uint256 on-chain
    debt_asset: AssetRef
    principal: Amount
    nominal_apr: DecimalString
    day_count: DayCount
    term_seconds: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    acceptance_digest: Hash32
    accepted_at: Timestamp
    opened_by: OnChainRef


class RepaymentV1(_Payload):
    """A repayment of a loan, split into what it paid off; parts must add up to `amount`."""

    loan_id: Amount
    payer: Address
    debt_asset: AssetRef
    amount: Amount
    principal_paid: Amount
    interest_paid: Amount
    fees_paid: Amount
    outstanding_after: Amount
    event: OnChainRef

    @model_validator(mode="after")
    def _parts_add_up(self) -> RepaymentV1:
        parts = int(self.principal_paid) + int(self.interest_paid) + int(self.fees_paid)
        if parts != int(self.amount):
            raise ValueError(
                f"principal_paid + interest_paid + fees_paid = {parts}, not amount {self.amount}"
            )
        return self


class LiquidationV1(_Payload):
    """A liquidation: what collateral was seized for how much debt, at which price and health.

    `price` is the oracle price used, in the debt asset per whole collateral unit;
    `health_factor_before` is the position's health (below "1" means liquidatable).
    """

    loan_id: Amount
    liquidator: Address
    collateral_asset: AssetRef
    collateral_seized: Amount
    debt_asset: AssetRef
    debt_repaid: Amount
    price: DecimalString
    price_feed: Address
    health_factor_before: DecimalString
    event: OnChainRef


class BillingLineV1(_Payload):
    """One line of a statement: `quantity` x `unit_price` = `amount` (checked)."""

    code: Ident
    description: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    unit_price: Amount
    amount: Amount

    @model_validator(mode="after")
    def _line_adds_up(self) -> BillingLineV1:
        if self.quantity * int(self.unit_price) != int(self.amount):
            raise ValueError(f"quantity x unit_price is not amount {self.amount}")
        return self


class BillingStatementV1(_Payload):
    """A provider's statement for a period [period_start, period_end): lines sum to `total`."""

    statement_id: Ident
    provider: Ident
    period_start: Timestamp
    period_end: Timestamp
    currency_asset: AssetRef
    lines: list[BillingLineV1] = Field(max_length=1000)
    total: Amount

    @model_validator(mode="after")
    def _totals(self) -> BillingStatementV1:
        if _parse_time(self.period_end) <= _parse_time(self.period_start):
            raise ValueError("period_end must be after period_start")
        total = sum(int(line.amount) for line in self.lines)
        if total != int(self.total):
            raise ValueError(f"lines add up to {total}, not total {self.total}")
        return self


class AuditCheckpointV1(_Payload):
    """The head of the hash-chained audit log at entry `seq`, put into the receipt log."""

    seq: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    head: Hash32


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------- registry

KIND_SCHEMAS: dict[tuple[str, int], type[_Payload]] = {
    ("quote_set", 1): QuoteSetV1,
    ("acceptance", 1): AcceptanceV1,
    ("repayment", 1): RepaymentV1,
    ("liquidation", 1): LiquidationV1,
    ("billing_statement", 1): BillingStatementV1,
    ("audit_checkpoint", 1): AuditCheckpointV1,
}
LATEST_SCHEMA_VERSION: dict[str, int] = {}
for _kind, _version in KIND_SCHEMAS:
    LATEST_SCHEMA_VERSION[_kind] = max(_version, LATEST_SCHEMA_VERSION.get(_kind, 0))


def schema_for(kind: str, schema_version: int) -> type[BaseModel]:
    """The payload model of `kind` at `schema_version`; PayloadError if there is none."""
    try:
        return KIND_SCHEMAS[(kind, schema_version)]
    except KeyError:
        known = sorted(version for k, version in KIND_SCHEMAS if k == kind)
        if not known:
            raise PayloadError("kind", f"unknown receipt kind {kind!r}") from None
        raise PayloadError(
            "schema_version",
            f"{kind} has no schema version {schema_version!r}; known: {known}",
        ) from None


def validate_payload(kind: str, schema_version: int, payload: Mapping[str, Any]) -> None:
    """Check `payload` against its kind's schema; raise PayloadError naming the first bad field.

    The payload is stored and committed to exactly as given (validation never rewrites it), so
    what the domain passed is what the auditor reads.
    """
    model = schema_for(kind, schema_version)
    try:
        model.model_validate(dict(payload))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = "payload" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        )
        message = first["msg"].removeprefix("Value error, ")
        raise PayloadError(where, message) from error
