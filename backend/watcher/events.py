"""Event signatures -> topic0 and decoding of raw logs, without a compiled ABI at hand.

A projection declares the events it consumes as Solidity signatures, e.g.
`Anchored(uint64 indexed treeSize, bytes32 root, uint64 prevSize, bytes32 prevRoot)`, so the
watcher needs neither the compiler nor web3 contract objects in its hot path.
"""

from __future__ import annotations

import re
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


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event: its name, parameters and topic0."""

    name: str
    params: tuple[EventParam, ...]
    # Derived once (decode runs per log on the hot path).
    _indexed: tuple[EventParam, ...] = field(init=False, repr=False, compare=False)
    _plain: tuple[EventParam, ...] = field(init=False, repr=False, compare=False)
    _static: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = tuple(p for p in self.params if not p.indexed)
        object.__setattr__(self, "_indexed", tuple(p for p in self.params if p.indexed))
        object.__setattr__(self, "_plain", plain)
        object.__setattr__(self, "_static", all(_is_static_word(p.type) for p in plain))

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

    def decode(self, topics: tuple[str | None, ...], data: bytes) -> dict[str, Any]:
        """Arguments by name; an indexed dynamic type stays its 32-byte topic (as Solidity does)."""
        values: dict[str, Any] = {}
        for param, topic in zip(self._indexed, topics[1:], strict=False):
            raw = bytes.fromhex((topic or "0x").removeprefix("0x"))
            if param.type in ("string", "bytes") or param.type.endswith("]"):
                values[param.name] = raw
            else:
                values[param.name] = _word(param.type, raw)
        plain = self._plain
        if plain and self._static:
            # Static words only (the common case): slice instead of eth_abi's generic decoder,
            # which is several times slower and dominated a 100,000-log backfill.
            if len(data) < 32 * len(plain):
                raise ValueError(f"{self.name}: {len(data)} data bytes for {len(plain)} words")
            for position, param in enumerate(plain):
                values[param.name] = _word(param.type, data[32 * position : 32 * position + 32])
        elif plain:
            decoded = decode([p.type for p in plain], data)
            values.update(zip((p.name for p in plain), decoded, strict=True))
        return values


def _is_static_word(abi_type: str) -> bool:
    return abi_type in ("address", "bool") or (
        abi_type.startswith(("uint", "int", "bytes"))
        and abi_type not in ("bytes",)
        and "[" not in abi_type
    )


def _word(abi_type: str, word: bytes) -> Any:
    """One 32-byte ABI word as eth_abi would return it (validated by eth_abi for odd types)."""
    if abi_type.startswith("uint"):
        return int.from_bytes(word, "big")
    if abi_type == "bytes32":
        return word
    return decode([abi_type], word)[0]
