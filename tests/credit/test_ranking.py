"""Ranking: a total order by (effective annual rate, total cost), after the borrower's limits."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.credit.pricing import (
    BorrowerConstraints,
    NormalisedQuote,
    SecuredPreference,
    rank_quotes,
)

D = Decimal

quotes = st.builds(
    NormalisedQuote,
    quote_id=st.text("abcdef0123456789", min_size=1, max_size=6),
    provider=st.sampled_from(["pool-a", "pool-b", "bank", "fintech"]),
    effective_annual_rate=st.integers(0, 40).map(lambda p: D(p) / 100),
    total_cost=st.integers(0, 50),
    nominal_apr=st.just(D("0.1")),
    secured=st.booleans(),
    ltv=st.one_of(st.none(), st.integers(0, 100).map(lambda p: D(p) / 100)),
)
limits = st.builds(
    BorrowerConstraints,
    max_apr=st.one_of(st.none(), st.integers(0, 40).map(lambda p: D(p) / 100)),
    max_total_cost=st.one_of(st.none(), st.integers(0, 50)),
    preference=st.sampled_from(list(SecuredPreference)),
    max_ltv=st.one_of(st.none(), st.integers(0, 100).map(lambda p: D(p) / 100)),
)


@settings(max_examples=200, deadline=None)
# Quote ids are unique (the service issues them), which is what makes the key a total order.
@given(
    batch=st.lists(quotes, max_size=12, unique_by=lambda q: q.quote_id),
    constraints=limits,
    seed=st.integers(0, 2**32),
)
def test_ranking_is_a_total_order_consistent_with_the_key(
    batch: list[NormalisedQuote], constraints: BorrowerConstraints, seed: int
) -> None:
    """Output sorted by (rate, cost, id); any input order gives the same output; every quote is
    either ranked or excluded with a reason, and only the excluded ones break a limit."""
    result = rank_quotes(batch, constraints)
    keys = [q.rank_key for q in result.ranked]
    assert keys == sorted(keys)
    shuffled = list(batch)
    random.Random(seed).shuffle(shuffled)
    assert rank_quotes(shuffled, constraints).ranked == result.ranked
    assert len(result.ranked) + len(result.excluded) == len(batch)
    for quote in result.ranked:
        if constraints.max_apr is not None:
            assert quote.effective_annual_rate <= constraints.max_apr
        if constraints.max_total_cost is not None:
            assert quote.total_cost <= constraints.max_total_cost
        if constraints.preference is SecuredPreference.SECURED_ONLY:
            assert quote.secured
        if constraints.preference is SecuredPreference.UNSECURED_ONLY:
            assert not quote.secured
    assert all(item.reason for item in result.excluded)


def test_rate_first_then_total_cost() -> None:
    cheap_rate = NormalisedQuote("q1", "bank", D("0.08"), 900, D("0.07"))
    same_rate_cheaper = NormalisedQuote("q2", "pool", D("0.08"), 800, D("0.075"))
    pricier = NormalisedQuote("q3", "fintech", D("0.09"), 100, D("0.05"))
    ranked = rank_quotes([pricier, cheap_rate, same_rate_cheaper]).ranked
    assert [q.quote_id for q in ranked] == ["q2", "q1", "q3"]


def test_constraints_exclude_with_reasons() -> None:
    secured = NormalisedQuote("s", "pool", D("0.05"), 10, D("0.05"), secured=True, ltv=D("0.7"))
    unsecured = NormalisedQuote("u", "bank", D("0.12"), 30, D("0.11"))
    result = rank_quotes([secured, unsecured], BorrowerConstraints(max_apr=D("0.10")))
    assert [q.quote_id for q in result.ranked] == ["s"]
    assert "max_apr" in result.excluded[0].reason
    result = rank_quotes([secured, unsecured], BorrowerConstraints(max_ltv=D("0.6")))
    assert [q.quote_id for q in result.ranked] == ["u"]
    assert "LTV" in result.excluded[0].reason
    only = BorrowerConstraints(preference=SecuredPreference.UNSECURED_ONLY)
    assert [q.quote_id for q in rank_quotes([secured, unsecured], only).ranked] == ["u"]
