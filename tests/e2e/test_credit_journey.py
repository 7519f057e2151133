"""The credit journey end to end (issue 5's check), with every part real.

Two DeFi pools on two Anvil devnets and three lenders running as separate processes
(`scripts/example_lender.py`: one quotes, one answers after the deadline, one declines). A wallet
signs in with SIWE, asks for credit, gets ranked quotes, signs one with EIP-712 (eth-account) and
accepts it; CreditAggregator holds the loan; the pool's lender receives a signed `loan.opened`
webhook at a real HTTP receiver (sent by the delivery function the Celery task runs); the
quote_set and acceptance receipts' proof bundles verify with `credagg verify --offline`, and,
once the log is anchored on both devnets, online against both chains.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete
from web3 import Web3
from web3.types import RPCEndpoint

from backend.app import create_app
from backend.config import Settings
from backend.credit.chain import LOAN_ACTIVE
from backend.db import create_db_engine, create_session_factory, session_scope
from backend.providers.deps import DISPATCHER_STATE
from backend.providers.models import ProviderKind
from backend.providers.pii import field_cipher
from backend.providers.webhooks.delivery import WebhookSender
from backend.receipts.anchoring import anchor_once, refresh
from backend.receipts.service import signer_from_settings
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.store import chain_metadata, chain_nonces, chain_transactions
from chain_adapters.registry import load_chains
from tests.auth.conftest import bearer, create_key, create_provider, sign_in
from tests.credit.conftest import (  # noqa: F401 - the package's autouse fixtures, applied here
    LenderProcess,
    MarketFiles,
    _no_credagg_env,
    _only_this_tests_providers,
    register_pool,
    run_in_session,
)
from tests.credit.test_acceptance import accept, chain_loan, request_quotes, sign
from tests.credit.test_credit_requests import AMOUNT, add_lender, outcomes
from tests.support.webhooks import Receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_nonce_store(backend_database_url: str) -> None:
    """The chain is reverted for each test; the operator's nonce row must not run ahead of it."""
    config = Settings(_env_file=None, environment="test", database_url=backend_database_url)

    def clear(session: Any) -> None:
        session.execute(delete(chain_transactions))
        session.execute(delete(chain_nonces))

    run_in_session(config, clear)


def add_notified_pools(
    client: TestClient, config: Settings, scenario: Any, receiver: Receiver
) -> dict[int, int]:
    """One DeFi provider per pool, each with its webhook at `receiver`; {provider: chain}."""
    pools: dict[int, int] = {}
    for chain_id, chain in scenario.chains.items():
        pid, key = create_provider(config, kind=ProviderKind.DEFI)
        register_pool(config, pid, chain_id, chain.contracts[chain.pool.label])
        hook = client.put("/v1/provider/webhook", json={"url": receiver.url}, headers=bearer(key))
        assert hook.status_code == 200, hook.text
        receiver.secrets.append(hook.json()["secret"])
        pools[pid] = chain_id
    return pools


