"""Real databases for the receipts log: a freshly migrated one per test.

PostgreSQL when `DATABASE_URL` points at one (a throwaway `credagg_test_<random>` database next
to it, dropped afterwards), else a SQLite file: the same switch as `tests/backend/conftest.py`.
The log is global and append-only, so each test gets its own database rather than sharing one.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from backend.config import Settings
from backend.db import SessionFactory, create_db_engine, create_session_factory, migrate
from backend.kit.throwaway_db import fresh_postgres_database, is_postgres
from backend.receipts.models import ReceiptKind
from backend.receipts.service import ReceiptDraft, signer_from_settings
from backend.receipts.signing import ReceiptSigner
from chain_adapters.deploy import manifest_path
from chain_adapters.devnet import Devnet
from chain_adapters.registry import dump_chains
from hardhat_fixtures.scenarios import Market


@pytest.fixture
def receipts_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in list(os.environ):
        if name.startswith("CREDAGG_"):
            monkeypatch.delenv(name)
    base = os.environ.get("DATABASE_URL")
    if is_postgres(base):
        assert base is not None
        with fresh_postgres_database(base) as url:
            settings = Settings(_env_file=None, environment="test", database_url=url)
            migrate(settings)
            yield settings
    else:
        url = f"sqlite:///{tmp_path / 'receipts.db'}"
        settings = Settings(_env_file=None, environment="test", database_url=url)
        migrate(settings)
        yield settings


@pytest.fixture
def engine(receipts_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(receipts_settings)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def signer(receipts_settings: Settings) -> ReceiptSigner:
    return signer_from_settings(receipts_settings)


def create_draft(
    *,
    kind: ReceiptKind = ReceiptKind.REPAYMENT,
    tenant: str = "provider:acme",
    subject: str = "loan:1",
    payload: Mapping[str, Any] | None = None,
    corrects_id: Any = None,
    n: int = 0,
) -> ReceiptDraft:
    """A valid draft (its kind's sample payload, varied by `n`); override what the test is about."""
    return ReceiptDraft(
        kind=kind,
        tenant=tenant,
        subject=subject,
        payload=payload if payload is not None else sample_payload(kind, n=n),
        corrects_id=corrects_id,
    )


def _hex(tag: str, n: int, size: int) -> str:
    return "0x" + hashlib.sha256(f"{tag}:{n}".encode()).hexdigest()[: 2 * size]


def _asset(symbol: str = "USDC", decimals: int = 6) -> dict[str, Any]:
    return {
        "chain_id": 31337,
        "address": _hex(symbol, 0, 20),
        "symbol": symbol,
        "decimals": decimals,
    }


def _event(n: int) -> dict[str, Any]:
    return {
        "chain_id": 31337,
        "contract": _hex("aggregator", 0, 20),
        "tx_hash": _hex("tx", n, 32),
        "block_number": 100 + n,
        "block_hash": _hex("block", n, 32),
        "log_index": n % 7,
    }


def sample_payload(kind: ReceiptKind, *, n: int = 0) -> dict[str, Any]:
    """A valid payload of `kind` (schema v1); `n` varies the values so receipts differ."""
    if kind is ReceiptKind.REPAYMENT:
        amount = 1_000_000 + n
        return {
            "loan_id": str(n + 1),
            "payer": _hex("payer", n, 20),
            "debt_asset": _asset(),
            "amount": str(amount),
            "principal_paid": str(amount - 2_500),
            "interest_paid": "2000",
            "fees_paid": "500",
            "outstanding_after": str(10**24 + n),  # beyond 2**53: a string, as it must be
            "event": _event(n),
        }
    if kind is ReceiptKind.QUOTE_SET:
        quotes = [_quote(f"q{n}-{i}", i) for i in range(2)]
        return {
            "credit_request_id": f"cr-{n}",
            "borrower": _hex("borrower", n, 20),
            "requested_asset": _asset(),
            "requested_amount": "5000000000",
            "quotes": quotes,
            "ranking": [quote["quote_id"] for quote in reversed(quotes)],
            "ranking_rule": "lowest-effective-annual-rate",
            "quoted_at": "2025-11-23T12:00:00Z",
        }
    if kind is ReceiptKind.ACCEPTANCE:
        return {
            "credit_request_id": f"cr-{n}",
            "quote_id": f"q{n}-0",
            "quote_set_receipt_id": str(uuid.UUID(int=n)),
            "borrower": _hex("borrower", n, 20),
            "loan_id": str(n + 1),
            "debt_asset": _asset(),
            "principal": "5000000000",
            "nominal_apr": "0.0525",
            "day_count": "act/365",
            "term_seconds": 30 * 86_400,
            "acceptance_digest": _hex("digest", n, 32),
            "accepted_at": "2025-11-23T12:05:00.250Z",
            "opened_by": _event(n),
        }
    if kind is ReceiptKind.LIQUIDATION:
        return {
            "loan_id": str(n + 1),
            "liquidator": _hex("liquidator", n, 20),
            "collateral_asset": _asset("WETH", 18),
            "collateral_seized": "1500000000000000000",
            "debt_asset": _asset(),
            "debt_repaid": "4200000000",
            "price": "2800.5",
            "price_feed": _hex("feed", 0, 20),
            "health_factor_before": "0.97",
            "event": _event(n),
        }
    if kind is ReceiptKind.BILLING_STATEMENT:
        return {
            "statement_id": f"st-{n}",
            "provider": "acme",
            "period_start": "2025-11-01T00:00:00Z",
            "period_end": "2025-12-01T00:00:00Z",
            "currency_asset": _asset(),
            "lines": [
                {
                    "code": "quote",
                    "description": "quotes served",
                    "quantity": 120 + n,
                    "unit_price": "10000",
                    "amount": str((120 + n) * 10_000),
                },
                {
                    "code": "loan",
                    "description": "loans opened",
                    "quantity": 3,
                    "unit_price": "2500000",
                    "amount": "7500000",
                },
            ],
            "total": str((120 + n) * 10_000 + 7_500_000),
        }
    return {"seq": n, "head": _hex("audit", n, 32)}  # audit_checkpoint


def _quote(quote_id: str, i: int) -> dict[str, Any]:
    return {
        "quote_id": quote_id,
        "provider": "defi:pool-a" if i else "acme",
        "source": "defi" if i else "traditional",
        "debt_asset": _asset(),
        "principal": "5000000000",
        "term_seconds": 30 * 86_400,
        "nominal_apr": f"0.0{4 + i}",
        "effective_annual_rate": f"0.0{4 + i}12",
        "day_count": "act/365",
        "fees": "2500000",
        "gas_estimate": "210000000000000",
        "total_cost": "19000000",
        "collateral_asset": _asset("WETH", 18),
        "collateral_amount": "3000000000000000000",
        "ltv": "0.6",
        "liquidation_price": "2083.33",
        "expires_at": "2025-11-23T12:10:00Z",
    }


def anchoring_settings(
    settings: Settings, chains: list[Devnet], market: Market, tmp_path: Path, **overrides: Any
) -> Settings:
    """`settings` plus what the `receipts.anchor` task reads: a chains file naming both devnets
    and deployment manifests holding the market's ReceiptAnchor on each."""
    data_dir = tmp_path / "data"
    for devnet in chains:
        path = manifest_path(data_dir, devnet.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        contract = {"address": market.address(devnet.chain_id, "ReceiptAnchor")}
        path.write_text(
            json.dumps({"chain_id": devnet.chain_id, "contracts": {"ReceiptAnchor": contract}}),
            encoding="utf-8",
        )
    chains_toml = tmp_path / "chains.toml"
    chains_toml.write_text(dump_chains(d.chain_config() for d in chains), encoding="utf-8")
    return settings.model_copy(
        update={"data_dir": data_dir, "chains_file": chains_toml, **overrides}
    )
