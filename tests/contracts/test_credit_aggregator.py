"""CreditAggregator: EIP-712 acceptances (EOA and ERC-1271), replay, expiry, loan lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_adapters.acceptance import (
    ACCEPTANCE_FIELDS,
    acceptance_type_string,
    acceptance_typed_data,
    sign_acceptance,
    terms_tuple,
)
from tests.contracts._support import (
    BPS,
    ORIGINATOR_ROLE,
    REPORTER_ROLE,
    YEAR,
    ZERO_ADDRESS,
    Chain,
    System,
)

ACTIVE, DEFAULTED, CLOSED = 1, 2, 3
MAX_UINT = 2**256 - 1
LOAN_FIELDS = [
    "quoteHash",
    "borrower",
    "openedAt",
    "rateBps",
    "provider",
    "termSeconds",
    "state",
    "asset",
    "lastAccrual",
    "collateralAsset",
    "principal",
    "collateralAmount",
    "repaid",
    "principalOutstanding",
    "interestAccrued",
    "nonce",
]


def loan_of(system: System, loan_id: int) -> dict[str, Any]:
    return dict(zip(LOAN_FIELDS, system.aggregator.functions.getLoan(loan_id).call(), strict=True))


@dataclass
class RefLoan:
    """Python reference of the documented debt rule: simple interest on unpaid principal,
    checkpointed at each repayment; repayments settle interest first, then principal."""

    principal: int
    rate_bps: int
    last: int
    interest: int = 0
    repaid: int = 0

    def interest_at(self, t: int) -> int:
        return self.interest + self.principal * self.rate_bps * (t - self.last) // (BPS * YEAR)

    def outstanding(self, t: int) -> int:
        return self.principal + self.interest_at(t)

    def repay(self, amount: int, t: int) -> tuple[int, int, int]:
        """Returns (amount, interestPaid, outstandingAfter) as the event reports them."""
        interest = self.interest_at(t)
        debt = self.principal + interest
        amount = debt if amount == MAX_UINT else amount
        assert 0 < amount <= debt
        interest_paid = min(amount, interest)
        self.interest = interest - interest_paid
        self.principal -= amount - interest_paid
        self.last = t
        self.repaid += amount
        return amount, interest_paid, debt - amount


def open_at(system: System, timestamp: int, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    system.chain.set_next_timestamp(timestamp)
    loan_id, _, terms = system.open_loan(deadline=timestamp + 10, **kwargs)
    return loan_id, terms


# --- EIP-712 -------------------------------------------------------------------------------


def test_acceptance_digest_matches_eip712_reference(system: System, chain: Chain) -> None:
    terms = system.terms(nonce=7)
    deadline = 1_900_000_000
    domain = {
        "name": "CreditAggregator",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": system.aggregator.address,
    }
    message = encode_typed_data(
        domain_data=domain,
        message_types={"Acceptance": ACCEPTANCE_FIELDS},
        message_data={**terms, "borrower": system.borrower.address, "deadline": deadline},
    )
    expected = keccak(b"\x19" + message.version + message.header + message.body)
    on_chain = system.aggregator.functions.hashAcceptance(
        terms_tuple(terms), system.borrower.address, deadline
    ).call()
    assert on_chain == expected
    assert system.aggregator.functions.DOMAIN_SEPARATOR().call() == message.header
    type_string = (
        "Acceptance(" + ",".join(f"{f['type']} {f['name']}" for f in ACCEPTANCE_FIELDS) + ")"
    )
    assert system.aggregator.functions.ACCEPTANCE_TYPEHASH().call() == keccak(text=type_string)
    assert acceptance_type_string() == type_string
    full = encode_typed_data(
        full_message=acceptance_typed_data(
            chain_id=chain.chain_id,
            aggregator=system.aggregator.address,
            terms=terms,
            borrower=system.borrower.address,
            deadline=deadline,
        )
    )
    assert keccak(b"\x19" + full.version + full.header + full.body) == on_chain
    fields = system.aggregator.functions.eip712Domain().call()
    assert fields[1:5] == ["CreditAggregator", "1", chain.chain_id, system.aggregator.address]


def test_open_loan_with_eoa_signature_records_terms(system: System, chain: Chain) -> None:
    loan_id, receipt, terms = system.open_loan()
    block = chain.w3.eth.get_block(receipt["blockNumber"])
    assert loan_id == 1
    loan = loan_of(system, loan_id)
    assert loan == {
        "quoteHash": terms["quoteHash"],
        "borrower": system.borrower.address,
        "openedAt": block["timestamp"],
        "rateBps": terms["rateBps"],
        "provider": terms["provider"],
        "termSeconds": terms["termSeconds"],
        "state": ACTIVE,
        "asset": terms["asset"],
        "collateralAsset": terms["collateralAsset"],
        "lastAccrual": block["timestamp"],
        "principal": terms["principal"],
        "collateralAmount": terms["collateralAmount"],
        "repaid": 0,
        "principalOutstanding": terms["principal"],
        "interestAccrued": 0,
        "nonce": 0,
    }
    (event,) = chain.events(system.aggregator, "LoanOpened", receipt)
    assert dict(event["args"]) == {"loanId": 1, "borrower": system.borrower.address, **terms}
    assert system.aggregator.functions.nonces(system.borrower.address).call() == 1
    assert system.aggregator.functions.loanIdByQuote(terms["quoteHash"]).call() == 1
    assert system.aggregator.functions.loanCount().call() == 1
    assert (
        system.aggregator.functions.maturityOf(1).call()
        == block["timestamp"] + terms["termSeconds"]
    )


def test_open_loan_with_erc1271_wallet_signature(system: System, chain: Chain) -> None:
    wallet = system.wallet.address
    loan_id, receipt, _ = system.open_loan(signer=system.wallet_owner, borrower_address=wallet)
    assert loan_of(system, loan_id)["borrower"] == wallet
    assert system.aggregator.functions.nonces(wallet).call() == 1
    (event,) = chain.events(system.aggregator, "LoanOpened", receipt)
    assert event["args"]["borrower"] == wallet


def test_erc1271_wallet_rejects_signature_of_non_owner(system: System, chain: Chain) -> None:
    wallet = system.wallet.address
    terms = system.terms(nonce=0)
    deadline = chain.now() + 600
    signature = sign_acceptance(
        system.outsider,
        chain_id=chain.chain_id,
        aggregator=system.aggregator.address,
        terms=terms,
        borrower=wallet,
        deadline=deadline,
    )
    fn = system.aggregator.functions.openLoan(terms_tuple(terms), wallet, deadline, signature)
    chain.expect_revert(fn, system.relayer, "InvalidSignature", wallet)


def _signed(
    system: System, *, signer: Any = None, deadline: int | None = None, **overrides: Any
) -> tuple:
    chain = system.chain
    overrides.setdefault(
        "nonce", system.aggregator.functions.nonces(system.borrower.address).call()
    )
    terms = system.terms(**overrides)
    deadline = deadline if deadline is not None else chain.now() + 600
    signature = sign_acceptance(
        signer or system.borrower,
        chain_id=chain.chain_id,
        aggregator=system.aggregator.address,
        terms=terms,
        borrower=system.borrower.address,
        deadline=deadline,
    )
    return terms, deadline, signature


def test_signature_of_someone_else_rejected(system: System, chain: Chain) -> None:
    terms, deadline, signature = _signed(system, signer=system.outsider)
    fn = system.aggregator.functions.openLoan(
        terms_tuple(terms), system.borrower.address, deadline, signature
    )
    chain.expect_revert(fn, system.relayer, "InvalidSignature", system.borrower.address)


def test_tampered_terms_rejected(system: System, chain: Chain) -> None:
    terms, deadline, signature = _signed(system)
    for field, value in [
        ("principal", terms["principal"] + 1),
        ("rateBps", 1),
        ("provider", system.outsider.address),
    ]:
        tampered = {**terms, field: value}
        fn = system.aggregator.functions.openLoan(
            terms_tuple(tampered), system.borrower.address, deadline, signature
        )
        chain.expect_revert(fn, system.relayer, "InvalidSignature", system.borrower.address)
    later = system.aggregator.functions.openLoan(
        terms_tuple(terms), system.borrower.address, deadline + 1, signature
    )
    chain.expect_revert(later, system.relayer, "InvalidSignature", system.borrower.address)


def test_signature_for_another_chain_or_contract_rejected(system: System, chain: Chain) -> None:
    terms = system.terms(nonce=0)
    deadline = chain.now() + 600
    for chain_id, verifying in [
        (chain.chain_id + 1, system.aggregator.address),
        (chain.chain_id, system.anchor.address),
    ]:
        signature = sign_acceptance(
            system.borrower,
            chain_id=chain_id,
            aggregator=verifying,
            terms=terms,
            borrower=system.borrower.address,
            deadline=deadline,
        )
        fn = system.aggregator.functions.openLoan(
            terms_tuple(terms), system.borrower.address, deadline, signature
        )
        chain.expect_revert(fn, system.relayer, "InvalidSignature", system.borrower.address)


def test_replay_rejected(system: System, chain: Chain) -> None:
    terms, deadline, signature = _signed(system)
    fn = system.aggregator.functions.openLoan(
        terms_tuple(terms), system.borrower.address, deadline, signature
    )
    chain.tx(fn, system.relayer)
    # The very same acceptance again: its quote is already a loan.
    chain.expect_revert(fn, system.relayer, "QuoteAlreadyUsed", terms["quoteHash"], 1)
    # A valid signature for a new quote but a consumed nonce.
    stale_terms, stale_deadline, stale_sig = _signed(system, nonce=0)
    stale = system.aggregator.functions.openLoan(
        terms_tuple(stale_terms), system.borrower.address, stale_deadline, stale_sig
    )
    chain.expect_revert(stale, system.relayer, "InvalidAccountNonce", system.borrower.address, 1)
    # A nonce from the future is refused too.
    ahead_terms, ahead_deadline, ahead_sig = _signed(system, nonce=5)
    ahead = system.aggregator.functions.openLoan(
        terms_tuple(ahead_terms), system.borrower.address, ahead_deadline, ahead_sig
    )
    chain.expect_revert(ahead, system.relayer, "InvalidAccountNonce", system.borrower.address, 1)


def test_expired_acceptance_rejected_and_deadline_inclusive(system: System, chain: Chain) -> None:
    start = chain.now() + 100
    terms, deadline, signature = _signed(system, deadline=start + 50)
    fn = system.aggregator.functions.openLoan(
        terms_tuple(terms), system.borrower.address, deadline, signature
    )
    chain.mine_at(deadline + 1)  # views and gas estimates run in the latest block's context
    chain.expect_revert(fn, system.relayer, "AcceptanceExpired", deadline)

    terms2, deadline2, signature2 = _signed(system, deadline=deadline + 100)
    chain.set_next_timestamp(deadline2)
    chain.tx(
        system.aggregator.functions.openLoan(
            terms_tuple(terms2), system.borrower.address, deadline2, signature2
        ),
        system.relayer,
    )


def test_open_loan_input_validation(system: System, chain: Chain) -> None:
    cases = [
        ({"provider": ZERO_ADDRESS}, "ZeroAddress"),
        ({"asset": ZERO_ADDRESS}, "ZeroAddress"),
        ({"principal": 0}, "ZeroAmount"),
        ({"termSeconds": 0}, "ZeroAmount"),
        ({"quoteHash": b"\x00" * 32}, "ZeroQuoteHash"),
    ]
    for overrides, error in cases:
        terms, deadline, signature = _signed(system, **overrides)
        fn = system.aggregator.functions.openLoan(
            terms_tuple(terms), system.borrower.address, deadline, signature
        )
        chain.expect_revert(fn, system.relayer, error)
    terms, deadline, signature = _signed(system)
    zero_borrower = system.aggregator.functions.openLoan(
        terms_tuple(terms), ZERO_ADDRESS, deadline, signature
    )
    chain.expect_revert(zero_borrower, system.relayer, "ZeroAddress")


def test_open_loan_requires_originator_role(system: System, chain: Chain) -> None:
    terms, deadline, signature = _signed(system)
    fn = system.aggregator.functions.openLoan(
        terms_tuple(terms), system.borrower.address, deadline, signature
    )
    for who in (system.outsider, system.reporter, system.borrower):
        chain.expect_revert(
            fn, who, "AccessControlUnauthorizedAccount", who.address, ORIGINATOR_ROLE
        )


def test_everything_blocked_while_paused(system: System, chain: Chain) -> None:
    loan_id, _, _ = system.open_loan()
    terms, deadline, signature = _signed(system)
    agg = system.aggregator.functions
    chain.tx(agg.pause(), system.pauser)
    chain.expect_revert(
        agg.openLoan(terms_tuple(terms), system.borrower.address, deadline, signature),
        system.relayer,
        "EnforcedPause",
    )
    chain.expect_revert(agg.recordRepayment(loan_id, 1), system.reporter, "EnforcedPause")
    chain.expect_revert(agg.markDefault(loan_id), system.reporter, "EnforcedPause")
    chain.expect_revert(agg.close(loan_id), system.relayer, "EnforcedPause")
    chain.expect_revert(
        agg.unpause(),
        system.pauser,
        "AccessControlUnauthorizedAccount",
        system.pauser.address,
        b"\x00" * 32,
    )
    chain.tx(agg.unpause(), system.admin)
    chain.tx(agg.recordRepayment(loan_id, 1), system.reporter)


# --- lifecycle -----------------------------------------------------------------------------
# Reverts are observed through eth_estimateGas, which runs in the latest block's context, so a
# test that needs a revert at time t first mines an empty block at t (`chain.mine_at`).


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    principal=st.integers(1, 10**30),
    rate_bps=st.integers(0, 2**32 - 1),
    schedule=st.lists(st.tuples(st.integers(1, 2 * YEAR), st.integers(1, 1000)), max_size=4),
    tail=st.integers(0, 10 * YEAR),
)
def test_debt_accounting_matches_reference(
    system: System, principal: int, rate_bps: int, schedule: list[tuple[int, int]], tail: int
) -> None:
    chain = system.chain
    agg = system.aggregator.functions
    with chain.isolated():
        t = chain.now() + 10
        loan_id, _ = open_at(system, t, principal=principal, rateBps=rate_bps)
        ref = RefLoan(principal, rate_bps, t)
        for dt, per_mille in schedule:
            t += dt
            amount = ref.outstanding(t) * per_mille // 1000
            if amount == 0:
                continue
            chain.set_next_timestamp(t)
            receipt = chain.tx(agg.recordRepayment(loan_id, amount), system.reporter)
            _, interest_paid, after = ref.repay(amount, t)
            (event,) = chain.events(system.aggregator, "RepaymentRecorded", receipt)
            assert (event["args"]["interestPaid"], event["args"]["outstandingAfter"]) == (
                interest_paid,
                after,
            )
        block = chain.mine_at(t + tail + 1)
        assert agg.outstanding(loan_id).call(block_identifier=block) == ref.outstanding(
            t + tail + 1
        )
        assert agg.accruedInterest(loan_id).call(block_identifier=block) == ref.interest_at(
            t + tail + 1
        )
        loan = loan_of(system, loan_id)
        assert (loan["principalOutstanding"], loan["repaid"]) == (ref.principal, ref.repaid)


def test_record_repayment_event_roles_and_limits(system: System, chain: Chain) -> None:
    t0 = chain.now() + 10
    loan_id, terms = open_at(system, t0)
    ref = RefLoan(terms["principal"], terms["rateBps"], t0)
    agg = system.aggregator.functions
    chain.set_next_timestamp(t0 + 30 * 24 * 3600)
    receipt = chain.tx(agg.recordRepayment(loan_id, 1_000_000_000), system.reporter)
    amount, interest_paid, after = ref.repay(1_000_000_000, t0 + 30 * 24 * 3600)
    assert 0 < interest_paid < amount  # this repayment covers interest and some principal
    (event,) = chain.events(system.aggregator, "RepaymentRecorded", receipt)
    assert dict(event["args"]) == {
        "loanId": loan_id,
        "borrower": system.borrower.address,
        "provider": system.provider.address,
        "quoteHash": terms["quoteHash"],
        "amount": amount,
        "interestPaid": interest_paid,
        "totalRepaid": amount,
        "outstandingAfter": after,
        "reporter": system.reporter.address,
    }
    # The originator may report too; others may not.
    chain.tx(agg.recordRepayment(loan_id, 5), system.relayer)
    assert loan_of(system, loan_id)["repaid"] == amount + 5
    chain.expect_revert(
        agg.recordRepayment(loan_id, 5),
        system.outsider,
        "AccessControlUnauthorizedAccount",
        system.outsider.address,
        REPORTER_ROLE,
    )
    chain.expect_revert(agg.recordRepayment(loan_id, 0), system.reporter, "ZeroAmount")
    chain.expect_revert(agg.recordRepayment(99, 1), system.reporter, "LoanNotFound", 99)


def test_repayment_above_outstanding_rejected(system: System, chain: Chain) -> None:
    t0 = chain.now() + 10
    loan_id, terms = open_at(system, t0)
    ref = RefLoan(terms["principal"], terms["rateBps"], t0)
    chain.mine_at(t0 + 2000)
    due = ref.outstanding(t0 + 2000)
    chain.expect_revert(
        system.aggregator.functions.recordRepayment(loan_id, due + 1),
        system.reporter,
        "RepaymentExceedsOutstanding",
        loan_id,
        due + 1,
        due,
    )


def test_repay_in_full_stops_accrual_then_close(system: System, chain: Chain) -> None:
    t0 = chain.now() + 10
    loan_id, terms = open_at(system, t0)
    ref = RefLoan(terms["principal"], terms["rateBps"], t0)
    agg = system.aggregator.functions
    chain.mine_at(t0 + 30 * 24 * 3600)
    chain.expect_revert(
        agg.close(loan_id),
        system.relayer,
        "DebtOutstanding",
        loan_id,
        ref.outstanding(t0 + 30 * 24 * 3600),
    )
    # max uint = "whatever is owed when the transaction executes".
    t1 = t0 + 31 * 24 * 3600
    chain.set_next_timestamp(t1)
    receipt = chain.tx(agg.recordRepayment(loan_id, MAX_UINT), system.reporter)
    amount, interest_paid, after = ref.repay(MAX_UINT, t1)
    (event,) = chain.events(system.aggregator, "RepaymentRecorded", receipt)
    assert (event["args"]["amount"], event["args"]["interestPaid"], after) == (
        amount,
        interest_paid,
        0,
    )
    assert event["args"]["outstandingAfter"] == 0
    # Nothing accrues on a repaid loan, so it can be closed later.
    block = chain.mine_at(t1 + 10 * 24 * 3600)
    assert agg.outstanding(loan_id).call(block_identifier=block) == 0
    chain.expect_revert(
        agg.recordRepayment(loan_id, MAX_UINT), system.reporter, "NothingOutstanding", loan_id
    )
    chain.expect_revert(
        agg.close(loan_id),
        system.reporter,
        "AccessControlUnauthorizedAccount",
        system.reporter.address,
        ORIGINATOR_ROLE,
    )
    receipt = chain.tx(agg.close(loan_id), system.relayer)
    (event,) = chain.events(system.aggregator, "LoanClosed", receipt)
    assert dict(event["args"]) == {
        "loanId": loan_id,
        "borrower": system.borrower.address,
        "provider": system.provider.address,
        "quoteHash": terms["quoteHash"],
        "totalRepaid": amount,
        "writtenOff": 0,
    }
    assert loan_of(system, loan_id)["state"] == CLOSED
    assert agg.outstanding(loan_id).call() == 0
    assert agg.accruedInterest(loan_id).call() == 0
    chain.expect_revert(agg.close(loan_id), system.relayer, "InvalidLoanState", loan_id, CLOSED)
    chain.expect_revert(
        agg.recordRepayment(loan_id, 1), system.reporter, "InvalidLoanState", loan_id, CLOSED
    )
    chain.expect_revert(
        agg.markDefault(loan_id), system.reporter, "InvalidLoanState", loan_id, CLOSED
    )


def test_default_after_maturity_then_write_off(system: System, chain: Chain) -> None:
    t0 = chain.now() + 10
    loan_id, terms = open_at(system, t0, termSeconds=3600)
    ref = RefLoan(terms["principal"], terms["rateBps"], t0)
    agg = system.aggregator.functions
    maturity = t0 + 3600
    chain.mine_at(maturity)
    chain.expect_revert(
        agg.markDefault(loan_id), system.reporter, "LoanNotMatured", loan_id, maturity
    )
    chain.expect_revert(
        agg.markDefault(loan_id),
        system.outsider,
        "AccessControlUnauthorizedAccount",
        system.outsider.address,
        REPORTER_ROLE,
    )
    chain.set_next_timestamp(maturity + 1)
    receipt = chain.tx(agg.markDefault(loan_id), system.reporter)
    (event,) = chain.events(system.aggregator, "LoanDefaulted", receipt)
    assert dict(event["args"]) == {
        "loanId": loan_id,
        "borrower": system.borrower.address,
        "provider": system.provider.address,
        "quoteHash": terms["quoteHash"],
        "outstanding": ref.outstanding(maturity + 1),
    }
    assert loan_of(system, loan_id)["state"] == DEFAULTED
    chain.expect_revert(
        agg.markDefault(loan_id), system.reporter, "InvalidLoanState", loan_id, DEFAULTED
    )
    # Recoveries can still be recorded on a defaulted loan.
    chain.set_next_timestamp(maturity + 2)
    chain.tx(agg.recordRepayment(loan_id, 1_000), system.reporter)
    ref.repay(1_000, maturity + 2)
    chain.set_next_timestamp(maturity + 3)
    receipt = chain.tx(agg.close(loan_id), system.relayer)
    (closed,) = chain.events(system.aggregator, "LoanClosed", receipt)
    assert closed["args"]["totalRepaid"] == 1_000
    assert closed["args"]["writtenOff"] == ref.outstanding(maturity + 3)


def test_fully_repaid_loan_cannot_default(system: System, chain: Chain) -> None:
    t0 = chain.now() + 10
    loan_id, _ = open_at(system, t0, termSeconds=60)
    agg = system.aggregator.functions
    chain.set_next_timestamp(t0 + 1)
    chain.tx(agg.recordRepayment(loan_id, MAX_UINT), system.reporter)
    chain.mine_at(t0 + 61)
    chain.expect_revert(agg.markDefault(loan_id), system.reporter, "NothingOutstanding", loan_id)


def test_unknown_loan_views_revert(system: System, chain: Chain) -> None:
    agg = system.aggregator.functions
    for fn in (agg.getLoan(5), agg.outstanding(5), agg.accruedInterest(5), agg.maturityOf(5)):
        assert chain.call_revert_of(fn) == ("LoanNotFound", (5,))
    chain.expect_revert(agg.close(5), system.relayer, "LoanNotFound", 5)
    assert agg.loanIdByQuote(b"\x01" * 32).call() == 0
