"""The credagg contract suite on one chain: deploy, hand out roles, configure, through the timelock.

Every contract's DEFAULT_ADMIN_ROLE belongs to a TimelockController, so after deployment every
admin action (granting the relayer's roles, configuring collateral assets, unpausing) is a
scheduled timelock operation that waits `timelock_delay` (48 h on production chains). This module
makes that flow idempotent: an operation already executed is skipped, one already scheduled is
not scheduled twice, and a ready one is executed. On a devnet the wait is fast-forwarded with
`evm_increaseTime`; on a real chain the call returns the pending operation and its ETA, and
running the same command after the ETA executes it.

Addresses are CREATE2-deterministic (chain_adapters.deploy), so the suite has the same addresses
on every chain whose timelock delay and role holders are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth_utils import keccak

from chain_adapters.base import ContractCall, WaitFor
from chain_adapters.deploy import DeployedContract, PlanStep, Ref, deploy_plan
from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.convert import hex0x
from chain_adapters.exceptions import DeploymentError

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = b"\x00" * 32

TIMELOCK = "CredaggTimelock"
RECEIPT_ANCHOR = "ReceiptAnchor"
CREDIT_AGGREGATOR = "CreditAggregator"
COLLATERAL_MANAGER = "CollateralManager"
SCORING_ORACLE = "CreditScoringOracle"
SUITE = (TIMELOCK, RECEIPT_ANCHOR, CREDIT_AGGREGATOR, COLLATERAL_MANAGER, SCORING_ORACLE)


def role_id(name: str) -> bytes:
    """OpenZeppelin role ids: keccak256 of the name; the admin role is zero."""
    return ZERO_BYTES32 if name == "DEFAULT_ADMIN_ROLE" else keccak(text=name)


class ArtifactSource(Protocol):
    def get(self, name: str) -> Any: ...


@dataclass(frozen=True)
class SuiteRoles:
    """Who holds what. `governor` proposes and executes timelock operations (a multisig in
    production); `operator` is the backend's relayer key; `guardian` may pause at once."""

    governor: str
    operator: str
    guardian: str


@dataclass(frozen=True)
class Grant:
    contract: str
    role: str
    account: str  # an address, or the name of a suite contract


@dataclass(frozen=True)
class AdminCall:
    """One call the timelock makes as admin."""

    contract: str
    function: str
    args: tuple[Any, ...] = ()


@dataclass
class TimelockOutcome:
    operation_id: str
    state: str  # "nothing-to-do" | "executed" | "pending" | "needs-governor"
    ready_at: int | None = None
    calls: list[AdminCall] = field(default_factory=list)


@dataclass
class SuiteDeployment:
    chain_id: int
    contracts: dict[str, DeployedContract]
    roles: TimelockOutcome

    def address(self, name: str) -> str:
        return self.contracts[name].address

    @property
    def transactions_sent(self) -> int:
        return sum(1 for c in self.contracts.values() if c.created)


def suite_plan(
    artifacts: ArtifactSource, *, timelock_delay: int, roles: SuiteRoles
) -> list[PlanStep]:
    """Deployment order; every contract's admin is the timelock (proposer/executor: governor)."""
    return [
        PlanStep(
            TIMELOCK,
            artifacts.get(TIMELOCK),
            (timelock_delay, [roles.governor], [roles.governor], ZERO_ADDRESS),
        ),
        PlanStep(RECEIPT_ANCHOR, artifacts.get(RECEIPT_ANCHOR), (Ref(TIMELOCK),)),
        PlanStep(CREDIT_AGGREGATOR, artifacts.get(CREDIT_AGGREGATOR), (Ref(TIMELOCK),)),
        PlanStep(
            COLLATERAL_MANAGER,
            artifacts.get(COLLATERAL_MANAGER),
            (Ref(TIMELOCK), Ref(CREDIT_AGGREGATOR)),
        ),
        PlanStep(SCORING_ORACLE, artifacts.get(SCORING_ORACLE), (Ref(TIMELOCK),)),
    ]


def suite_grants(roles: SuiteRoles) -> list[Grant]:
    """The roles the running system needs. The CollateralManager reports liquidation repayments
    to the aggregator, hence its REPORTER_ROLE there."""
    grants = [
        Grant(RECEIPT_ANCHOR, "ANCHORER_ROLE", roles.operator),
        Grant(CREDIT_AGGREGATOR, "ORIGINATOR_ROLE", roles.operator),
        Grant(CREDIT_AGGREGATOR, "REPORTER_ROLE", roles.operator),
        Grant(CREDIT_AGGREGATOR, "REPORTER_ROLE", COLLATERAL_MANAGER),
        Grant(SCORING_ORACLE, "SCORER_ROLE", roles.operator),
    ]
    grants += [
        Grant(name, "PAUSER_ROLE", roles.guardian)
        for name in (RECEIPT_ANCHOR, CREDIT_AGGREGATOR, COLLATERAL_MANAGER, SCORING_ORACLE)
    ]
    return grants


