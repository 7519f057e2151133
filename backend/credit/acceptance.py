"""Accepting a quote: re-check it, open the loan on-chain, record it, receipt it, tell the lender.

Three steps, because the chain is slow and the database must not wait on it:

1. `prepare_acceptance` (reads only): the quote is the caller's, ranked, not expired, not yet
   accepted; the signature recovers to the borrower (EOA) or its EIP-1271 wallet accepts it,
   over exactly the typed data we served; a DeFi pool's rate has not moved beyond tolerance.
2. `open_loan` (no database session): the operator sends `CreditAggregator.openLoan` through
   the adapter layer (persisted, nonce-managed) and waits for the receipt. If the quote was
   already opened on-chain (an earlier attempt broadcast and then lost its answer), the loan is
   found again by `loanIdByQuote`: never a double open.
3. `record_acceptance` (flushes, never commits): the loan row, the `acceptance` receipt and the
   `loan.opened` webhook, in one transaction: all of it or none of it.

The router commits between 1 and 2 (nothing was written) so that, on SQLite, the request's
transaction does not hold the write lock the adapter's nonce store needs while we wait.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.chains import identities
from backend.config import Settings
from backend.credit.chain import ChainReader
from backend.credit.exceptions import CreditError
from backend.credit.loan_models import CreditLoan, LoanStatus
from backend.credit.loans import AcceptedView, AcceptIn, WalletLoanRepository, accepted_view
from backend.credit.models import CreditQuote, CreditRequest
from backend.credit.pricing.defi_rates import ray_to_decimal
from backend.exceptions import Conflict, NotFound, ServiceUnavailable, Unprocessable
from backend.kit.columns import utcnow
from backend.providers.service import enqueue_event
from backend.receipts.models import ReceiptKind
from backend.receipts.service import (
    ReceiptDraft,
    format_issued_at,
    issue_receipt,
    signer_from_settings,
)
from chain_adapters.acceptance import TERM_FIELDS
from chain_adapters.base import ContractCall, Log, RawTx
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.exceptions import ChainError, ContractRevert

RAY = 10**27
#: isValidSignature(bytes32,bytes)'s selector, which is also what a wallet answers for "valid".
EIP1271_MAGIC = bytes.fromhex("1626ba7e")
RETRY_AFTER_SECONDS = 5
LOAN_OPENED_EVENT = "loan.opened"

# -- errors -----------------------------------------------------------------------------------


class QuoteNotFound(CreditError, NotFound):
    """No quote with this id belongs to the caller."""

    code = "quote_not_found"


class LoanNotFound(CreditError, NotFound):
    """No loan with this id belongs to the caller."""

    code = "loan_not_found"


class QuoteExpired(CreditError, Conflict):
    """The quote (or the signed deadline) has passed."""

    code = "quote_expired"


class QuoteAlreadyAccepted(CreditError, Conflict):
    """The quote, or another quote of the same credit request, already opened a loan."""

    code = "quote_already_accepted"


class QuoteNotAcceptable(CreditError, Unprocessable):
    """The quote cannot be accepted as asked (excluded, no contract on its chain, bad deadline)."""

    code = "quote_not_acceptable"


class SignatureMismatch(CreditError, Unprocessable):
    """The signature is not the borrower's over exactly the typed data we served."""

    code = "signature_mismatch"


class RateMoved(CreditError, Conflict):
    """A DeFi pool's rate moved beyond the borrower's tolerance since the quote."""

    code = "rate_moved"


class LoanRefused(CreditError, Conflict):
    """CreditAggregator refused to open the loan (the decoded custom error is named)."""

    code = "loan_refused"


class ChainUnavailable(CreditError, ServiceUnavailable):
    """The quote's chain did not answer; nothing was recorded and the quote stays acceptable."""

    code = "chain_unavailable"


# -- ABI fragments CreditAggregator is called with (checked against the compiled ABI) ----------

_TERM_TYPES = {
    "quoteHash": "bytes32",
    "provider": "address",
    "asset": "address",
    "principal": "uint256",
    "rateBps": "uint32",
    "termSeconds": "uint64",
    "collateralAsset": "address",
    "collateralAmount": "uint256",
    "nonce": "uint256",
}


