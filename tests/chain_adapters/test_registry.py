"""The chains config file: strict validation with errors that name the file, chain and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from chain_adapters.exceptions import ChainConfigError
from chain_adapters.registry import ChainConfig, dump_chains, load_chains

GOOD = """
[[chain]]
name = "devnet-a"
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545", "http://127.0.0.1:8547"]
confirmations = 2
fee_multiplier = "1.5"
block_time = 1.0
timelock_delay = 2
devnet = true

[[chain]]
name = "mainnet"
chain_id = 1
rpc_urls = ["https://rpc.example.invalid"]
finality = "finalized"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chains.toml"
    path.write_text(text)
    return path


def test_loads_and_defaults(tmp_path: Path) -> None:
    registry = load_chains(_write(tmp_path, GOOD))
    assert registry.names == ["devnet-a", "mainnet"]
    devnet = registry.get("devnet-a")
    assert devnet.rpc_urls == ("http://127.0.0.1:8545", "http://127.0.0.1:8547")
    assert devnet.fee_multiplier == Decimal("1.5")
    assert registry.by_chain_id(1).finality == "finalized"
    assert registry.get("mainnet").timelock_delay == 48 * 3600  # production default


def test_round_trips_through_dump(tmp_path: Path) -> None:
    registry = load_chains(_write(tmp_path, GOOD))
    again = load_chains(_write(tmp_path, dump_chains(registry)))
    assert list(again) == list(registry)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (("chain_id = 31337", "chain_id = 0"), "chain #1: chain_id"),
        (
            (
                'rpc_urls = ["http://127.0.0.1:8545", "http://127.0.0.1:8547"]',
                'rpc_urls = ["ws://x"]',
            ),
            "must start with http",
        ),
        (('name = "devnet-a"', 'name = "Bad Name"'), "chain #1: name"),
        (("timelock_delay = 2\ndevnet = true", "timelock_delay = 2"), "below 48 h"),
        (('finality = "finalized"', 'finality = "safe"'), "chain #2: finality"),
        (("confirmations = 2", "confirmations = 2\ncolour = 'red'"), "colour"),
    ],
)
def test_invalid_files_name_the_problem(
    tmp_path: Path, patch: tuple[str, str], message: str
) -> None:
    with pytest.raises(ChainConfigError, match=message) as caught:
        load_chains(_write(tmp_path, GOOD.replace(*patch)))
    assert "chains.toml" in str(caught.value)


def test_duplicate_chain_ids_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("chain_id = 1\n", "chain_id = 31337\n")
    with pytest.raises(ChainConfigError, match="chain id 31337 appears twice"):
        load_chains(_write(tmp_path, text))


def test_unknown_names_list_the_known_ones(tmp_path: Path) -> None:
    registry = load_chains(_write(tmp_path, GOOD))
    with pytest.raises(ChainConfigError, match=r"unknown chain 'sepolia'.*devnet-a, mainnet"):
        registry.get("sepolia")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ChainConfigError, match="does not exist"):
        load_chains(tmp_path / "nope.toml")
    with pytest.raises(ChainConfigError, match="not valid TOML"):
        load_chains(_write(tmp_path, "[[chain]\n"))


def test_wei_conversions() -> None:
    chain = ChainConfig(
        name="x",
        chain_id=5,
        rpc_urls=("http://a",),
        max_fee_gwei=Decimal("1.5"),
        priority_fee_gwei=Decimal("0.1"),
        devnet=True,
        timelock_delay=0,
    )
    assert chain.max_fee_wei == 1_500_000_000
    assert chain.priority_fee_wei == 100_000_000
