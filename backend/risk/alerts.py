"""Which loans a batch of fresh logs pushes below a health threshold, at a cost set by the batch.

An alert for a fresh log depends only on the state just before it, and that state, for the
loans the log can touch, is small: those loans' own effects, the config of each asset they
borrow or pledge, and the price of each feed those configs name. `alert_effects` loads exactly
that (plus the fresh window itself) instead of the chain's whole history, and `crossings` replays
it. Replaying a subset is exact because every value `crossings` reads for a loan it reports
(its state, its assets' configs, their feeds' prices, whether a feed's update touched it) comes
only from effects in that subset; loans outside it cannot be reported, since the set is a
superset of every loan a fresh effect can touch (see `alert_effects`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from backend.risk.repository import Position, RiskRepository
from backend.risk.state import Effect, RiskState

#: A log's identity inside one chain: (block_hash, log_index).
LogKey = tuple[str, int]


def alert_effects(
    repo: RiskRepository, chain_id: int, fresh: set[LogKey], first: Position, last: Position
) -> list[Effect]:
    """The effects that decide the alerts of the `fresh` logs (positions `first`..`last`).

    Touchable loans: those a fresh loan effect names, and those borrowing or pledging an asset
    that is freshly configured or that was ever (up to `last`) configured with a feed a fresh
    price or config names. Their history before `first` is loaded, and for every asset they use
    only the last config before `first` and for every feed those configs name only the last
    price before `first`; every effect in the window itself follows, except other loans' ones.
    """
    window = repo.effects_between(chain_id, first, last)
    fresh_effects = [e for e in window if (e.block_hash, e.position[1]) in fresh]
    feeds = {e.feed for e in fresh_effects if e.table != "loan"}
    assets = {e.asset for e in fresh_effects if e.table == "config" and e.asset}
    assets |= repo.assets_priced_by(chain_id, feeds, until=last)
    loan_ids = {e.loan_id for e in fresh_effects if e.table == "loan"}
    loan_ids |= {e.loan_id for e in window if e.kind == "opened" and _uses(e, assets)}
    loan_ids |= repo.loans_using(chain_id, assets, before=first)
    history = repo.loan_history(chain_id, loan_ids, before=first)
    in_window = [e for e in window if e.table != "loan" or e.loan_id in loan_ids]
    used = {
        asset
        for e in [*history, *in_window]
        if e.kind == "opened"
        for asset in (e.asset, e.collateral_asset)
        if asset
    }
    configs = repo.latest_configs(chain_id, used, before=first)
    priced = {c.feed for c in [*configs, *in_window] if c.table == "config" and c.asset in used}
    prices = repo.latest_prices(chain_id, priced, before=first)
    return sorted([*history, *configs, *prices, *in_window], key=lambda e: e.position)


def _uses(opened: Effect, assets: set[str]) -> bool:
    return opened.asset in assets or opened.collateral_asset in assets


def crossings(
    chain_id: int, effects: Iterable[Effect], fresh: set[LogKey], thresholds: Sequence[Decimal]
) -> list[dict[str, Any]]:
    """Replay `effects` in order; at each fresh one, the alert rows of the loans whose health
    it moved from at-or-above a threshold (or undefined) to below it."""
    state = RiskState()
    alerts: list[dict[str, Any]] = []
    for effect in effects:
        if (effect.block_hash, effect.position[1]) not in fresh:
            state.apply(effect)
            continue
        touched = state.loans_priced_by(effect.feed) if effect.table != "loan" else []
        before = {i: state.health_factor(i) for i in touched or [effect.loan_id]}
        for loan_id in state.apply(effect):
            after = state.health_factor(loan_id)
            if after is None:
                continue
            was = before.get(loan_id)
            for threshold in thresholds:
                if after < threshold and (was is None or was >= threshold):
                    alerts.append(_alert(chain_id, effect, state, loan_id, threshold, after))
    return alerts


def _alert(
    chain_id: int,
    effect: Effect,
    state: RiskState,
    loan_id: int,
    threshold: Decimal,
    health: Decimal,
) -> dict[str, Any]:
    loan = state.loans[loan_id]
    return {
        "chain_id": chain_id,
        "block_hash": effect.block_hash,
        "log_index": effect.position[1],
        "block_number": effect.position[0],
        "loan_id": str(loan_id),
        "threshold": str(threshold),
        "borrower": loan.borrower,
        "provider": loan.provider,
        "health_factor": str(health),
        "price": _plain(state.price(loan.collateral_asset)),
    }


def _plain(value: Decimal | None) -> str | None:
    """A decimal without exponent or trailing zeros ("1800", "0.5"), or None."""
    return None if value is None else format(value.normalize(), "f")
