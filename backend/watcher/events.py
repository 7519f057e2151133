"""Event signatures -> topic0 and decoding of raw logs, without a compiled ABI at hand.

A projection declares the events it consumes as Solidity signatures, e.g.
`Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot)`, so the
watcher needs neither the compiler nor web3 contract objects in its hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode
from eth_utils import keccak

_SIGNATURE = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


@dataclass(frozen=True, slots=True)
class EventParam:
    type: str
    name: str
    indexed: bool


#: Turns one ABI word (a topic as hex, or 32 bytes of data) into the decoded value.
TopicReader = Callable[[str], Any]
WordReader = Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event: its name, parameters and topic0."""

    name: str
    params: tuple[EventParam, ...]
    # Compiled once per event (decode runs per log on the hot path): how to read each indexed
    # topic, and, when every non-indexed parameter is a static word, each data word's offset.
    _topics: tuple[tuple[str, TopicReader], ...] = field(init=False, repr=False, compare=False)
    _words: tuple[tuple[str, int, WordReader], ...] | None = field(
        init=False, repr=False, compare=False
    )
    _plain: tuple[EventParam, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = tuple(p for p in self.params if not p.indexed)
        topics = tuple((p.name, _topic_reader(p.type)) for p in self.params if p.indexed)
        words = None
        if all(_is_static_word(p.type) for p in plain):
            words = tuple((p.name, 32 * i, _word_reader(p.type)) for i, p in enumerate(plain))
        object.__setattr__(self, "_topics", topics)
        object.__setattr__(self, "_words", words)
        object.__setattr__(self, "_plain", plain)

    @classmethod
    def parse(cls, signature: str) -> EventSpec:
        match = _SIGNATURE.match(signature)
        if match is None:
            raise ValueError(f"not an event signature: {signature!r}")
        params: list[EventParam] = []
        for position, part in enumerate(p.split() for p in match.group(2).split(",") if p.strip()):
            indexed = "indexed" in part
            words = [w for w in part if w != "indexed"]
            name = words[1] if len(words) > 1 else f"arg{position}"
            params.append(EventParam(type=words[0], name=name, indexed=indexed))
        return cls(name=match.group(1), params=tuple(params))

    @property
    def canonical(self) -> str:
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.canonical).hex()

    def decode(self, topics: Sequence[str | None], data: bytes) -> dict[str, Any]:
        """Arguments by name; an indexed dynamic type stays its 32-byte topic (as Solidity does)."""
        values: dict[str, Any] = {}
        for (name, read), topic in zip(self._topics, topics[1:], strict=False):
            values[name] = read(topic or "0x" + "00" * 32)
        words = self._words
        if words is not None:
            # Static words only (the common case): slice instead of eth_abi's generic decoder,
            # which is several times slower and dominated a 100,000-log backfill.
            if len(data) < 32 * len(words):
                raise ValueError(f"{self.name}: {len(data)} data bytes for {len(words)} words")
            for name, start, read_word in words:
                values[name] = read_word(data[start : start + 32])
        else:
            plain = self._plain
            decoded = decode([p.type for p in plain], data)
            values.update(zip((p.name for p in plain), decoded, strict=True))
        return values


def _topic_reader(abi_type: str) -> TopicReader:
    """How to read an indexed parameter of `abi_type` from its topic (hex)."""
    if abi_type in ("string", "bytes") or abi_type.endswith("]"):
        return lambda topic: bytes.fromhex(topic[2:])  # the keccak of the value, as Solidity
    if abi_type.startswith("uint"):
        return lambda topic: int(topic, 16)
    read_word = _word_reader(abi_type)
    return lambda topic: read_word(bytes.fromhex(topic[2:]))


def _word_reader(abi_type: str) -> WordReader:
    """How to read one static ABI word of `abi_type` (eth_abi's result, faster where common)."""
    if abi_type.startswith("uint"):
        return lambda word: int.from_bytes(word, "big")
    if abi_type == "bytes32":
        return bytes
    return lambda word: decode([abi_type], word)[0]


def _is_static_word(abi_type: str) -> bool:
    return abi_type in ("address", "bool") or (
        abi_type.startswith(("uint", "int", "bytes"))
        and abi_type not in ("bytes",)
        and "[" not in abi_type
    )
