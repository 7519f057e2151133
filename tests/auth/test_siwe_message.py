"""The EIP-4361 parser and formatter: round-trip law over generated messages, strictness."""

from __future__ import annotations

import string
from dataclasses import replace

import pytest
from eth_utils import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from backend.auth.siwe import SiweMessage, SiweSyntaxError, format_message, parse_message

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_SUB_DELIMS = "!$&'()*+,;="

hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,8}){0,2}", fullmatch=True)
domains = st.builds(
    lambda host, port: host + (f":{port}" if port is not None else ""),
    hosts,
    st.none() | st.integers(1, 65535),
)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
uris = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}{path}",
    st.sampled_from(["https", "http", "ipfs", "did"]),
    hosts,
    st.from_regex(r"(/[A-Za-z0-9._~-]{0,12}){0,3}", fullmatch=True),
)
statements = st.text(alphabet=_UNRESERVED + _SUB_DELIMS + ":/?#[]@ ", max_size=80)
times = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
    lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z")
)
messages = st.builds(
    SiweMessage,
    domain=domains,
    address=addresses,
    uri=uris,
    version=st.just("1"),
    chain_id=st.integers(1, 2**53),
    nonce=st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=32),
    issued_at=times,
    statement=st.none() | statements,
    scheme=st.none() | st.sampled_from(["https", "http"]),
    expiration_time=st.none() | times,
    not_before=st.none() | times,
    request_id=st.none() | st.text(alphabet=_UNRESERVED + _SUB_DELIMS + ":@", max_size=24),
    resources=st.none() | st.lists(uris, max_size=3).map(tuple),
)


@given(messages)
def test_format_then_parse_is_the_identity(message: SiweMessage) -> None:
    assert parse_message(format_message(message)) == message


@given(messages)
def test_any_extra_trailing_text_is_refused(message: SiweMessage) -> None:
    with pytest.raises(SiweSyntaxError):
        parse_message(format_message(message) + "\nExtra: field")


BASE = SiweMessage(
    domain="localhost:8000",
    address="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    uri="http://localhost:8000",
    version="1",
    chain_id=31337,
    nonce="abcdef123456",
    issued_at="2026-01-01T00:00:00.000Z",
    statement="Sign in.",
)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda t: t.replace(
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            ),
            "address",
        ),
        (lambda t: t.replace("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x1234"), "address"),
        (lambda t: t.replace("Nonce: abcdef123456", "Nonce: abc"), "nonce"),
        (lambda t: t.replace("Nonce: abcdef123456", "Nonce: abcdef-123456"), "nonce"),
        (lambda t: t.replace("Version: 1", "Version: 2"), "version"),
        (lambda t: t.replace("Chain ID: 31337", "Chain ID: 0x7a69"), "chain-id"),
        (
            lambda t: t.replace(
                "Issued At: 2026-01-01T00:00:00.000Z", "Issued At: 2026-01-01 00:00:00"
            ),
            "issued-at",
        ),
        (
            lambda t: t.replace(
                "Issued At: 2026-01-01T00:00:00.000Z", "Issued At: 2026-13-01T00:00:00Z"
            ),
            "issued-at",
        ),
        (lambda t: t.replace("Sign in.", "Sign <in>."), "statement"),
        (lambda t: t.replace("URI: http://localhost:8000", "URI: not a uri"), "uri"),
        (lambda t: t.replace("\n", "\r\n"), "message"),
        (lambda t: t.replace("localhost:8000 wants", "local host wants"), "domain"),
        (
            lambda t: t.replace("Version: 1\nChain ID: 31337", "Chain ID: 31337\nVersion: 1"),
            "version",
        ),
    ],
)
def test_each_malformed_field_is_named(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    text = mutate(format_message(BASE))
    with pytest.raises(SiweSyntaxError) as raised:
        parse_message(text)
    assert raised.value.field == field


def test_optional_fields_must_keep_their_order() -> None:
    text = format_message(
        replace(BASE, expiration_time="2026-01-02T00:00:00Z", not_before="2026-01-01T00:00:00Z")
    )
    swapped = text.replace(
        "Expiration Time: 2026-01-02T00:00:00Z\nNot Before: 2026-01-01T00:00:00Z",
        "Not Before: 2026-01-01T00:00:00Z\nExpiration Time: 2026-01-02T00:00:00Z",
    )
    with pytest.raises(SiweSyntaxError):
        parse_message(swapped)


def test_empty_and_absent_statements_differ() -> None:
    empty, absent = replace(BASE, statement=""), replace(BASE, statement=None)
    assert format_message(empty) != format_message(absent)
    assert parse_message(format_message(empty)).statement == ""
    assert parse_message(format_message(absent)).statement is None
