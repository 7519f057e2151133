"""`/v1/provider/defi-pool`: a DeFi provider declares (and reads back) the pool it stands for.

The provider comes from its key, never from the path or body; the pool is verified on-chain
before it is stored (`backend.credit.pools`), so a borrower's fan-out never meets a pool that
cannot be priced because of a typo.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from backend.auth.deps import CurrentProvider, Principal, provider_with_scope
from backend.auth.exceptions import MissingScope, WrongPrincipal
from backend.auth.scopes import PROFILE_WRITE
from backend.credit import pools
from backend.credit.api import Reader
from backend.credit.exceptions import (
    ChainUnreachable,
    DefiPoolNotSet,
    InvalidPool,
    NotADefiProvider,
    UnknownAsset,
    UnknownChain,
)
from backend.credit.schemas import DefiPoolIn, DefiPoolOut, RateModelOut
from backend.db import SessionDep
from backend.exceptions import Unauthorized, error_responses
from backend.providers.deps import app_settings
from backend.providers.exceptions import ProviderNotFound

router = APIRouter(prefix="/v1/provider", tags=["provider"])
_AUTH = (Unauthorized, WrongPrincipal, ProviderNotFound)


@router.get(
    "/defi-pool",
    response_model=DefiPoolOut,
    response_model_exclude_none=True,
    summary="The lending pool you stand for",
    responses=error_responses(*_AUTH, DefiPoolNotSet),
)
def get_defi_pool(provider: CurrentProvider, session: SessionDep) -> Any:
    return _out(pools.get_defi_pool(session, provider.provider_id))


@router.put(
    "/defi-pool",
    response_model=DefiPoolOut,
    summary="Declare the lending pool you stand for (checked on-chain first)",
    responses=error_responses(
        *_AUTH,
        MissingScope,
        NotADefiProvider,
        UnknownChain,
        UnknownAsset,
        InvalidPool,
        ChainUnreachable,
        validation=True,
    ),
)
async def put_defi_pool(
    body: DefiPoolIn,
    provider: Annotated[Principal, Depends(provider_with_scope(PROFILE_WRITE))],
    session: SessionDep,
    reader: Reader,
    request: Request,
) -> Any:
    """Replace your pool declaration. The address must hold a pool that lends exactly the
    registry's token for `asset` on `chain_id` and whose rate model credagg reproduces; on any
    failure your previous declaration stays."""
    declared = await run_in_threadpool(
        pools.set_defi_pool,
        session,
        provider.provider_id,
        chain_id=body.chain_id,
        pool=body.pool,
        asset=body.asset,
        settings=app_settings(request),
        reader=reader,
    )
    return _out(declared)


def _out(declared: pools.DeclaredPool) -> DefiPoolOut:
    reading = declared.reading
    if reading is None:
        return DefiPoolOut(chain_id=declared.chain_id, pool=declared.pool, asset=declared.asset)
    model = reading.model
    return DefiPoolOut(
        chain_id=declared.chain_id,
        pool=declared.pool,
        asset=declared.asset,
        checked_at_block=reading.block,
        rate_model=RateModelOut(
            base_rate=str(model.base_rate),
            slope1=str(model.slope1),
            slope2=str(model.slope2),
            optimal_utilization=str(model.optimal_utilization),
        ),
        total_supplied=str(reading.state.total_supplied),
        total_borrowed=str(reading.state.total_borrowed),
    )
