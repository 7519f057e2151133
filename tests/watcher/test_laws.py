"""Laws of the pure parts: event decoding inverts ABI encoding; adaptive ranges stay in bounds."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from backend.watcher.anchors import ANCHORED
from backend.watcher.events import EventSpec
from backend.watcher.ranges import AdaptiveRange

UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
WORD = st.binary(min_size=32, max_size=32)


def test_topic0_is_the_keccak_of_the_canonical_signature() -> None:
    assert ANCHORED.canonical == "Anchored(uint64,bytes32,uint64,bytes32)"
    assert ANCHORED.topic0 == "0x" + keccak(text=ANCHORED.canonical).hex()


@given(size=UINT64, root=WORD, prev=UINT64, prev_root=WORD)
def test_anchored_decodes_what_the_abi_encodes(
    size: int, root: bytes, prev: int, prev_root: bytes
) -> None:
    topics = (ANCHORED.topic0, "0x" + encode(["uint64"], [size]).hex())
    data = encode(["bytes32", "uint64", "bytes32"], [root, prev, prev_root])
    assert ANCHORED.decode(topics, data) == {
        "treeSize": size,
        "root": root,
        "prevSize": prev,
        "prevRoot": prev_root,
    }


MIXED = EventSpec.parse(
    "Mixed(address indexed who, int128 delta, bool flag, string note, uint256[] amounts)"
)


@given(
    who=st.binary(min_size=20, max_size=20),
    delta=st.integers(min_value=-(2**127), max_value=2**127 - 1),
    flag=st.booleans(),
    note=st.text(max_size=40),
    amounts=st.lists(st.integers(min_value=0, max_value=2**256 - 1), max_size=5),
)
def test_dynamic_and_signed_types_fall_back_to_the_abi_decoder(
    who: bytes, delta: int, flag: bool, note: str, amounts: list[int]
) -> None:
    address = "0x" + who.hex()
    topics = (MIXED.topic0, "0x" + encode(["address"], [address]).hex())
    data = encode(["int128", "bool", "string", "uint256[]"], [delta, flag, note, amounts])
    decoded = MIXED.decode(topics, data)
    assert decoded["who"].lower() == address
    assert (decoded["delta"], decoded["flag"], decoded["note"]) == (delta, flag, note)
    assert list(decoded["amounts"]) == amounts


@given(
    start=st.integers(min_value=1, max_value=64),
    moves=st.lists(st.booleans(), max_size=60),
)
def test_adaptive_range_never_leaves_its_bounds(start: int, moves: list[bool]) -> None:
    ranges = AdaptiveRange(span=start, minimum=1, maximum=64)
    for grow in moves:
        before = ranges.span
        if grow:
            ranges.grow()
            assert ranges.span == min(64, before * 2)
        else:
            shrunk = ranges.shrink()
            assert shrunk == (before > 1)
            assert ranges.span == max(1, before // 2)
        assert 1 <= ranges.span <= 64
