"""Laws of the pure parts: event decoding inverts ABI encoding; adaptive ranges stay in bounds;
a stored row is its log."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.watcher.anchors import ANCHORED
from backend.watcher.events import EventSpec
from backend.watcher.projections import LOG_COLUMNS, raw_rows
from backend.watcher.ranges import AdaptiveRange
from chain_adapters.base import Log

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


@settings(deadline=None)  # no wall-clock assertion (a loaded CI machine is not a failure)
@given(
    topics=st.lists(WORD.map(lambda w: "0x" + w.hex()), max_size=4),
    data=st.binary(max_size=96),
)
def test_a_stored_row_keeps_every_field_of_its_log(topics: list[str], data: bytes) -> None:
    log = Log(
        address="0x" + "ab" * 20,
        topics=tuple(topics),
        data=data,
        block_number=7,
        block_hash="0x" + "cd" * 32,
        transaction_hash="0x" + "ef" * 32,
        log_index=3,
    )
    (row,) = raw_rows(31337, [log])
    assert len(row) == len(LOG_COLUMNS)  # what COPY writes, column for column
    assert row.topics == (*topics, *(None,) * (4 - len(topics)))
    assert (row.chain_id, row.block_hash, row.log_index, row.block_number) == (
        31337,
        log.block_hash,
        3,
        7,
    )
    assert (row.transaction_hash, row.address, row.data) == (
        log.transaction_hash,
        log.address,
        data,
    )
