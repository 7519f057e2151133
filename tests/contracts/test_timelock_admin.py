"""Governance: DEFAULT_ADMIN_ROLE held by the TimelockController; pausing is immediate, every
admin action (role grants, configs, unpause) waits for the timelock delay."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from web3.contract import Contract

from tests.contracts._support import (
    ANCHORER_ROLE,
    DEFAULT_ADMIN_ROLE,
    PAUSER_ROLE,
    ZERO_ADDRESS,
    Chain,
    System,
    role,
)

DELAY = 2 * 24 * 3600
READY_BITMAP = (1 << 2).to_bytes(32, "big")  # OperationState.Ready
PROPOSER_ROLE = role("PROPOSER_ROLE")


@dataclass
class Governed:
    timelock: Contract
    anchor: Contract
    aggregator: Contract
    collateral: Contract
    oracle: Contract


@pytest.fixture
def governed(system: System, chain: Chain) -> Governed:
    timelock = chain.deploy(
        "CredaggTimelock", DELAY, [system.admin.address], [system.admin.address], ZERO_ADDRESS
    )
    aggregator = chain.deploy("CreditAggregator", timelock.address)
    return Governed(
        timelock=timelock,
        anchor=chain.deploy("ReceiptAnchor", timelock.address),
        aggregator=aggregator,
        collateral=chain.deploy("CollateralManager", timelock.address, aggregator.address),
        oracle=chain.deploy("CreditScoringOracle", timelock.address),
    )


class Proposal:
    """One timelock operation: schedule, then execute after the delay."""

    def __init__(
        self, system: System, timelock: Contract, target: Contract, call: object, salt: bytes
    ) -> None:
        self.system, self.timelock = system, timelock
        self.args = (target.address, 0, call._encode_transaction_data(), b"\x00" * 32, salt)  # type: ignore[attr-defined]
        self.id = timelock.functions.hashOperation(*self.args).call()

    def schedule(self, delay: int = DELAY) -> None:
        self.system.chain.tx(self.timelock.functions.schedule(*self.args, delay), self.system.admin)

    def execute_fn(self) -> object:
        return self.timelock.functions.execute(*self.args)


def _salt(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_admin_role_is_the_timelock_only(system: System, chain: Chain, governed: Governed) -> None:
    for contract in (governed.anchor, governed.aggregator, governed.collateral, governed.oracle):
        assert contract.functions.hasRole(DEFAULT_ADMIN_ROLE, governed.timelock.address).call()
        assert not contract.functions.hasRole(DEFAULT_ADMIN_ROLE, system.admin.address).call()
        chain.expect_revert(
            contract.functions.grantRole(PAUSER_ROLE, system.pauser.address),
            system.admin,
            "AccessControlUnauthorizedAccount",
            system.admin.address,
            DEFAULT_ADMIN_ROLE,
        )


def test_role_grant_waits_for_delay(system: System, chain: Chain, governed: Governed) -> None:
    grant = governed.anchor.functions.grantRole(ANCHORER_ROLE, system.relayer.address)
    proposal = Proposal(system, governed.timelock, governed.anchor, grant, _salt(1))
    proposal.schedule()
    chain.expect_revert(
        proposal.execute_fn(),
        system.admin,
        "TimelockUnexpectedOperationState",
        proposal.id,
        READY_BITMAP,
    )
    chain.increase_time(DELAY - 10)
    chain.expect_revert(
        proposal.execute_fn(),
        system.admin,
        "TimelockUnexpectedOperationState",
        proposal.id,
        READY_BITMAP,
    )
    assert not governed.anchor.functions.hasRole(ANCHORER_ROLE, system.relayer.address).call()
    chain.increase_time(10)
    chain.tx(proposal.execute_fn(), system.admin)
    assert governed.anchor.functions.hasRole(ANCHORER_ROLE, system.relayer.address).call()
    chain.tx(governed.anchor.functions.anchor(1, b"\x11" * 32), system.relayer)


def test_schedule_rules(system: System, chain: Chain, governed: Governed) -> None:
    grant = governed.oracle.functions.grantRole(PAUSER_ROLE, system.pauser.address)
    proposal = Proposal(system, governed.timelock, governed.oracle, grant, _salt(2))
    chain.expect_revert(
        governed.timelock.functions.schedule(*proposal.args, DELAY - 1),
        system.admin,
        "TimelockInsufficientDelay",
        DELAY - 1,
        DELAY,
    )
    chain.expect_revert(
        governed.timelock.functions.schedule(*proposal.args, DELAY),
        system.outsider,
        "AccessControlUnauthorizedAccount",
        system.outsider.address,
        PROPOSER_ROLE,
    )


def test_pause_is_immediate_unpause_goes_through_timelock(
    system: System, chain: Chain, governed: Governed
) -> None:
    grant = governed.aggregator.functions.grantRole(PAUSER_ROLE, system.pauser.address)
    setup = Proposal(system, governed.timelock, governed.aggregator, grant, _salt(3))
    setup.schedule()
    chain.increase_time(DELAY)
    chain.tx(setup.execute_fn(), system.admin)

    # Emergency: no delay.
    chain.tx(governed.aggregator.functions.pause(), system.pauser)
    assert governed.aggregator.functions.paused().call()
    for who in (system.pauser, system.admin):
        chain.expect_revert(
            governed.aggregator.functions.unpause(),
            who,
            "AccessControlUnauthorizedAccount",
            who.address,
            DEFAULT_ADMIN_ROLE,
        )

    resume = Proposal(
        system,
        governed.timelock,
        governed.aggregator,
        governed.aggregator.functions.unpause(),
        _salt(4),
    )
    resume.schedule()
    chain.expect_revert(
        resume.execute_fn(),
        system.admin,
        "TimelockUnexpectedOperationState",
        resume.id,
        READY_BITMAP,
    )
    assert governed.aggregator.functions.paused().call()
    chain.increase_time(DELAY)
    chain.tx(resume.execute_fn(), system.admin)
    assert not governed.aggregator.functions.paused().call()


def test_asset_config_through_timelock(system: System, chain: Chain, governed: Governed) -> None:
    cm = governed.collateral
    configure = cm.functions.setAssetConfig(
        system.weth.address, system.feeds["WETH"].address, 8_000, 500, 3_600
    )
    chain.expect_revert(
        configure,
        system.admin,
        "AccessControlUnauthorizedAccount",
        system.admin.address,
        DEFAULT_ADMIN_ROLE,
    )
    proposal = Proposal(system, governed.timelock, cm, configure, _salt(5))
    proposal.schedule()
    chain.increase_time(DELAY)
    receipt = chain.tx(proposal.execute_fn(), system.admin)
    (event,) = chain.events(cm, "AssetConfigured", receipt)
    assert event["args"]["liquidationThresholdBps"] == 8_000
    assert cm.functions.assetConfig(system.weth.address).call()[1:4] == (8_000, 500, 3_600)


def test_constructors_reject_zero_admin(system: System, chain: Chain) -> None:
    for name in ("ReceiptAnchor", "CreditAggregator", "CreditScoringOracle"):
        artifact = chain.compiled.get(name)
        factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        assert chain.revert_of(factory.constructor(ZERO_ADDRESS), system.admin) == (
            "ZeroAddress",
            (),
        )