def _error(name: str, *inputs: tuple[str, str]) -> dict[str, Any]:
    return {"type": "error", "name": name, "inputs": [{"name": n, "type": t} for n, t in inputs]}


AGGREGATOR_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "openLoan",
        "stateMutability": "nonpayable",
        "inputs": [
            {
                "name": "terms",
                "type": "tuple",
                "internalType": "struct ICreditAggregator.LoanTerms",
                "components": [{"name": n, "type": _TERM_TYPES[n]} for n in TERM_FIELDS],
            },
            {"name": "borrower", "type": "address"},
            {"name": "deadline", "type": "uint256"},
            {"name": "signature", "type": "bytes"},
        ],
        "outputs": [{"name": "loanId", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "loanIdByQuote",
        "stateMutability": "view",
        "inputs": [{"name": "quoteHash", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    _error("AcceptanceExpired", ("deadline", "uint256")),
    _error("InvalidSignature", ("borrower", "address")),
    _error("ZeroAddress"),
    _error("ZeroAmount"),
    _error("ZeroQuoteHash"),
    _error("QuoteAlreadyUsed", ("quoteHash", "bytes32"), ("loanId", "uint256")),
    _error("InvalidAccountNonce", ("account", "address"), ("currentNonce", "uint256")),
    _error("EnforcedPause"),
    _error("AccessControlUnauthorizedAccount", ("account", "address"), ("neededRole", "bytes32")),
]
LOAN_OPENED_SIGNATURE = (
    "LoanOpened(uint256,address,address,bytes32,address,uint256,uint32,uint64,address,uint256,"
    "uint256)"
)

LOAN_OPENED_TOPIC = "0x" + keccak(text=LOAN_OPENED_SIGNATURE).hex()


# -- step 1: re-check -------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Everything steps 2 and 3 need, so they never reload the quote."""

    wallet: str
    quote_id: str
    request_id: str
    quote_set_receipt_id: str | None
    provider_id: int
    chain_id: int
    aggregator: str
    document: dict[str, Any]
    message: dict[str, Any]  # the served typed data's message, with the deadline signed
    digest: bytes
    signature: bytes


def prepare_acceptance(
    session: Session,
    wallet: str,
    quote_id: str,
    body: AcceptIn,
    *,
    settings: Settings,
    reader: ChainReader,
    now: datetime | None = None,
) -> Prepared:
    """Every check that can refuse the acceptance before anything is sent; reads only."""
    now = now or utcnow()
    wallet = wallet.lower()
    repo = WalletLoanRepository(session, wallet)
    found = repo.quote(quote_id)
    if found is None:
        raise QuoteNotFound(
            f"No quote {quote_id!r} belongs to this wallet.",
            hint="Use a quote id from POST /v1/credit-requests, signed in as the same wallet.",
        )
    quote, request = found
    _check_not_accepted(repo, request)
    if quote.rank is None:
        raise QuoteNotAcceptable(
            f"Quote {quote.id} was excluded from the ranking: {quote.excluded_reason}.",
            hint="Accept one of the ranked quotes, or ask again with other constraints.",
        )
    served = quote.typed_data
    deadline = _deadline(quote, body.deadline, now)
    typed = copy.deepcopy(served)
    typed["message"]["deadline"] = deadline
    aggregator = str(served["domain"]["verifyingContract"]).lower()
    _check_domain(quote, aggregator, reader)
    if body.typed_data is not None:
        _compare_signed(typed, body.typed_data)
    signable = encode_typed_data(full_message=typed)
    digest = bytes(_hash_eip191_message(signable))
    signature = bytes.fromhex(body.signature[2:])
    _check_signature(reader, quote.chain_id, wallet, digest, signature)
    if quote.source == "defi":
        _check_rate(quote, reader, body.max_rate_drift_bps, settings)
    return Prepared(
        wallet=wallet,
        quote_id=quote.id,
        request_id=request.id,
        quote_set_receipt_id=request.quote_set_receipt_id,
        provider_id=quote.provider_id,
        chain_id=quote.chain_id,
        aggregator=aggregator,
        document=dict(quote.document),
        message=dict(typed["message"]),
        digest=digest,
        signature=signature,
    )


def _check_not_accepted(repo: WalletLoanRepository, request: CreditRequest) -> None:
    loan = repo.loan_of_request(request.id)
    if loan is not None:
        raise QuoteAlreadyAccepted(
            f"Credit request {request.id} already opened loan {loan.loan_id} on chain "
            f"{loan.chain_id} (quote {loan.quote_id}, tx {loan.tx_hash}).",
            hint=f"See GET /v1/loans/{loan.id}; for another loan, make a new credit request.",
        )


def _deadline(quote: CreditQuote, asked: int | None, now: datetime) -> int:
    served = int(quote.typed_data["message"]["deadline"])
    if now >= quote.expires_at:
        raise QuoteExpired(
            f"Quote {quote.id} expired at {format_issued_at(quote.expires_at)}.",
            hint="Make a new credit request for fresh quotes.",
        )
    if asked is None:
        return served
    if asked > served:
        raise QuoteNotAcceptable(
            f"deadline {asked} is later than the quote's own deadline {served}.",
            hint="Sign the served deadline, or an earlier one.",
        )
    if asked <= int(now.timestamp()):
        raise QuoteExpired(
            f"The signed deadline {asked} has already passed.",
            hint="Sign again with the served deadline (or a later one, up to it).",
        )
    return asked


def _check_domain(quote: CreditQuote, aggregator: str, reader: ChainReader) -> None:
    if int(aggregator, 16) == 0:
        raise QuoteNotAcceptable(
            f"CreditAggregator was not deployed on chain {quote.chain_id} when quote "
            f"{quote.id} was made, so it cannot open a loan.",
            hint="Make a new credit request once the chain's contracts are deployed.",
        )
    try:
        current = reader.aggregator(quote.chain_id)
    except (LookupError, ChainError) as exc:
        raise _unavailable(quote.chain_id, exc) from exc
    if current is None or current.lower() != aggregator:
        raise QuoteNotAcceptable(
            f"Quote {quote.id} names CreditAggregator {aggregator} on chain {quote.chain_id}, "
            f"which is no longer the deployed one ({current}).",
            hint="Make a new credit request: its quotes name the current contract.",
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    try:
        return int(a) == int(b)
    except (TypeError, ValueError):
        return bool(a == b)


def _compare_signed(expected: dict[str, Any], signed: dict[str, Any]) -> None:
    """Name every field where what the wallet signed differs from what we served."""
    problems: list[str] = []
    labels = {"chainId": "wrong chain", "verifyingContract": "wrong contract"}
    for part in ("domain", "message"):
        ours = expected.get(part, {})
        theirs = signed.get(part)
        if not isinstance(theirs, dict):
            problems.append(f"typed_data.{part} is missing")
            continue
        for key, value in ours.items():
            if key not in theirs or not _same(theirs[key], value):
                what = f" ({labels[key]})" if key in labels else ""
                problems.append(
                    f"{part}.{key}: you signed {theirs.get(key)!r}, the quote says {value!r}{what}"
                )
    if signed.get("primaryType") != expected["primaryType"]:
        problems.append(f"primaryType: you signed {signed.get('primaryType')!r}")
    if problems:
        raise SignatureMismatch(
            "The typed data you signed is not the quote's: " + "; ".join(problems) + ".",
            hint="Sign the quote's typed_data exactly as served (eth_signTypedData_v4).",
        )


def _check_signature(
    reader: ChainReader, chain_id: int, wallet: str, digest: bytes, signature: bytes
) -> None:
    try:
        adapter = reader.adapter(chain_id)
        code = adapter.get_code(wallet)
    except (LookupError, ChainError) as exc:
        raise _unavailable(chain_id, exc) from exc
    if code:
        _check_eip1271(adapter, chain_id, wallet, digest, signature)
        return
    try:
        signer = Account._recover_hash(digest, signature=signature)
    except (BadSignature, ValueError, TypeError) as exc:
        raise SignatureMismatch(
            f"The signature is not a valid ECDSA signature: {exc}.",
            hint="Send the 65-byte signature eth_signTypedData_v4 returned, as 0x hex.",
        ) from exc
    if signer.lower() != wallet:
        raise SignatureMismatch(
            f"The signature recovers to {signer.lower()}, not to your wallet {wallet}: it was "
            "made over other typed data than this quote served (a changed amount, rate, chain "
            "id, contract or deadline) or by another key.",
            hint="Sign the quote's typed_data exactly as served, with the signed-in wallet; "
            "send the typed_data you signed too, and the mismatching field is named.",
        )


def _check_eip1271(
    adapter: EvmAdapter, chain_id: int, wallet: str, digest: bytes, signature: bytes
) -> None:
    # Raw bytes, not a decoded call: a wallet answering nothing or garbage is a "no", not a crash.
    data = EIP1271_MAGIC + abi_encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = bytes(adapter.call(RawTx(to=to_checksum_address(wallet), data=data)))
        magic = answer[:4]
    except ContractRevert:
        magic = b""
    except ChainError as exc:
        raise _unavailable(chain_id, exc) from exc
    if magic != EIP1271_MAGIC:
        raise SignatureMismatch(
            f"Your contract wallet {wallet} does not accept the signature over this quote's "
            f"typed data (EIP-1271 isValidSignature answered 0x{magic.hex()}).",
            hint="Sign the quote's typed_data exactly as served with a key your wallet accepts.",
        )


def _check_rate(
    quote: CreditQuote, reader: ChainReader, tolerance: int | None, settings: Settings
) -> None:
    quoted = int(quote.figures["rate_ray"])
    pool = str(quote.typed_data["message"]["provider"])
    principal = int(quote.typed_data["message"]["principal"])
    try:
        now_ray = reader.pool(quote.chain_id, to_checksum_address(pool), principal).rate_after
    except ChainError as exc:
        raise _unavailable(quote.chain_id, exc) from exc
    bps = tolerance if tolerance is not None else settings.credit_max_rate_drift_bps
    old = ray_to_decimal(quoted)
    if now_ray < 0:
        raise RateMoved(
            f"Pool {pool} can no longer lend {principal} units (quoted at APR {old}).",
            hint="Make a new credit request for fresh quotes.",
        )
    if abs(now_ray - quoted) * 10_000 > bps * RAY:
        new = ray_to_decimal(now_ray)
        moved = (Decimal(abs(now_ray - quoted)) * 10_000 / RAY).quantize(Decimal("0.01"))
        raise RateMoved(
            f"Pool {pool}'s rate moved from APR {old} (quoted) to {new} now: {moved} bps, "
            f"beyond your tolerance of {bps} bps.",
            hint="Make a new credit request for a fresh quote, or accept with a larger "
            "max_rate_drift_bps.",
        )


def _unavailable(chain_id: int, exc: Exception) -> ChainUnavailable:
    return ChainUnavailable(
        f"Chain {chain_id} did not answer ({exc}); nothing was recorded and the quote stays "
        "acceptable until it expires.",
        hint=f"Retry in {RETRY_AFTER_SECONDS} s with the same request (and Idempotency-Key).",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# -- step 2: open on-chain --------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The LoanOpened log of the loan: its id and exactly where it was emitted."""

    loan_id: int
    borrower: str
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int


def open_loan(
    prepared: Prepared, *, settings: Settings, reader: ChainReader, engine: Engine
) -> Opened:
    """Open the loan with the operator key, or find the loan an earlier attempt opened."""
    try:
        if reader.chains is None:
            raise ChainError("no chains file is configured (CREDAGG_CHAINS_FILE)")
        chain = reader.chains.by_chain_id(prepared.chain_id)
        operator = identities(settings, chain).operator
    except (LookupError, ChainError) as exc:
        raise _unavailable(prepared.chain_id, exc) from exc
    adapter = EvmAdapter(chain, engine=engine, signer=operator)
    try:
        found = _opened_before(adapter, prepared)
        if found is not None:
            return found
        receipt = adapter.send(_open_call(prepared), wait="mined", label="credit.open_loan")
    except ContractRevert as exc:
        if exc.error_name == "QuoteAlreadyUsed":  # a concurrent or earlier attempt won
            again = _opened_before(adapter, prepared)
            if again is not None:
                return again
        raise _refused(prepared, exc) from exc
    except ChainError as exc:
        raise _unavailable(prepared.chain_id, exc) from exc
    finally:
        adapter.close()
    for log in receipt.logs:
        if _is_loan_opened(log, prepared.aggregator):
            return _opened(log)
    raise LoanRefused(
        f"openLoan was mined in {receipt.transaction_hash} without a LoanOpened event.",
        hint="Report this with the transaction hash; the quote was not recorded as accepted.",
    )


def _open_call(prepared: Prepared) -> ContractCall:
    message = prepared.message

    def term(name: str) -> Any:
        kind, value = _TERM_TYPES[name], message[name]
        if kind == "address":
            return to_checksum_address(value)
        return bytes.fromhex(str(value)[2:]) if kind == "bytes32" else int(value)

    terms = tuple(term(name) for name in TERM_FIELDS)
    return ContractCall(
        to_checksum_address(prepared.aggregator),
        AGGREGATOR_ABI,
        "openLoan",
        (
            terms,
            to_checksum_address(message["borrower"]),
            int(message["deadline"]),
            prepared.signature,
        ),
    )


def _opened_before(adapter: EvmAdapter, prepared: Prepared) -> Opened | None:
    quote_hash = bytes.fromhex(str(prepared.message["quoteHash"])[2:])
    aggregator = to_checksum_address(prepared.aggregator)
    call = ContractCall(aggregator, AGGREGATOR_ABI, "loanIdByQuote", (quote_hash,))
    loan_id = int(adapter.call(call))
    if loan_id == 0:
        return None
    logs = adapter.get_logs(
        from_block=0,
        to_block="latest",
        address=aggregator,
        topics=[LOAN_OPENED_TOPIC, "0x" + loan_id.to_bytes(32, "big").hex()],
    )
    opened = [_opened(log) for log in logs if _is_loan_opened(log, prepared.aggregator)]
    if not opened:
        raise _unavailable(
            prepared.chain_id, ChainError(f"loan {loan_id} exists but its LoanOpened log is not")
        )
    if opened[0].borrower != prepared.wallet:
        raise QuoteAlreadyAccepted(
            f"Quote {prepared.quote_id} already opened loan {loan_id} for another borrower.",
            hint="Make a new credit request.",
        )
    return opened[0]


def _is_loan_opened(log: Log, aggregator: str) -> bool:
    return (
        log.address.lower() == aggregator.lower()
        and bool(log.topics)
        and log.topics[0].lower() == LOAN_OPENED_TOPIC
        and not log.removed
    )


def _opened(log: Log) -> Opened:
    return Opened(
        loan_id=int(log.topics[1], 16),
        borrower="0x" + log.topics[2][-40:].lower(),
        tx_hash=log.transaction_hash.lower(),
        block_number=log.block_number,
        block_hash=log.block_hash.lower(),
        log_index=log.log_index,
    )


def _refused(prepared: Prepared, exc: ContractRevert) -> Exception:
    name = exc.error_name or "an undecoded error"
    args = ", ".join(f"{k}={v!r}" for k, v in exc.error_args.items())
    detail = f"CreditAggregator refused openLoan with {name}({args})"
    if exc.error_name == "AcceptanceExpired":
        return QuoteExpired(detail + ": the signed deadline passed.", hint="Request again.")
    if exc.error_name == "InvalidSignature":
        return SignatureMismatch(
            detail + ": the contract does not accept the signature.",
            hint="Sign the quote's typed_data exactly as served.",
        )
    if exc.error_name == "InvalidAccountNonce":
        return QuoteAlreadyAccepted(
            detail + ": your acceptance nonce moved on (another acceptance was used since this "
            "quote was made).",
            hint="Make a new credit request: its quotes carry your current nonce.",
        )
    if exc.error_name == "EnforcedPause":
        return ChainUnavailable(
            detail + ": the contract is paused.",
            hint="Retry once the guardian unpauses it.",
            headers={"Retry-After": "60"},
        )
    if exc.error_name == "ZeroAddress":
        return LoanRefused(
            detail + ": the quote names no provider address (a rate-card lender without a "
            "payout address).",
            hint="Accept another quote; the lender must set payout_address in its profile.",
        )
    return LoanRefused(detail + ".", hint="Accept another quote, or make a new request.")


# -- step 3: record ---------------------------------------------------------------------------


def record_acceptance(
    session: Session,
    prepared: Prepared,
    opened: Opened,
    *,
    settings: Settings,
    now: datetime | None = None,
) -> AcceptedView:
    """The loan row, the acceptance receipt and the lender's webhook; flushes, never commits."""
    now = now or utcnow()
    repo = WalletLoanRepository(session, prepared.wallet)
    existing = repo.loan_of_request(prepared.request_id)
    if existing is not None:
        if existing.quote_id == prepared.quote_id and existing.loan_id == str(opened.loan_id):
            return accepted_view(existing)  # a concurrent attempt recorded this very loan
        raise QuoteAlreadyAccepted(
            f"Credit request {prepared.request_id} already opened loan {existing.loan_id}.",
            hint=f"See GET /v1/loans/{existing.id}.",
        )
    loan = CreditLoan(
        id=str(uuid.uuid4()),
        quote_id=prepared.quote_id,
        request_id=prepared.request_id,
        wallet=prepared.wallet,
        provider_id=prepared.provider_id,
        chain_id=prepared.chain_id,
        aggregator=prepared.aggregator,
        loan_id=str(opened.loan_id),
        tx_hash=opened.tx_hash,
        block_number=opened.block_number,
        block_hash=opened.block_hash,
        log_index=opened.log_index,
        acceptance_digest="0x" + prepared.digest.hex(),
        status=LoanStatus.OPEN.value,
        created_at=now,
    )
    try:
        repo.add(loan)
    except IntegrityError as exc:
        raise QuoteAlreadyAccepted(
            f"Quote {prepared.quote_id} was accepted by a concurrent request.",
            hint="Look the loan up with GET /v1/loans; retry with the same Idempotency-Key.",
        ) from exc
    loan.receipt_id = _issue_receipt(session, prepared, opened, settings, now)
    enqueue_event(
        session, prepared.provider_id, LOAN_OPENED_EVENT, _webhook(prepared, loan), now=now
    )
    session.flush()
    return accepted_view(loan)


def _issue_receipt(
    session: Session, prepared: Prepared, opened: Opened, settings: Settings, now: datetime
) -> str | None:
    if prepared.quote_set_receipt_id is None:
        return None  # unreachable for a ranked quote: its set was receipted
    doc = prepared.document
    payload = {
        "credit_request_id": prepared.request_id,
        "quote_id": prepared.quote_id,
        "quote_set_receipt_id": prepared.quote_set_receipt_id,
        "borrower": prepared.wallet,
        "loan_id": str(opened.loan_id),
        "debt_asset": doc["debt_asset"],
        "principal": doc["principal"],
        "nominal_apr": doc["nominal_apr"],
        "day_count": doc["day_count"],
        "term_seconds": doc["term_seconds"],
        "acceptance_digest": "0x" + prepared.digest.hex(),
        "accepted_at": format_issued_at(now),
        "opened_by": {
            "chain_id": prepared.chain_id,
            "contract": prepared.aggregator,
            "tx_hash": opened.tx_hash,
            "block_number": opened.block_number,
            "block_hash": opened.block_hash,
            "log_index": opened.log_index,
        },
    }
    issued = issue_receipt(
        session,
        ReceiptDraft(
            kind=ReceiptKind.ACCEPTANCE,
            tenant=f"wallet:{prepared.wallet}",
            subject=f"loan:{prepared.chain_id}:{opened.loan_id}",
            payload=payload,
        ),
        signer=signer_from_settings(settings),
    )
    return str(issued.id)


def _webhook(prepared: Prepared, loan: CreditLoan) -> dict[str, Any]:
    message = prepared.message
    return {
        "loan_id": loan.loan_id,
        "chain_id": loan.chain_id,
        "aggregator": loan.aggregator,
        "quote_id": loan.quote_id,
        "credit_request_id": loan.request_id,
        "borrower": loan.wallet,
        "asset": str(message["asset"]).lower(),
        "principal": str(message["principal"]),
        "rate_bps": int(message["rateBps"]),
        "term_seconds": int(message["termSeconds"]),
        "collateral_asset": str(message["collateralAsset"]).lower(),
        "collateral_amount": str(message["collateralAmount"]),
        "tx_hash": loan.tx_hash,
        "block_number": loan.block_number,
        "receipt_id": loan.receipt_id,
    }