def verify(paths: Sequence[Path], pubkey: str, *options: str) -> tuple[int, dict[str, Any]]:
    args = [sys.executable, "-m", "backend.cli", "verify", *map(str, paths), "--pubkey", pubkey]
    done = subprocess.run(
        [*args, *options], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def fetch_bundles(
    client: TestClient, auditor: str, receipt_ids: Sequence[str], folder: Path
) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for receipt_id in receipt_ids:
        answer = client.get(f"/v1/receipts/{receipt_id}/proof", headers=bearer(auditor))
        assert answer.status_code == 200, answer.text
        path = folder / f"{receipt_id}.json"
        path.write_text(answer.text, encoding="utf-8")
        paths.append(path)
    return paths


def test_sign_in_request_rank_accept_open_notify_and_verify(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    start_lender: Callable[..., LenderProcess],
    receiver: Receiver,
    compiled: Any,
    tmp_path: Path,
) -> None:
    quoting = start_lender("--apr", "0.0900", "--fee-bps", "50")
    slow = start_lender("--apr", "0.0100", "--delay", "5")
    declining = start_lender("--decline", "outside our lending policy")
    queued: list[int] = []
    app = create_app(credit_settings)
    setattr(app.state, DISPATCHER_STATE, queued.extend)  # what Celery would be handed
    with TestClient(app) as client:
        pools = add_notified_pools(client, credit_settings, market, receiver)
        quoting_id = add_lender(client, credit_settings, quoting)
        slow_id = add_lender(client, credit_settings, slow)
        declining_id = add_lender(client, credit_settings, declining)

        # 1. SIWE, then one credit request: ranked quotes, and who did not quote and why
        token = sign_in(client, market.borrower)
        body = request_quotes(client, token)
        assert {q["provider_id"] for q in body["quotes"]} == {*pools, quoting_id}
        assert outcomes(body) == {slow_id: "timed_out", declining_id: "declined"}
        keys = [
            (Decimal(q["quote"]["effective_annual_rate"]), int(q["quote"]["total_cost"]))
            for q in body["quotes"]
        ]
        assert keys == sorted(keys)

        # 2. the best pool quote, signed with EIP-712 and accepted
        quote = next(q for q in body["quotes"] if q["provider_id"] in pools)
        answer = accept(client, token, quote["id"], sign(market.borrower, quote["typed_data"]))
        assert answer.status_code == 201, answer.text
        opened = answer.json()
        loan = client.get(f"/v1/loans/{opened['id']}", headers=bearer(token)).json()
        assert loan["quote_id"] == quote["id"]

        # 4. receipts: the quote set and the acceptance, as an auditor downloads them
        auditor = create_key(credit_settings).token
        receipt_ids = [body["receipt_id"], opened["receipt_id"]]
        offline_paths = fetch_bundles(client, auditor, receipt_ids, tmp_path / "offline")

    # 3. the loan is on-chain, as signed
    aggregator = quote["typed_data"]["domain"]["verifyingContract"]
    on_chain = chain_loan(market_files, quote["chain_id"], aggregator, int(opened["loan_id"]))
    assert on_chain["borrower"].lower() == market.borrower.address.lower()
    assert on_chain["principal"] == AMOUNT
    assert on_chain["rateBps"] == quote["typed_data"]["message"]["rateBps"]
    assert on_chain["state"] == LOAN_ACTIVE

    # the lender's signed webhook, sent by the function the `providers.deliver` task runs
    assert len(queued) == 1
    engine = create_db_engine(credit_settings)
    try:
        sender = WebhookSender(create_session_factory(engine), field_cipher(credit_settings))
        try:
            result = sender.attempt(queued[0])
        finally:
            sender.close()
    finally:
        engine.dispose()
    assert result.status == "delivered", result
    [delivered] = receiver.verified()
    event = delivered.json()
    assert event["type"] == "loan.opened"
    assert event["data"]["loan_id"] == opened["loan_id"]
    assert event["data"]["tx_hash"] == opened["tx_hash"]
    assert event["data"]["quote_id"] == quote["id"]

    pubkey = signer_from_settings(credit_settings).public_key_bytes.hex()
    code, report = verify(offline_paths, pubkey, "--offline")
    assert code == 0, report
    assert [b["result"] for b in report["bundles"]] == ["valid", "valid"], report

    # 5. anchored on both devnets (final after 70 blocks), the bundles verify against the chains
    nonce_engine = create_engine(f"sqlite:///{tmp_path / 'anchor-nonces.db'}")
    chain_metadata.create_all(nonce_engine)
    chains = list(load_chains(market_files.chains_file))
    targets = {
        chain.chain_id: (
            EvmAdapter(chain, engine=nonce_engine, signer=market.operator),
            market.address(chain.chain_id, "ReceiptAnchor"),
        )
        for chain in chains
    }
    abi = compiled.get("ReceiptAnchor").abi
    signer = signer_from_settings(credit_settings)
    engine = create_db_engine(credit_settings)
    try:
        factory = create_session_factory(engine)
        with session_scope(factory) as session:
            records = anchor_once(session, signer=signer, adapters=targets, abi=abi)
        assert {r.chain_id for r in records} == {c.chain_id for c in chains}
        for chain in chains:
            Web3(Web3.HTTPProvider(chain.rpc_urls[0])).provider.make_request(
                RPCEndpoint("anvil_mine"), [hex(70)]
            )
        with session_scope(factory) as session:
            refresh(session, targets)
    finally:
        engine.dispose()
        nonce_engine.dispose()
    with TestClient(create_app(credit_settings)) as client:
        online_paths = fetch_bundles(client, auditor, receipt_ids, tmp_path / "online")
    rpcs = [option for chain in chains for option in ("--rpc", chain.rpc_urls[0])]
    code, report = verify(online_paths, pubkey, *rpcs)
    assert code == 0, report
    assert [b["result"] for b in report["bundles"]] == ["valid", "valid"], report
    anchored = {a["chain_id"] for a in json.loads(online_paths[1].read_text())["anchors"]}
    assert anchored == {c.chain_id for c in chains}
