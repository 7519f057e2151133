"""A quote's EIP-712 typed data is what CreditAggregator verifies: the borrower signs it as
served, the operator opens the loan with it on-chain, and once the chain watcher has ingested it
the next risk profile sees the loan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from backend.app import create_app
from backend.config import Settings
from backend.db import create_db_engine, create_session_factory
from chain_adapters.acceptance import terms_tuple
from chain_adapters.base import ContractCall
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata
from chain_adapters.registry import load_chains
from tests.auth.conftest import bearer, sign_in
from tests.credit.conftest import MarketFiles
from tests.credit.test_credit_requests import REQUEST, add_pools
from tests.watcher.conftest import make_watcher, run_to_head


def _checksummed(message: dict[str, Any]) -> dict[str, Any]:
    return {
        key: to_checksum_address(value)
        if isinstance(value, str) and len(value) == 42 and value.startswith("0x")
        else value
        for key, value in message.items()
    }


def _watch_to_head(settings: Settings, market: Any, chains: list[Any]) -> None:
    """What the worker's `watcher.ingest` does: project every devnet's CreditAggregator events."""
    engine = create_db_engine(settings)
    try:
        factory = create_session_factory(engine)
        for devnet in chains:
            aggregator = market.address(devnet.chain_id, "CreditAggregator")
            run_to_head(factory, make_watcher(devnet, aggregator, confirmations=0))
    finally:
        engine.dispose()


def test_the_served_typed_data_opens_a_loan_and_feeds_the_next_risk_profile(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    compiled: Any,
    chains: list[Any],
    tmp_path: Path,
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        token = sign_in(client, market.borrower)
        unwatched = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
        assert unwatched["risk"] == {
            "score": 600,
            "reasons": ["NO_HISTORY", "CHAIN_HISTORY_UNAVAILABLE"],  # unknown, not clean
        }
        _watch_to_head(credit_settings, market, chains)
        first = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
        assert first["risk"] == {"score": 600, "reasons": ["NO_HISTORY"]}

        quote = first["quotes"][0]
        typed = quote["typed_data"]
        signature = Account.sign_typed_data(market.borrower.key, full_message=typed).signature
        message = _checksummed(typed["message"])
        chain = load_chains(market_files.chains_file).by_chain_id(quote["chain_id"])
        engine = create_engine(f"sqlite:///{tmp_path / 'nonces.db'}")
        chain_metadata.create_all(engine)
        try:
            operator = EvmAdapter(chain, engine=engine, signer=market.operator)
            operator.send(
                ContractCall(
                    to_checksum_address(typed["domain"]["verifyingContract"]),
                    compiled.get("CreditAggregator").abi,
                    "openLoan",
                    (terms_tuple(message), message["borrower"], message["deadline"], signature),
                ),
                wait="mined",
            )
        finally:
            engine.dispose()

        _watch_to_head(credit_settings, market, chains)
        second = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
    # an open loan and nothing repaid yet: debt above twice the repaid history
    assert second["risk"] == {"score": 560, "reasons": ["EXPOSURE_ABOVE_HISTORY"]}
    # the borrower's acceptance nonce moved on: the new quotes ask for the next one
    same_chain = [q for q in second["quotes"] if q["chain_id"] == quote["chain_id"]]
    assert [q["typed_data"]["message"]["nonce"] for q in same_chain] == [message["nonce"] + 1]
