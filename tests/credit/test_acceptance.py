"""Accepting a quote over HTTP, for real: quotes from the two devnet pools, the borrower's
EIP-712 signature (eth-account), CreditAggregator opening the loan through the operator, the
loan row, the acceptance receipt and the lender's `loan.opened` webhook row.

Each test runs on a reverted chain but the module's database persists, so what that database
knows about the chain is dropped before each test: the operator's nonce row (it must not run
ahead of the chain) and the loans (their ids are handed out again after the revert).
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import create_engine, delete, select, update
from web3 import Web3

from backend.app import create_app
from backend.auth.siwe import SiweMessage, format_message
from backend.config import Settings
from backend.credit.chain import LOAN_ACTIVE
from backend.credit.loan_models import CreditLoan
from backend.credit.models import CreditQuote
from backend.kit.columns import utcnow
from backend.providers.models import WebhookDelivery
from backend.receipts.kinds import AcceptanceV1
from backend.receipts.models import Receipt
from chain_adapters.acceptance import terms_tuple
from chain_adapters.base import ContractCall
from chain_adapters.compiler import compile_timed
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata, chain_nonces, chain_transactions
from chain_adapters.registry import dump_chains, load_chains
from tests.auth.conftest import bearer, create_key, iso, sign_in
from tests.auth.test_eip1271 import deploy_wallet
from tests.credit.conftest import MarketFiles, run_in_session
from tests.credit.test_credit_requests import AMOUNT, REQUEST, add_pools

DOWN_RPC = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(autouse=True)
def _fresh_nonce_store(backend_database_url: str) -> None:
    config = Settings(_env_file=None, environment="test", database_url=backend_database_url)

    def clear(session: Any) -> None:
        session.execute(delete(chain_transactions))
        session.execute(delete(chain_nonces))
        session.execute(delete(CreditLoan))

    run_in_session(config, clear)


# -- helpers shared with tests/e2e ------------------------------------------------------------


def sign(account: LocalAccount, typed: dict[str, Any]) -> str:
    return "0x" + bytes(Account.sign_typed_data(account.key, full_message=typed).signature).hex()


def accept(client: TestClient, token: str, quote_id: str, signature: str, **extra: Any) -> Response:
    return client.post(
        f"/v1/quotes/{quote_id}/accept",
        json={"signature": signature, **extra},
        headers=bearer(token),
    )


def request_quotes(client: TestClient, token: str) -> dict[str, Any]:
    answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def defi_quote(body: dict[str, Any], chain_id: int | None = None) -> dict[str, Any]:
    quotes = [
        q
        for q in body["quotes"]
        if q["source"] == "defi" and (chain_id is None or q["chain_id"] == chain_id)
    ]
    assert quotes, body
    return quotes[0]


@functools.cache
def aggregator_abi() -> list[dict[str, Any]]:
    """CreditAggregator's own ABI, from the (cached) compile: the chain is read as it is."""
    return list(compile_timed()[0].get("CreditAggregator").abi)


def chain_loan(files: MarketFiles, chain_id: int, aggregator: str, loan_id: int) -> dict[str, Any]:
    chain = load_chains(files.chains_file).by_chain_id(chain_id)
    abi = aggregator_abi()
    call = ContractCall(to_checksum_address(aggregator), abi, "getLoan", (loan_id,))
    loan = EvmAdapter(chain).call(call)
    [get_loan] = [f for f in abi if f.get("type") == "function" and f["name"] == "getLoan"]
    names = [c["name"] for c in get_loan["outputs"][0]["components"]]
    return dict(zip(names, loan, strict=True))


def loan_count(files: MarketFiles, chain_id: int, aggregator: str) -> int:
    chain = load_chains(files.chains_file).by_chain_id(chain_id)
    call = ContractCall(to_checksum_address(aggregator), aggregator_abi(), "loanCount")
    return int(EvmAdapter(chain).call(call))


def send_as(
    files: MarketFiles,
    tmp_path: Path,
    account: LocalAccount,
    chain_id: int,
    call: ContractCall,
) -> None:
    """A transaction outside the app (its own throwaway nonce store)."""
    chain = load_chains(files.chains_file).by_chain_id(chain_id)
    engine = create_engine(f"sqlite:///{tmp_path / f'nonces-{account.address}.db'}")
    chain_metadata.create_all(engine)
    try:
        EvmAdapter(chain, engine=engine, signer=account).send(call, wait="mined")
    finally:
        engine.dispose()


