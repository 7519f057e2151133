"""loadFixture semantics: deploy once, every test starts from the snapshot, mutations vanish."""

from __future__ import annotations

import pytest
from web3 import Web3

from chain_adapters.devnet import Devnet
from hardhat_fixtures.loader import FixtureLoader, ScenarioError, scenario

COUNTER_RUNTIME = (
    # A minimal counter: any call increments slot 0; the value is readable via eth_getStorageAt.
    "0x600160005401600055"
)


def _deploy_counter(w3: Web3, sender: str) -> str:
    # init code: copy runtime (9 bytes) to memory and return it
    runtime = bytes.fromhex(COUNTER_RUNTIME[2:])
    init = bytes.fromhex("6009600c60003960096000f3") + runtime
    tx = w3.eth.send_transaction({"from": sender, "data": "0x" + init.hex()})
    return str(w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


@scenario("counter_on_both_chains")
def counter_on_both_chains(env) -> dict[int, str]:
    out: dict[int, str] = {}
    for devnet in env.devnets:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        out[devnet.chain_id] = _deploy_counter(w3, env.accounts[0].address)
    return out


def _bump(devnet: Devnet, address: str, sender: str) -> int:
    w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": sender, "to": address}))
    return int.from_bytes(w3.eth.get_storage_at(address, 0), "big")


def _count(devnet: Devnet, address: str) -> int:
    w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
    return int.from_bytes(w3.eth.get_storage_at(address, 0), "big")


# The two tests below mutate the same contract; each must see it untouched, in either order.
@pytest.mark.parametrize("run", ["first", "second"])
def test_mutation_does_not_leak_between_tests(load_fixture, chains, accounts, run) -> None:
    addresses = load_fixture("counter_on_both_chains")
    for devnet in chains:
        assert _count(devnet, addresses[devnet.chain_id]) == 0
        assert _bump(devnet, addresses[devnet.chain_id], accounts[1].address) == 1
        assert _bump(devnet, addresses[devnet.chain_id], accounts[1].address) == 2


_SEEN: dict[int, str] = {}


def test_scenario_deployed_once_per_session(load_fixture, fixture_loader: FixtureLoader) -> None:
    _SEEN.update(load_fixture("counter_on_both_chains"))
    deployed = fixture_loader.deploy_count["counter_on_both_chains"]
    load_fixture("counter_on_both_chains")
    assert fixture_loader.deploy_count["counter_on_both_chains"] == deployed


def test_a_plain_test_after_a_scenario_test_sees_the_base_state(chains) -> None:
    # pytest keeps file order: the scenario test just above left its contracts deployed
    assert _SEEN, "the scenario test above did not run first"
    for devnet in chains:
        w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
        assert w3.eth.get_code(_SEEN[devnet.chain_id]) == b""


def test_plain_chain_tests_are_reverted_too(chains, accounts) -> None:
    w3 = Web3(Web3.HTTPProvider(chains[0].rpc_url))
    before = w3.eth.block_number
    w3.eth.send_transaction({"from": accounts[2].address, "to": accounts[3].address, "value": 1})
    assert w3.eth.block_number == before + 1


def test_unknown_scenario_names_the_known_ones(load_fixture) -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'.*counter_on_both_chains"):
        load_fixture("nope")


def test_loading_an_older_scenario_redeploys_a_newer_one_from_base(
    load_fixture, fixture_loader: FixtureLoader, chains, accounts
) -> None:
    @scenario("empty_marker")
    def empty_marker(env) -> int:
        w3 = Web3(Web3.HTTPProvider(env.devnets[0].rpc_url))
        return w3.eth.block_number

    counter = load_fixture("counter_on_both_chains")
    marker_block = load_fixture("empty_marker")
    # back to the older scenario: its snapshot is still valid (the newer one's is dropped)
    again = load_fixture("counter_on_both_chains")
    assert again == counter
    for devnet in chains:
        assert _count(devnet, counter[devnet.chain_id]) == 0
    before = fixture_loader.deploy_count.get("empty_marker", 0)
    assert load_fixture("empty_marker") == marker_block  # redeployed from base: same state
    assert fixture_loader.deploy_count["empty_marker"] == before + 1
