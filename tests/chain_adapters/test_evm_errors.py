"""Revert decoding: custom errors (incl. structs) round-trip; unknown or torn data stay raw."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from hypothesis import given
from hypothesis import strategies as st

from chain_adapters.evm.errors import ErrorDecoder

ABI = [
    {
        "type": "error",
        "name": "InsufficientCollateral",
        "inputs": [
            {"name": "ltvBps", "type": "uint16"},
            {
                "name": "position",
                "type": "tuple",
                "components": [
                    {"name": "owner", "type": "address"},
                    {"name": "amount", "type": "uint256"},
                ],
            },
            {"name": "", "type": "bytes32"},
        ],
    },
    {"type": "function", "name": "ignored", "inputs": [], "outputs": []},
]
SELECTOR = function_signature_to_4byte_selector(
    "InsufficientCollateral(uint16,(address,uint256),bytes32)"
)


@given(
    ltv=st.integers(0, 2**16 - 1),
    amount=st.integers(0, 2**256 - 1),
    tag=st.binary(min_size=32, max_size=32),
)
def test_custom_error_round_trip(ltv: int, amount: int, tag: bytes) -> None:
    owner = "0x00000000000000000000000000000000000000aA"
    data = SELECTOR + encode(
        ["uint16", "(address,uint256)", "bytes32"], [ltv, (owner, amount), tag]
    )
    decoded = ErrorDecoder([ABI]).decode(data)
    assert decoded is not None
    assert decoded.name == "InsufficientCollateral"
    assert decoded.args == {"ltvBps": ltv, "position": (owner.lower(), amount), "arg2": tag}


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    ErrorDecoder([ABI]).decode(data)
    ErrorDecoder([ABI]).decode(SELECTOR + data)


def test_unknown_selector_keeps_raw_data() -> None:
    error = ErrorDecoder().revert(b"\x12\x34\x56\x78" + b"\0" * 32, chain="c", tx_hash="0xabc")
    assert error.error_name is None
    assert error.raw_data == "0x12345678" + "00" * 32
    assert "undecoded data 0x12345678" in str(error) and "0xabc" in str(error)


def test_merged_decoder_does_not_leak_into_the_shared_one() -> None:
    shared = ErrorDecoder()
    data = SELECTOR + encode(
        ["uint16", "(address,uint256)", "bytes32"], [1, ("0x" + "11" * 20, 2), b"\0" * 32]
    )
    assert shared.merged(ABI).decode(data) is not None
    assert shared.decode(data) is None


def test_empty_revert() -> None:
    error = ErrorDecoder().revert(b"", chain="c", tx_hash=None)
    assert error.error_name is None and error.raw_data == "0x"
