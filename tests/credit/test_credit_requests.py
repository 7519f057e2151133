"""The credit request journey end to end: two DeFi pools on two devnets, real lenders as
separate processes, the real app and database, and the quote_set receipt it issues."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.app import create_app
from backend.config import Settings
from backend.credit.chain import POOL_ABI
from backend.credit.pricing.defi_rates import ray_to_decimal
from backend.providers.models import ProviderKind
from backend.receipts.kinds import QuoteSetV1
from backend.receipts.models import Receipt
from chain_adapters.base import ContractCall
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.registry import load_chains
from tests.auth.conftest import bearer, create_provider, sign_in
from tests.credit.conftest import LenderProcess, MarketFiles, register_pool, run_in_session

AMOUNT = 50_000 * 10**6  # 50,000 USDC
REQUEST: dict[str, Any] = {
    "amount": str(AMOUNT),
    "asset": "USDC",
    "term_days": 90,
    "purpose": "working capital",
}


def add_pools(config: Settings, market: Any) -> dict[int, int]:
    """One DeFi provider per pool; {provider id: chain id}."""
    pools = {}
    for chain_id, chain in market.chains.items():
        pid, _ = create_provider(config, kind=ProviderKind.DEFI)
        register_pool(config, pid, chain_id, chain.contracts[chain.pool.label])
        pools[pid] = chain_id
    return pools


def add_lender(client: TestClient, config: Settings, lender: LenderProcess) -> int:
    pid, key = create_provider(config)
    answer = client.put("/v1/provider/webhook", json={"url": lender.url}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    lender.secret_file.write_text(answer.json()["secret"])
    return pid


def pool_rate_after(files: MarketFiles, market: Any, chain_id: int, amount: int) -> int:
    chain = load_chains(files.chains_file).by_chain_id(chain_id)
    pool = market.chains[chain_id].contracts[market.chains[chain_id].pool.label]
    return int(EvmAdapter(chain).call(ContractCall(pool, POOL_ABI, "borrowRateAfter", (amount,))))


def outcomes(body: dict[str, Any]) -> dict[int, str]:
    return {row["provider_id"]: row["outcome"] for row in body["not_quoted"]}


def test_ranked_quotes_from_pools_and_lenders_with_the_slow_one_timed_out(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    start_lender: Callable[..., LenderProcess],
) -> None:
    fast = start_lender("--apr", "0.0900", "--fee-bps", "50")
    slow = start_lender("--apr", "0.0100", "--delay", "5")
    declining = start_lender("--decline", "outside our lending policy")
    with TestClient(create_app(credit_settings)) as client:
        pools = add_pools(credit_settings, market)
        fast_id = add_lender(client, credit_settings, fast)
        slow_id = add_lender(client, credit_settings, slow)
        declining_id = add_lender(client, credit_settings, declining)
        token = sign_in(client, market.borrower)
        answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
        assert answer.status_code == 201, answer.text
        body = answer.json()

    quotes = body["quotes"]
    assert {q["provider_id"] for q in quotes} == {*pools, fast_id}
    assert outcomes(body) == {slow_id: "timed_out", declining_id: "declined"}
    reasons = {row["provider_id"]: row["reason"] for row in body["not_quoted"]}
    assert reasons[declining_id] == "outside our lending policy"
    assert slow.stats()["verified"] == 1  # it was asked, with a valid signature
    assert fast.stats()["verified"] == 1
    # ranked by effective annual rate, then total cost
    keys = [
        (Decimal(q["quote"]["effective_annual_rate"]), int(q["quote"]["total_cost"]))
        for q in quotes
    ]
    assert keys == sorted(keys)
    assert [q["rank"] for q in quotes] == list(range(1, len(quotes) + 1))

    for quote in quotes:
        doc = quote["quote"]
        assert Decimal(doc["effective_annual_rate"]) >= Decimal(doc["nominal_apr"])
        assert int(doc["total_cost"]) > int(doc["fees"])
        # gas of openLoan, priced through the ETH/USD and USDC/USD feeds, is part of the cost
        assert int(doc["gas_estimate"]) > 0
        assert int(quote["figures"]["gas_cost_in_asset"]) > 0
        typed = quote["typed_data"]
        assert typed["primaryType"] == "Acceptance"
        assert typed["domain"]["chainId"] == quote["chain_id"]
        agg = market.chains[quote["chain_id"]].contracts["CreditAggregator"]
        assert typed["domain"]["verifyingContract"].lower() == agg.lower()
        assert typed["message"]["principal"] == AMOUNT
        assert typed["message"]["borrower"] == market.borrower.address.lower()
        if quote["source"] == "defi":
            # the APR is the pool's own borrowRateAfter(amount), a ray, as an exact fraction
            ray = pool_rate_after(market_files, market, quote["chain_id"], AMOUNT)
            assert Decimal(doc["nominal_apr"]) == ray_to_decimal(ray)
            assert quote["figures"]["rate_ray"] == str(ray)
            assert int(doc["fees"]) == 0
        else:
            assert doc["nominal_apr"] == "0.09"
            assert doc["fees"] == str(AMOUNT * 50 // 10_000)

    # the quote_set receipt holds exactly the quotes shown, in the order shown
    receipt = run_in_session(
        credit_settings,
        lambda s: s.scalar(select(Receipt).where(Receipt.id == uuid.UUID(body["receipt_id"]))),
    )
    assert receipt.kind == "quote_set"
    assert receipt.tenant == f"wallet:{market.borrower.address.lower()}"
    payload = QuoteSetV1.model_validate(receipt.payload)
    assert payload.ranking == [q["id"] for q in quotes]
    assert [q.model_dump(exclude_none=True) for q in payload.quotes] == [q["quote"] for q in quotes]


def test_a_failing_lender_opens_its_breaker_then_gets_one_probe(
    credit_settings: Settings, market: Any, start_lender: Callable[..., LenderProcess]
) -> None:
    failing = start_lender("--fail")
    with TestClient(create_app(credit_settings)) as client:
        add_pools(credit_settings, market)
        pid = add_lender(client, credit_settings, failing)
        token = sign_in(client, market.borrower)

        def ask() -> str:
            answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
            assert answer.status_code == 201, answer.text
            return outcomes(answer.json())[pid]

        # credit_breaker_failures = 2: two errors open the breaker
        assert [ask(), ask()] == ["error", "error"]
        assert failing.stats()["received"] == 2
        assert ask() == "circuit_open"
        assert failing.stats()["received"] == 2  # skipped without a call
        time.sleep(credit_settings.credit_breaker_cooldown_seconds + 0.2)
        assert ask() == "error"  # the half-open probe went out, and failed
        assert failing.stats()["received"] == 3
        assert ask() == "circuit_open"  # re-opened with a fresh cool-down
        assert failing.stats()["received"] == 3


def test_a_sanctioned_wallet_gets_403_and_no_provider_hears_of_it(
    credit_settings: Settings,
    market: Any,
    market_files: MarketFiles,
    start_lender: Callable[..., LenderProcess],
) -> None:
    lender = start_lender()
    market_files.sanctions_file.write_text(
        f"# deny-list\n{market.borrower.address.upper().replace('0X', '0x')}  # listed\n"
    )
    with TestClient(create_app(credit_settings)) as client:
        add_lender(client, credit_settings, lender)
        token = sign_in(client, market.borrower)
        answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "sanctioned"
    assert lender.stats()["received"] == 0


def test_tenant_isolation_for_wallets_and_providers(
    credit_settings: Settings, market: Any, start_lender: Callable[..., LenderProcess]
) -> None:
    lender = start_lender("--apr", "0.12")
    with TestClient(create_app(credit_settings)) as client:
        pid, key = create_provider(credit_settings)
        answer = client.put("/v1/provider/webhook", json={"url": lender.url}, headers=bearer(key))
        lender.secret_file.write_text(answer.json()["secret"])
        other_pid, other_key = create_provider(credit_settings)  # no endpoint, no card
        token = sign_in(client, market.borrower)
        created = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
        request_id = created["id"]

        mine = client.get(f"/v1/credit-requests/{request_id}", headers=bearer(token))
        assert mine.status_code == 200
        assert mine.json()["quotes"] == created["quotes"]
        stranger = sign_in(client, market.liquidator)
        theirs = client.get(f"/v1/credit-requests/{request_id}", headers=bearer(stranger))
        assert theirs.status_code == 404
        assert theirs.json()["error"] == "credit_request_not_found"
        # a provider cannot read a borrower's request through the wallet route
        assert client.get(f"/v1/credit-requests/{request_id}", headers=bearer(key)).status_code in (
            401,
            403,
        )

        sent = client.get("/v1/provider/credit-requests", headers=bearer(key)).json()
        assert [(r["id"], r["outcome"]) for r in sent] == [(request_id, "quoted")]
        quotes = client.get("/v1/provider/quotes", headers=bearer(key)).json()
        assert [q["request_id"] for q in quotes] == [request_id]
        # the other provider was considered (ineligible) and sees only its own outcome
        others = client.get("/v1/provider/credit-requests", headers=bearer(other_key)).json()
        assert [(r["id"], r["outcome"]) for r in others] == [(request_id, "ineligible")]
        assert client.get("/v1/provider/quotes", headers=bearer(other_key)).json() == []
    assert created["not_quoted"] == [
        {
            "provider_id": other_pid,
            "outcome": "ineligible",
            "reason": "has neither a quote endpoint nor a rate card",
        }
    ]
    assert [q["provider_id"] for q in created["quotes"]] == [pid]
