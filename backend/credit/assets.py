"""The registry of assets credagg lends and takes as collateral, from `credit_assets_file`.

Decision: assets are configuration, not rows, because they are fixed per deployment and every
API replica must agree on them; the file sits next to the chains file (`scripts/dev` can write
it from the deployed market). Format (JSON):

    {"assets": [{"symbol": "USDC", "chain_id": 31337, "address": "0x...", "decimals": 6,
                 "price_feed": "0x...", "liquidation_threshold": "0.80"}],
     "native_price_feeds": {"31337": "0x..."}}

`price_feed` (a Chainlink-style feed, USD per whole token) is needed to value collateral and
gas; `liquidation_threshold` (a fraction) only for assets accepted as collateral;
`native_price_feeds` prices the chain's gas token so the estimated gas of `openLoan` can be
counted in the debt asset. A symbol may exist on several chains (same symbol, one per chain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from backend.credit.exceptions import UnknownAsset

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class AssetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(pattern=r"^[A-Z0-9][A-Z0-9.]{1,15}$")
    chain_id: int = Field(gt=0)
    address: str = Field(pattern=_ADDRESS)
    decimals: int = Field(ge=0, le=36)
    price_feed: str | None = Field(default=None, pattern=_ADDRESS)
    liquidation_threshold: Decimal | None = Field(default=None, gt=0, le=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: list[AssetEntry] = Field(default_factory=list)
    native_price_feeds: dict[int, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class AssetRegistry:
    assets: tuple[AssetEntry, ...]
    native_price_feeds: dict[int, str]

    @classmethod
    def load(cls, path: Path | None) -> AssetRegistry:
        if path is None:
            return cls((), {})
        parsed = _File.model_validate(json.loads(path.read_text(encoding="utf-8")))
        return cls(tuple(parsed.assets), dict(parsed.native_price_feeds))

    def symbols(self) -> list[str]:
        return sorted({asset.symbol for asset in self.assets})

    def on_chains(self, symbol: str) -> list[AssetEntry]:
        return [asset for asset in self.assets if asset.symbol == symbol]

    def get(self, symbol: str, chain_id: int) -> AssetEntry | None:
        return next((a for a in self.assets if a.symbol == symbol and a.chain_id == chain_id), None)

    def require(self, symbol: str, chain_id: int | None, field: str) -> list[AssetEntry]:
        """The registry entries of `symbol` (on `chain_id` if given), else a 422 naming `field`."""
        found = [a for a in self.on_chains(symbol) if chain_id is None or a.chain_id == chain_id]
        if not found:
            where = f" on chain {chain_id}" if chain_id is not None else ""
            raise UnknownAsset(
                f"{field}: asset {symbol!r}{where} is not one credagg lends or accepts.",
                hint=f"Use one of {self.symbols()} (chains: "
                f"{sorted({a.chain_id for a in self.assets})}).",
            )
        return found


_CACHE: dict[tuple[Path, float], AssetRegistry] = {}


def asset_registry(path: Path | None) -> AssetRegistry:
    """The registry of `path`, re-read when the file changes."""
    if path is None:
        return AssetRegistry((), {})
    key = (path, path.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = AssetRegistry.load(path)
    return _CACHE[key]