def sign_in_as(client: TestClient, address: str, owner: LocalAccount) -> str:
    """SIWE for `address` (a contract wallet) with a signature by its owner's key."""
    nonce = client.get("/v1/auth/nonce").json()["nonce"]
    message = format_message(
        SiweMessage(
            domain="localhost:8000",
            address=address,
            uri="http://localhost:8000",
            version="1",
            chain_id=31337,
            nonce=nonce,
            issued_at=iso(utcnow()),
            statement="Sign in to credagg.",
        )
    )
    signature = owner.sign_message(encode_defunct(text=message)).signature.hex()
    answer = client.post("/v1/auth/siwe", json={"message": message, "signature": "0x" + signature})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def rows(config: Settings, model: Any, **where: Any) -> list[Any]:
    def load(session: Any) -> list[Any]:
        query = select(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        found = list(session.scalars(query).all())
        session.expunge_all()
        return found

    result: list[Any] = run_in_session(config, load)
    return result


# -- the journey's happy path -----------------------------------------------------------------


def test_accepting_a_pool_quote_opens_the_loan_and_records_receipt_and_webhook(
    credit_settings: Settings, market: Any, market_files: MarketFiles
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        pools = add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        body = request_quotes(client, token)
        quote = defi_quote(body)
        aggregator = quote["typed_data"]["domain"]["verifyingContract"]
        before = loan_count(market_files, quote["chain_id"], aggregator)

        answer = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
        assert answer.status_code == 201, answer.text
        opened = answer.json()
        assert set(opened) == {"id", "loan_id", "chain_id", "tx_hash", "block_number", "receipt_id"}
        assert opened["chain_id"] == quote["chain_id"]
        assert int(opened["loan_id"]) == before + 1

        loan = client.get(f"/v1/loans/{opened['id']}", headers=bearer(token))
        assert loan.status_code == 200, loan.text
        assert loan.json()["quote_id"] == quote["id"]
        assert loan.json()["principal"] == str(AMOUNT)
        assert loan.json()["status"] == "open"

        # the same quote, and a sibling quote of the same request, are used up
        again = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "quote_already_accepted"
        sibling = next(q for q in body["quotes"] if q["id"] != quote["id"])
        other = accept(client, token, sibling["id"], sign(market.borrower, sibling["typed_data"]))
        assert (other.status_code, other.json()["error"]) == (409, "quote_already_accepted")

    on_chain = chain_loan(market_files, quote["chain_id"], aggregator, int(opened["loan_id"]))
    message = quote["typed_data"]["message"]
    assert on_chain["borrower"].lower() == market.borrower.address.lower()
    assert on_chain["principal"] == AMOUNT
    assert on_chain["rateBps"] == message["rateBps"]
    assert on_chain["provider"].lower() == message["provider"]
    assert on_chain["state"] == LOAN_ACTIVE
    assert "0x" + on_chain["quoteHash"].hex() == message["quoteHash"]
    assert loan_count(market_files, quote["chain_id"], aggregator) == before + 1

    [receipt] = rows(credit_settings, Receipt, id=uuid.UUID(opened["receipt_id"]))
    assert receipt.kind == "acceptance"
    payload = AcceptanceV1.model_validate(receipt.payload)
    assert payload.quote_id == quote["id"]
    assert payload.loan_id == opened["loan_id"]
    assert payload.quote_set_receipt_id == body["receipt_id"]
    assert payload.opened_by.tx_hash == opened["tx_hash"]
    assert payload.opened_by.block_number == opened["block_number"]
    assert payload.opened_by.contract == aggregator.lower()

    provider_id = quote["provider_id"]
    assert provider_id in pools
    [hook] = rows(credit_settings, WebhookDelivery, provider_id=provider_id)
    assert hook.event_type == "loan.opened"
    assert hook.payload["loan_id"] == opened["loan_id"]
    assert hook.payload["tx_hash"] == opened["tx_hash"]


def test_loans_are_visible_only_to_their_borrower_and_their_lender(
    credit_settings: Settings, market: Any
) -> None:

    with TestClient(create_app(credit_settings)) as client:
        pools = add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        opened = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
        assert opened.status_code == 201, opened.text
        loan_id = opened.json()["id"]

        stranger = sign_in(client, market.liquidator)
        assert client.get(f"/v1/loans/{loan_id}", headers=bearer(stranger)).status_code == 404
        theirs = accept(client, stranger, quote["id"], sign(market.liquidator, quote["typed_data"]))
        assert (theirs.status_code, theirs.json()["error"]) == (404, "quote_not_found")

        lender = create_key(credit_settings, provider_id=quote["provider_id"]).token
        listed = client.get("/v1/provider/loans", headers=bearer(lender))
        assert listed.status_code == 200, listed.text
        assert [row["id"] for row in listed.json()] == [loan_id]
        other_pool = next(pid for pid in pools if pid != quote["provider_id"])
        other = create_key(credit_settings, provider_id=other_pool).token
        assert client.get("/v1/provider/loans", headers=bearer(other)).json() == []
        # a provider key is not a wallet session
        assert client.get(f"/v1/loans/{loan_id}", headers=bearer(lender)).status_code == 403


# -- refusals ---------------------------------------------------------------------------------


def test_an_expired_quote_is_refused_and_nothing_is_opened(
    credit_settings: Settings, market: Any, market_files: MarketFiles
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        run_in_session(
            credit_settings,
            lambda s: s.execute(
                update(CreditQuote)
                .where(CreditQuote.id == quote["id"])
                .values(expires_at=utcnow().replace(year=2000))
            ),
        )
        aggregator = quote["typed_data"]["domain"]["verifyingContract"]
        before = loan_count(market_files, quote["chain_id"], aggregator)
        answer = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "quote_expired"
    assert "new credit request" in answer.json()["hint"]
    assert loan_count(market_files, quote["chain_id"], aggregator) == before
    assert rows(credit_settings, CreditLoan, quote_id=quote["id"]) == []


def test_altered_terms_are_a_signature_mismatch_naming_the_field(
    credit_settings: Settings, market: Any, market_files: MarketFiles
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        altered = {**quote["typed_data"]}
        altered["message"] = {**altered["message"], "principal": AMOUNT * 2}
        signature = sign(market.borrower, altered)

        blind = accept(client, token, quote["id"], signature)
        assert blind.status_code == 422, blind.text
        assert blind.json()["error"] == "signature_mismatch"
        assert "not to your wallet" in blind.json()["detail"]

        named = accept(client, token, quote["id"], signature, typed_data=altered)
        assert named.status_code == 422, named.text
        assert "message.principal" in named.json()["detail"]

        other_chain = {**quote["typed_data"]}
        other_chain["domain"] = {**other_chain["domain"], "chainId": 1}
        wrong = accept(
            client, token, quote["id"], sign(market.borrower, other_chain), typed_data=other_chain
        )
        assert wrong.status_code == 422, wrong.text
        assert "domain.chainId" in wrong.json()["detail"]
        assert "wrong chain" in wrong.json()["detail"]

        # a later deadline than the quote's own cannot be signed into it
        late = accept(
            client,
            token,
            quote["id"],
            signature,
            deadline=quote["typed_data"]["message"]["deadline"] + 3600,
        )
        assert (late.status_code, late.json()["error"]) == (422, "quote_not_acceptable")

        # the untouched typed data still works afterwards: the refusals changed nothing
        good = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
        assert good.status_code == 201, good.text


def test_a_shorter_signed_deadline_is_accepted(credit_settings: Settings, market: Any) -> None:
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        typed = {**quote["typed_data"]}
        deadline = typed["message"]["deadline"] - 5
        typed["message"] = {**typed["message"], "deadline": deadline}
        answer = accept(client, token, quote["id"], sign(market.borrower, typed), deadline=deadline)
    assert answer.status_code == 201, answer.text


def test_a_pool_rate_that_moved_beyond_tolerance_is_refused(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    compiled: Any,
    tmp_path: Path,
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        pool = quote["typed_data"]["message"]["provider"]
        # someone else borrows from the pool between quote and acceptance
        send_as(
            market_files,
            tmp_path,
            market.supplier,
            quote["chain_id"],
            ContractCall(
                to_checksum_address(pool),
                compiled.get("MockLendingPool").abi,
                "borrow",
                (200_000 * 10**6,),
            ),
        )
        signature = sign(market.borrower, quote["typed_data"])
        refused = accept(client, token, quote["id"], signature)
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["error"] == "rate_moved"
        old_apr = quote["quote"]["nominal_apr"]
        assert f"from APR {old_apr}" in body["detail"]
        assert "beyond your tolerance of 25 bps" in body["detail"]

        # a borrower who tolerates the move gets the loan at the signed (quoted) rate
        taken = accept(client, token, quote["id"], signature, max_rate_drift_bps=10_000)
        assert taken.status_code == 201, taken.text


def test_an_eip1271_wallet_accepts_with_its_owners_signature(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    compiled: Any,
) -> None:
    owner = market.borrower
    w3 = Web3(Web3.HTTPProvider(market.chains[31337].rpc_url))
    wallet = deploy_wallet(w3, compiled, owner.address, market.governor.address)
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in_as(client, wallet, owner)
        quote = defi_quote(request_quotes(client, token), chain_id=31337)
        assert quote["typed_data"]["message"]["borrower"] == wallet.lower()
        stranger_signed = accept(
            client, token, quote["id"], sign(market.liquidator, quote["typed_data"])
        )
        assert stranger_signed.status_code == 422, stranger_signed.text
        assert "EIP-1271" in stranger_signed.json()["detail"]
        answer = accept(client, token, quote["id"], sign(owner, quote["typed_data"]))
        assert answer.status_code == 201, answer.text
    aggregator = quote["typed_data"]["domain"]["verifyingContract"]
    loan = chain_loan(market_files, 31337, aggregator, int(answer.json()["loan_id"]))
    assert loan["borrower"].lower() == wallet.lower()


# -- the chain failing ------------------------------------------------------------------------


def test_an_rpc_outage_is_a_503_that_leaves_the_quote_acceptable(
    credit_settings: Settings, market: Any, market_files: MarketFiles, tmp_path: Path
) -> None:
    dead_file = tmp_path / "dead-chains.toml"
    dead_file.write_text(
        dump_chains(
            c.model_copy(update={"rpc_urls": (DOWN_RPC,)})
            for c in load_chains(market_files.chains_file)
        )
    )
    dead_settings = credit_settings.model_copy(update={"chains_file": dead_file})
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        signature = sign(market.borrower, quote["typed_data"])
        with TestClient(create_app(dead_settings)) as down:
            refused = accept(down, token, quote["id"], signature)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "chain_unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert rows(credit_settings, CreditLoan, quote_id=quote["id"]) == []

        retried = accept(client, token, quote["id"], signature)
        assert retried.status_code == 201, retried.text


def test_a_loan_opened_by_an_attempt_that_lost_its_answer_is_found_not_opened_twice(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    compiled: Any,
    tmp_path: Path,
) -> None:
    """The operator's transaction was mined but the API never recorded it (a crash, a timeout):
    the retry finds the loan by `loanIdByQuote` and records that one."""
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        quote = defi_quote(request_quotes(client, token))
        typed = quote["typed_data"]
        signature = sign(market.borrower, typed)
        message = {
            k: to_checksum_address(v) if isinstance(v, str) and len(v) == 42 else v
            for k, v in typed["message"].items()
        }

        aggregator = typed["domain"]["verifyingContract"]
        send_as(
            market_files,
            tmp_path,
            market.operator,
            quote["chain_id"],
            ContractCall(
                to_checksum_address(aggregator),
                compiled.get("CreditAggregator").abi,
                "openLoan",
                (
                    terms_tuple(message),
                    message["borrower"],
                    message["deadline"],
                    bytes.fromhex(signature[2:]),
                ),
            ),
        )
        count = loan_count(market_files, quote["chain_id"], aggregator)
        answer = accept(client, token, quote["id"], signature)
        assert answer.status_code == 201, answer.text
    assert int(answer.json()["loan_id"]) == count
    assert loan_count(market_files, quote["chain_id"], aggregator) == count
