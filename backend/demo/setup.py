"""The operator's preparation before the journey: the market's prices where the watcher sees
them, the providers (two pools, two lenders running as their own processes) and their
webhooks. The journey calls these as steps; each returns what the output should show."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy.engine import Engine

from backend.demo.chain import ETH_USD, ChainActions, MarketBook
from backend.demo.context import DemoContext
from backend.demo.http import Api
from backend.demo.lenders import LenderProcess, start_lender
from backend.demo.operator import DemoProvider, ensure_providers
from backend.demo.output import StepFailed
from backend.providers.models import ProviderKind
from chain_adapters.compiler import CompiledProject

#: The two lenders: one quotes at 9 % with a 0.5 % fee, one declines (and says why).
LENDERS = {
    "lender-quoting": ("--apr", "0.0900", "--fee-bps", "50"),
    "lender-declining": ("--decline", "outside our lending policy"),
}


def publish_prices(
    ctx: DemoContext, api: Api, book: MarketBook, compiled: CompiledProject, engine: Engine
) -> None:
    """Post the market's prices again once the watcher follows the feeds.

    The watcher learns a feed from CollateralManager's `AssetConfigured` and follows it from
    then on, so a feed's first answer (set when it was deployed, before it was configured) is
    never seen: without a USDC price there is no health factor, hence no alert. Waiting for the
    watcher to pass the market's blocks, then setting each price to its current value, gives
    the risk projection its prices without changing any.
    """
    for chain in ctx.chains:
        actions = ChainActions(ctx.chains, chain.chain_id, book, compiled, engine)
        head = int(actions.w3.eth.block_number)
        deadline = time.monotonic() + 60
        while watcher_cursor(api, chain.chain_id) < head:
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"the watcher did not reach block {head} of chain {chain.chain_id}",
                    json.dumps(api.get("/v1/watcher/status"), indent=2),
                )
            time.sleep(0.5)
        actions.set_price("USDC/USD", 1)
        actions.set_price("ETH/USD", ETH_USD)


def watcher_cursor(api: Api, chain_id: int) -> int:
    status = api.get("/v1/watcher/status")
    row = next((c for c in status["chains"] if c["chain_id"] == chain_id), None)
    return int(row["cursor"]) if row is not None and row.get("cursor") is not None else -1


def pool_role(book: MarketBook, chain_id: int) -> str:
    return f"{book.pools[chain_id]}-{chain_id}"


def set_up_providers(
    ctx: DemoContext,
    api: Api,
    book: MarketBook,
    lenders: list[LenderProcess],
    facts: dict[str, Any],
) -> dict[str, DemoProvider]:
    """Both pools registered, both lenders started (appended to `lenders`, so the caller
    stops them whatever happens next) with their webhook secrets handed over."""
    roles = {pool_role(book, cid): ProviderKind.DEFI for cid in sorted(book.pools)}
    roles.update(dict.fromkeys(LENDERS, ProviderKind.TRADITIONAL))
    providers = ensure_providers(ctx.settings, api, ctx.state_dir, roles)
    for chain_id in sorted(book.pools):
        pool = providers[pool_role(book, chain_id)]
        api.put(  # the lender's own API: the pool is checked on-chain before it is stored
            "/v1/provider/defi-pool",
            {"chain_id": chain_id, "pool": book.pool(chain_id), "asset": "USDC"},
            token=pool.key,
        )
        api.call(
            "PATCH",
            "/v1/provider/profile",
            token=pool.key,
            json_body={"display_name": f"{book.pools[chain_id]} (DeFi, chain {chain_id})"},
        )
        facts[pool_role(book, chain_id)] = f"id {pool.id} pool {book.pool(chain_id)}"
    for role, args in LENDERS.items():
        lender = start_lender(role, ctx.state_dir / "lenders", *args)
        lenders.append(lender)
        key = providers[role].key
        hook = api.put("/v1/provider/webhook", {"url": lender.url}, token=key)
        secret = hook.get("secret")
        if not secret:  # a reused provider keeps its secret: rotate to hand the new process one
            secret = api.post("/v1/provider/webhook/rotate-secret", token=key)["secret"]
        lender.secret_file.write_text(secret, encoding="utf-8")
        facts[role] = f"id {providers[role].id} pid {lender.process.pid} {lender.url}"
    return providers