def deploy_suite(
    adapter: EvmAdapter,
    artifacts: ArtifactSource,
    roles: SuiteRoles,
    *,
    manifest_dir: Path | None = None,
    governor: EvmAdapter | None = None,
    fast_forward: bool | None = None,
    wait: WaitFor = "final",
    apply_roles: bool = True,
) -> SuiteDeployment:
    """Deploy (or find) the suite and apply the role grants through the timelock.

    `adapter` sends the deployments (any funded key); `governor` sends timelock operations and
    must sign as `roles.governor` (defaults to `adapter`). With `apply_roles=False` (a multisig
    governs) the missing grants are returned as state "needs-governor" for it to propose.
    Safe to re-run at any point.
    """
    plan = suite_plan(artifacts, timelock_delay=adapter.chain.timelock_delay, roles=roles)
    contracts = deploy_plan(adapter, plan, manifest_dir=manifest_dir, wait=wait)
    grants = [
        AdminCall(g.contract, "grantRole", (role_id(g.role), _address(g.account, contracts)))
        for g in suite_grants(roles)
        if not has_role(adapter, artifacts, contracts, g)
    ]
    if not apply_roles:
        state = "needs-governor" if grants else "nothing-to-do"
        return SuiteDeployment(
            adapter.chain_id, contracts, TimelockOutcome("", state, calls=grants)
        )
    outcome = run_admin_calls(
        governor or adapter,
        artifacts,
        contracts,
        grants,
        label="suite-roles",
        fast_forward=adapter.chain.devnet if fast_forward is None else fast_forward,
        wait=wait,
    )
    return SuiteDeployment(adapter.chain_id, contracts, outcome)


def has_role(
    adapter: EvmAdapter,
    artifacts: ArtifactSource,
    contracts: dict[str, DeployedContract],
    grant: Grant,
) -> bool:
    return bool(
        adapter.call(
            ContractCall(
                contracts[grant.contract].address,
                artifacts.get(grant.contract).abi,
                "hasRole",
                (role_id(grant.role), _address(grant.account, contracts)),
            )
        )
    )


def run_admin_calls(
    governor: EvmAdapter,
    artifacts: ArtifactSource,
    contracts: dict[str, DeployedContract],
    calls: Sequence[AdminCall],
    *,
    label: str,
    fast_forward: bool,
    wait: WaitFor = "mined",
) -> TimelockOutcome:
    """Schedule `calls` as one timelock batch, then execute it once its delay has passed.

    The operation's salt is derived from `label` and the calls themselves, so re-running with the
    same calls finds the same operation instead of scheduling another.
    """
    if not calls:
        return TimelockOutcome(operation_id="", state="nothing-to-do")
    timelock_abi = artifacts.get(TIMELOCK).abi
    timelock = contracts[TIMELOCK].address
    targets = [contracts[c.contract].address for c in calls]
    payloads = [_encode(governor, artifacts.get(c.contract).abi, c) for c in calls]
    values = [0] * len(calls)
    salt = keccak(text=label + ":" + "|".join(hex0x(p) for p in payloads))
    batch = (targets, values, payloads, ZERO_BYTES32, salt)

    def timelock_call(function: str, *args: Any) -> Any:
        return governor.call(ContractCall(timelock, timelock_abi, function, args))

    operation = bytes(timelock_call("hashOperationBatch", *batch))
    if timelock_call("isOperationDone", operation):
        return TimelockOutcome(hex0x(operation), "executed", calls=list(calls))
    if not timelock_call("isOperation", operation):
        delay = int(timelock_call("getMinDelay"))
        governor.send(
            ContractCall(timelock, timelock_abi, "scheduleBatch", (*batch, delay)),
            wait=wait,
            label=f"timelock-schedule:{label}",
        )
    ready_at = int(timelock_call("getTimestamp", operation))
    if not timelock_call("isOperationReady", operation):
        if not fast_forward:
            return TimelockOutcome(hex0x(operation), "pending", ready_at, list(calls))
        now = governor.block("latest").timestamp
        governor.devnet_request("evm_increaseTime", [max(ready_at - now, 0) + 1])
        governor.devnet_request("evm_mine", [])
    governor.send(
        ContractCall(timelock, timelock_abi, "executeBatch", batch),
        wait=wait,
        label=f"timelock-execute:{label}",
    )
    if not timelock_call("isOperationDone", operation):
        raise DeploymentError(
            f"timelock operation {hex0x(operation)} ({label}) executed but is not done",
            chain=governor.chain.name,
        )
    return TimelockOutcome(hex0x(operation), "executed", ready_at, list(calls))


def _address(account: str, contracts: dict[str, DeployedContract]) -> str:
    return contracts[account].address if account in contracts else account


def _encode(adapter: EvmAdapter, abi: Any, call: AdminCall) -> bytes:
    contract = adapter.w3.eth.contract(abi=list(abi))
    data = contract.encode_abi(call.function, args=list(call.args))
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)
