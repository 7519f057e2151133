"""Rate card rules: a valid card round-trips; each broken rule is refused naming its field."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from backend.providers.rate_cards import MAX_SCORE, MIN_SCORE, RateCard


def valid_card() -> dict[str, Any]:
    return {
        "amounts": [
            {"asset": "USDC", "min_amount": "1000000", "max_amount": "50000000000"},
            {"asset": "WETH", "min_amount": 10**16, "max_amount": 10**20},
        ],
        "apr_bands": [
            {"min_score": 580, "max_score": 669, "apr": "0.2400"},
            {"min_score": 300, "max_score": 579, "apr": "0.3600"},
            {"min_score": 670, "max_score": 850, "apr": "0.0950"},
        ],
        "origination_fee": {"bps": 150, "fixed": {"USDC": "5000000"}},
        "terms_days": [90, 30, 365],
        "required_kyc_tier": 2,
        "collateral": [{"asset": "WETH", "max_ltv": "0.75"}],
    }


def test_a_valid_card_round_trips_with_decimal_strings() -> None:
    card = RateCard.model_validate(valid_card())
    document = card.document()
    assert [band["min_score"] for band in document["apr_bands"]] == [300, 580, 670]
    assert document["apr_bands"][0]["apr"] == "0.3600"
    assert document["amounts"][1]["max_amount"] == str(10**20)
    assert document["terms_days"] == [30, 90, 365]
    assert RateCard.model_validate(document) == card
    assert card.apr_for_score(600) == Decimal("0.2400")
    assert card.apr_for_score(850) == Decimal("0.0950")
    assert card.max_ltv("WETH") == Decimal("0.75")


def _break(path: list[Any], value: Any) -> dict[str, Any]:
    card = copy.deepcopy(valid_card())
    target: Any = card
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return card


_DELETE = object()

BROKEN = [
    (["apr_bands", 0, "apr"], 0.24, "apr_bands.0.apr", "decimal string"),
    (["apr_bands", 0, "apr"], "24%", "apr_bands.0.apr", "not a decimal"),
    (["apr_bands", 0, "apr"], "24", "apr_bands.0.apr", "not a percentage"),
    (["apr_bands", 0, "min_score"], 581, "apr_bands", "fall in no band"),
    (["apr_bands", 0, "min_score"], 570, "apr_bands", "overlaps"),
    (["apr_bands", 2, "max_score"], 800, "apr_bands", "must end at 850"),
    (["apr_bands", 2, "max_score"], 900, "apr_bands.2.max_score", "less than or equal to 850"),
    (["apr_bands", 1, "min_score"], 200, "apr_bands.1.min_score", "greater than or equal"),
    (["amounts", 0, "max_amount"], "10", "amounts.0", "below min_amount"),
    (["amounts", 0, "min_amount"], "1.5", "amounts.0.min_amount", "smallest unit"),
    (["amounts", 0, "min_amount"], 0, "amounts.0", "must be positive"),
    (["amounts", 1, "asset"], "USDC", "amounts", "appears twice"),
    (["amounts", 0, "asset"], "usdc", "amounts.0.asset", "pattern"),
    (["terms_days"], [30, 30], "terms_days", "listed twice"),
    (["terms_days"], [0], "terms_days.0", "greater than or equal to 1"),
    (["required_kyc_tier"], 9, "required_kyc_tier", "less than or equal to 3"),
    (["collateral", 0, "max_ltv"], "1.2", "collateral.0.max_ltv", "at most 1"),
    (["origination_fee", "bps"], 20000, "origination_fee.bps", "less than or equal"),
    (["origination_fee", "fixed"], {"DAI": "1"}, "", "does not lend"),
    (["amounts"], [], "amounts", "at least 1"),
    (["unknown_rule"], 1, "unknown_rule", "Extra inputs"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), BROKEN)
def test_each_rule_error_names_its_field(
    path: list[Any], value: Any, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        RateCard.model_validate(_break(path, value))
    errors = caught.value.errors()
    locations = [".".join(str(part) for part in error["loc"]) for error in errors]
    assert field in locations, (locations, errors)
    assert any(message in error["msg"] for error in errors), errors


@st.composite
def tilings(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Contiguous bands from some lowest score up to 850."""
    low = draw(st.integers(MIN_SCORE, MAX_SCORE))
    cuts = sorted(draw(st.sets(st.integers(low + 1, MAX_SCORE), max_size=10)) if low < 850 else [])
    starts = [low, *cuts]
    ends = [start - 1 for start in cuts] + [MAX_SCORE]
    return list(zip(starts, ends, strict=True))


def _card_with(bands: list[tuple[int, int]]) -> dict[str, Any]:
    card = valid_card()
    card["apr_bands"] = [
        {"min_score": lo, "max_score": hi, "apr": f"0.{index:02d}"}
        for index, (lo, hi) in enumerate(bands)
    ]
    return card


@given(bands=tilings(), order=st.randoms())
def test_contiguous_bands_are_accepted_in_any_order(
    bands: list[tuple[int, int]], order: Any
) -> None:
    shuffled = list(bands)
    order.shuffle(shuffled)
    card = RateCard.model_validate(_card_with(shuffled))
    for lo, hi in bands:
        assert card.apr_for_score(lo) == card.apr_for_score(hi) is not None
    assert card.apr_for_score(bands[0][0] - 1) is None


@given(
    bands=tilings().filter(lambda b: len(b) >= 2),
    which=st.integers(0),
    shift=st.integers(-20, 20).filter(bool),
)
def test_moving_one_boundary_opens_a_gap_or_an_overlap(
    bands: list[tuple[int, int]], which: int, shift: int
) -> None:
    index = 1 + which % (len(bands) - 1)  # a band that has a predecessor
    lo, hi = bands[index]
    moved = max(MIN_SCORE, min(hi, lo + shift))
    if moved == lo:
        return
    broken = list(bands)
    broken[index] = (moved, hi)
    with pytest.raises(ValidationError) as caught:
        RateCard.model_validate(_card_with(broken))
    messages = " ".join(error["msg"] for error in caught.value.errors())
    assert ("overlaps" in messages) if moved < lo else ("fall in no band" in messages)
