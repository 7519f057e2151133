"""EIP-712 typed data of a loan acceptance, exactly as CreditAggregator verifies it.

The backend puts this typed data in every quote for the borrower's wallet to sign
(`eth_signTypedData_v4`), and tests and benchmarks sign it with eth-account. One definition
here keeps the three in step with the contract's ACCEPTANCE_TYPEHASH, which a test checks.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

DOMAIN_NAME = "CreditAggregator"
DOMAIN_VERSION = "1"

ACCEPTANCE_FIELDS: list[dict[str, str]] = [
    {"name": "quoteHash", "type": "bytes32"},
    {"name": "provider", "type": "address"},
    {"name": "asset", "type": "address"},
    {"name": "principal", "type": "uint256"},
    {"name": "rateBps", "type": "uint32"},
    {"name": "termSeconds", "type": "uint64"},
    {"name": "collateralAsset", "type": "address"},
    {"name": "collateralAmount", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "borrower", "type": "address"},
    {"name": "deadline", "type": "uint256"},
]
#: The LoanTerms struct passed to `openLoan`, in order (the Acceptance minus borrower, deadline).
TERM_FIELDS: list[str] = [f["name"] for f in ACCEPTANCE_FIELDS[:9]]

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def acceptance_type_string() -> str:
    return "Acceptance(" + ",".join(f"{f['type']} {f['name']}" for f in ACCEPTANCE_FIELDS) + ")"


def domain(chain_id: int, aggregator: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": aggregator,
    }


def terms_tuple(terms: dict[str, Any]) -> tuple[Any, ...]:
    """The LoanTerms tuple for `openLoan` from a dict with the TERM_FIELDS keys."""
    return tuple(terms[name] for name in TERM_FIELDS)


def acceptance_typed_data(
    *, chain_id: int, aggregator: str, terms: dict[str, Any], borrower: str, deadline: int
) -> dict[str, Any]:
    """Full EIP-712 typed data (as a wallet's eth_signTypedData_v4 takes it)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "Acceptance": ACCEPTANCE_FIELDS},
        "primaryType": "Acceptance",
        "domain": domain(chain_id, aggregator),
        "message": {**{k: terms[k] for k in TERM_FIELDS}, "borrower": borrower,
                    "deadline": deadline},
    }


def sign_acceptance(
    key: LocalAccount,
    *,
    chain_id: int,
    aggregator: str,
    terms: dict[str, Any],
    borrower: str,
    deadline: int,
) -> bytes:
    """An EOA's (or an EIP-1271 wallet owner's) signature over the acceptance."""
    data = acceptance_typed_data(
        chain_id=chain_id, aggregator=aggregator, terms=terms, borrower=borrower,
        deadline=deadline,
    )
    signed = Account.sign_typed_data(key.key, full_message=data)
    return bytes(signed.signature)
