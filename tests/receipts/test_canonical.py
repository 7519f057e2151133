"""RFC 8785 conformance of `canonical_json`, and the laws a hashing format has to obey."""

from __future__ import annotations

import json
import math
import random
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.receipts.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalizationError,
    _slow_canonical_json,
    canonical_json,
    loads_json,
)

# RFC 8785 §3.2.2 ("Serialization of Primitive Data Types"), the input exactly as printed.
RFC8785_PRIMITIVES_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC8785_PRIMITIVES_OUTPUT = (
    r"""{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"""
    r""""string":"€$\u000f\nA'B\"\\\\\"/"}"""
)

# RFC 8785 §3.2.3 ("Sorting of Object Properties"), the input exactly as printed.
RFC8785_SORTING_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC8785_SORTED_VALUES = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]


def test_rfc8785_primitives_example() -> None:
    """RFC 8785 §3.2.2: numbers, string escapes and the literals, serialized as the RFC prints.

    The vector was looked up (it is repeated verbatim in independent JCS suites, e.g. Go's
    encoding/json/v2 "RFC8785/Primitives" case), not written from memory.
    """
    expected = RFC8785_PRIMITIVES_OUTPUT.encode()
    assert canonical_json(json.loads(RFC8785_PRIMITIVES_INPUT)) == expected


def test_rfc8785_numbers_one_by_one() -> None:
    """RFC 8785 §3.2.2.3: each number of the example, as ECMAScript's Number-to-string writes it."""
    cases = {
        333333333.33333329: b"333333333.3333333",
        1e30: b"1e+30",
        4.50: b"4.5",
        2e-3: b"0.002",
        0.000000000000000000000000001: b"1e-27",
        -0.0: b"0",
    }
    for number, expected in cases.items():
        assert canonical_json(number) == expected


def test_rfc8785_literals() -> None:
    """RFC 8785 §3.2.2.1: the JSON literals."""
    assert canonical_json([None, True, False]) == b"[null,true,false]"


def test_rfc8785_property_sorting_example() -> None:
    """RFC 8785 §3.2.3: keys sort by UTF-16 code units, so the emoji (a surrogate pair, 0xD83D)
    sorts before U+FB33 although its code point is higher; strings are UTF-8, not escaped."""
    canonical = canonical_json(json.loads(RFC8785_SORTING_INPUT))
    assert list(json.loads(canonical).values()) == RFC8785_SORTED_VALUES
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "finite"),
        (math.inf, "finite"),
        ({"a": [1, -math.inf]}, "$['a'][1]"),
        (MAX_SAFE_INTEGER + 1, "decimal string"),
        (-(MAX_SAFE_INTEGER + 1), "decimal string"),
        ({1: "x"}, "not a string"),
        ({"amount": Decimal("1.5")}, "Decimal"),
        (b"bytes", "bytes"),
        ({"tags": {"a"}}, "set"),
        ("\ud800", "Unicode"),
    ],
)
def test_refuses_what_has_no_jcs_form(value: object, fragment: str) -> None:
    with pytest.raises(CanonicalizationError) as caught:
        canonical_json(value)
    assert isinstance(caught.value, ValueError)
    assert fragment in str(caught.value)


def test_accepts_any_mapping_and_tuples_and_the_integer_bounds() -> None:
    value = MappingProxyType({"b": (1, 2), "a": [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]})
    assert canonical_json(value) == b'{"a":[9007199254740991,-9007199254740991],"b":[1,2]}'


def test_loads_json_refuses_ambiguous_input_and_reads_big_integers_as_doubles() -> None:
    with pytest.raises(CanonicalizationError, match="duplicate"):
        loads_json('{"a": 1, "a": 2}')
    with pytest.raises(CanonicalizationError, match="NaN"):
        loads_json("[NaN]")
    with pytest.raises(CanonicalizationError, match="not JSON"):
        loads_json("{")
    # JCS writes the double 1e20 as 100000000000000000000; reading it back must not break it.
    assert canonical_json(1e20) == b"100000000000000000000"
    assert canonical_json(loads_json(canonical_json([1e20, 7]))) == b"[100000000000000000000,7]"


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)


@given(json_values)
def test_canonical_form_is_a_fixed_point(value: object) -> None:
    once = canonical_json(value)
    assert canonical_json(loads_json(once)) == once


@given(json_values.filter(lambda value: not _big(value)))
def test_canonical_form_survives_plain_json_loads(value: object) -> None:
    """The law as stated with the standard library's reader, for values it reads exactly."""
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


@given(json_values, st.randoms(use_true_random=False))
def test_key_order_does_not_matter(value: object, rng: random.Random) -> None:
    assert canonical_json(_shuffled(value, rng)) == canonical_json(value)


def _shuffled(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


def _big(value: object) -> bool:
    """Whether a float in `value` is integral beyond 2**53, which json.loads reads as an int."""
    if isinstance(value, float):
        return value.is_integer() and abs(value) > MAX_SAFE_INTEGER
    if isinstance(value, dict):
        return any(_big(item) for item in value.values())
    if isinstance(value, list):
        return any(_big(item) for item in value)
    return False


# ------------------------------------------------- the json.dumps fast path equals rfc8785

# Strings that exercise every escaping rule: controls, quotes, backslash, DEL, U+2028, astral.
tricky_text = st.text(
    st.characters(exclude_categories=["Cs"])
    | st.sampled_from(["\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028", "\ud7ff", "😀", "\ufb33"])
)
fast_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | tricky_text,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(st.characters(max_codepoint=127)), inner, max_size=5)
    ),
    max_leaves=25,
)


@given(fast_values)
def test_the_fast_path_writes_exactly_the_rfc8785_bytes(value: object) -> None:
    assert canonical_json(value) == _slow_canonical_json(value)


@given(json_values)
def test_every_value_gets_the_reference_bytes_whichever_path_it_takes(value: object) -> None:
    assert canonical_json(value) == _slow_canonical_json(value)


def test_a_lone_surrogate_is_refused_on_the_fast_path_too() -> None:
    with pytest.raises(CanonicalizationError, match="well-formed"):
        canonical_json({"s": "\ud800"})
    with pytest.raises(CanonicalizationError, match=r"\$"):
        canonical_json({"n": 2**53})
