"""A DeFi provider declares the lending pool it stands for; credagg checks it on-chain first.

Why check before storing: a wrong address would otherwise surface only as an error in every
borrower's fan-out. Declaring a pool therefore proves, against the chain itself, that the
address holds code, that the pool lends exactly the registry's token for that symbol on that
chain (`asset()`), and that the pool's rate model is one our pricing reproduces to the wei of
ray at probe amounts (the same check the fan-out makes once per block). Only then is the row
written; any failure leaves the previous declaration as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend.config import Settings
from backend.credit.assets import asset_registry
from backend.credit.chain import ChainReader
from backend.credit.exceptions import (
    ChainUnreachable,
    DefiPoolNotSet,
    InvalidPool,
    NotADefiProvider,
    UnknownChain,
)
from backend.credit.pool_state import PoolReading, read_pool_at
from backend.credit.repository import ProviderCreditRepository
from backend.providers.models import ProviderKind
from chain_adapters.base import ContractCall
from chain_adapters.exceptions import ChainError, RPCUnavailable

ASSET_ABI = [
    {
        "type": "function",
        "name": "asset",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address"}],
    }
]


@dataclass(frozen=True)
class DeclaredPool:
    chain_id: int
    pool: str
    asset: str
    reading: PoolReading | None  # the pool as read now (None when only the row is shown)


def get_defi_pool(session: Session, provider_id: int) -> DeclaredPool:
    row = ProviderCreditRepository(session, provider_id).defi_pool()
    if row is None:
        raise DefiPoolNotSet(
            "you have not declared a lending pool yet",
            hint='PUT /v1/provider/defi-pool with {"chain_id": ..., "pool": "0x...", '
            '"asset": "USDC"}.',
        )
    return DeclaredPool(row.chain_id, row.pool_address, row.asset, None)


def set_defi_pool(
    session: Session,
    provider_id: int,
    *,
    chain_id: int,
    pool: str,
    asset: str,
    settings: Settings,
    reader: ChainReader,
) -> DeclaredPool:
    repo = ProviderCreditRepository(session, provider_id)
    if repo.kind() != ProviderKind.DEFI.value:
        raise NotADefiProvider(
            "only a defi provider declares a lending pool",
            hint="Traditional lenders quote through PUT /v1/provider/webhook or "
            "PUT /v1/provider/rate-card.",
        )
    if chain_id not in reader.chain_ids():
        raise UnknownChain(
            f"chain_id: {chain_id} is not a chain credagg is configured for",
            hint=f"Use one of {reader.chain_ids()}.",
        )
    [entry] = asset_registry(settings.credit_assets_file).require(asset, chain_id, "asset")
    pool = pool.lower()
    reading = _check_pool(reader, chain_id, pool, entry.address.lower(), asset)
    repo.set_defi_pool(chain_id, pool, asset)
    return DeclaredPool(chain_id, pool, asset, reading)


def _check_pool(
    reader: ChainReader, chain_id: int, pool: str, token: str, symbol: str
) -> PoolReading:
    adapter = reader.adapter(chain_id)
    try:
        if not adapter.get_code(pool):
            raise InvalidPool(
                f"pool: {pool} holds no contract on chain {chain_id}",
                hint="Send the address of the deployed lending pool contract.",
            )
        try:
            lent = str(adapter.call(ContractCall(pool, ASSET_ABI, "asset", ()))).lower()
            block = adapter.block("latest").number
            reading = read_pool_at(reader, chain_id, pool, block)
        except RPCUnavailable:
            raise
        except (ChainError, ValueError, ArithmeticError) as exc:  # no such function, odd model
            raise InvalidPool(
                f"pool: {pool} on chain {chain_id} does not answer the lending-pool interface "
                f"({type(exc).__name__})",
                hint="The pool must expose asset(), baseRate(), slope1(), slope2(), "
                "optimalUtilization(), totalSupplied(), totalBorrowed() and "
                "borrowRateAfter(uint256).",
            ) from exc
    except RPCUnavailable as exc:
        raise ChainUnreachable(
            f"chain {chain_id} did not answer while checking the pool; nothing was changed",
            hint="Retry later.",
        ) from exc
    if lent != token:
        raise InvalidPool(
            f"pool: {pool} lends {lent}, not {symbol} ({token}) on chain {chain_id}",
            hint=f"Declare the pool's own asset, or the pool that lends {symbol}.",
        )
    disagreement = reading.model_disagreement()
    if disagreement is not None:
        raise InvalidPool(
            f"pool: its rate model is not one credagg can price: {disagreement}",
            hint="credagg prices kinked (two-slope) rate models; this pool's borrowRateAfter "
            "does not follow one.",
        )
    return reading
