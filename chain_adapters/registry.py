"""Chains config file -> validated `ChainConfig` objects.

The file is TOML (stdlib `tomllib`, no extra dependency) with one `[[chain]]` table per chain:

    [[chain]]
    name = "devnet-a"
    chain_id = 31337
    rpc_urls = ["http://127.0.0.1:8545", "http://127.0.0.1:8546"]
    finality = "confirmations"        # or "finalized" (use the node's `finalized` tag)
    confirmations = 2
    fee_model = "eip1559"             # or "legacy"
    fee_multiplier = "1.25"           # applied to the estimated base fee
    max_fee_gwei = "500"              # hard cap on maxFeePerGas / gasPrice
    priority_fee_gwei = "1"
    block_time = 1.0                  # seconds, used for polling and stale-head detection
    timelock_delay = 2                # seconds; 172800 (48 h) on a production chain

Validation is strict so that a typo fails at start-up, not at the first transaction. The chain id
written here is checked against `eth_chainId` when an adapter connects (see `check_chain_id`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chain_adapters.exceptions import ChainConfigError

PRODUCTION_TIMELOCK_DELAY = 48 * 3600


class ChainConfig(BaseModel):
    """One chain as the backend may use it. Immutable once loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    family: Literal["evm"] = "evm"  # which adapter (chain_adapters.adapters) drives this chain
    chain_id: int = Field(gt=0)
    rpc_urls: tuple[str, ...] = Field(min_length=1)
    finality: Literal["confirmations", "finalized"] = "confirmations"
    confirmations: int = Field(default=1, ge=0, le=10_000)
    fee_model: Literal["eip1559", "legacy"] = "eip1559"
    fee_multiplier: Decimal = Field(default=Decimal("1.25"), ge=Decimal("1"), le=Decimal("10"))
    max_fee_gwei: Decimal = Field(default=Decimal("500"), gt=0)
    priority_fee_gwei: Decimal = Field(default=Decimal("1"), ge=0)
    block_time: float = Field(default=2.0, gt=0, le=600)
    timelock_delay: int = Field(default=PRODUCTION_TIMELOCK_DELAY, ge=0)
    devnet: bool = False

    @field_validator("rpc_urls")
    @classmethod
    def _urls_are_http(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"RPC URL {url!r} must start with http:// or https://")
        if len(set(urls)) != len(urls):
            raise ValueError("RPC URLs must be distinct")
        return urls

    @model_validator(mode="after")
    def _production_needs_timelock(self) -> ChainConfig:
        if not self.devnet and self.timelock_delay < PRODUCTION_TIMELOCK_DELAY:
            raise ValueError(
                f"timelock_delay {self.timelock_delay}s is below 48 h on a non-devnet chain; "
                "set devnet = true for a local chain or raise the delay"
            )
        return self

    @property
    def max_fee_wei(self) -> int:
        return int(self.max_fee_gwei * 10**9)

    @property
    def priority_fee_wei(self) -> int:
        return int(self.priority_fee_gwei * 10**9)


class ChainRegistry:
    """The chains of one deployment, addressable by name or chain id."""

    def __init__(self, chains: Iterable[ChainConfig]) -> None:
        self._by_name: dict[str, ChainConfig] = {}
        self._by_id: dict[int, ChainConfig] = {}
        for chain in chains:
            if chain.name in self._by_name:
                raise ChainConfigError(f"chain name {chain.name!r} appears twice")
            if chain.chain_id in self._by_id:
                raise ChainConfigError(
                    f"chain id {chain.chain_id} appears twice "
                    f"({self._by_id[chain.chain_id].name!r} and {chain.name!r})"
                )
            self._by_name[chain.name] = chain
            self._by_id[chain.chain_id] = chain

    def __iter__(self) -> Iterator[ChainConfig]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> ChainConfig:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name) or "none"
            raise ChainConfigError(f"unknown chain {name!r}; configured chains: {known}") from None

    def by_chain_id(self, chain_id: int) -> ChainConfig:
        try:
            return self._by_id[chain_id]
        except KeyError:
            known = ", ".join(str(i) for i in self._by_id) or "none"
            raise ChainConfigError(f"unknown chain id {chain_id}; configured: {known}") from None


def parse_chains(data: dict[str, object], *, source: str = "<config>") -> ChainRegistry:
    """Validate an already-parsed TOML document."""
    raw = data.get("chain", [])
    if not isinstance(raw, list):
        raise ChainConfigError(f"{source}: expected [[chain]] tables")
    chains: list[ChainConfig] = []
    for position, item in enumerate(raw):
        try:
            chains.append(ChainConfig.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'chain'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ChainConfigError(f"{source}: chain #{position + 1}: {problems}") from None
    return ChainRegistry(chains)


def load_chains(path: Path) -> ChainRegistry:
    """Read and validate a chains file; errors name the file, the chain and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChainConfigError(f"chains file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChainConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_chains(data, source=str(path))


def dump_chains(chains: Iterable[ChainConfig]) -> str:
    """Render chains back to TOML (used to write the devnet chains file)."""
    lines: list[str] = []
    for chain in chains:
        lines.append("[[chain]]")
        for key, value in chain.model_dump().items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
