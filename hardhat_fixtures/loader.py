"""Hardhat's `loadFixture`, for pytest and Anvil.

A scenario (a function that deploys contracts and sets state on one or more devnets) runs once;
the loader then takes an `evm_snapshot` on every devnet. Each later load reverts to that snapshot
and immediately takes a new one, because Anvil, like Hardhat, consumes a snapshot on revert and
also drops every snapshot taken after it. That second rule is why the loader tracks the order of
its snapshots: loading an older scenario invalidates newer ones, which are then redeployed from
the base state when next asked for. Scenarios are deterministic (CREATE2 addresses, fixed keys),
so a redeploy yields the same addresses.

Test isolation uses the same mechanism: `begin_test` snapshots, `end_test` reverts — to the
scenario's snapshot when the test loaded one (its own snapshot was consumed), else to its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain_adapters.rpc import RPCCallError, rpc_call

ScenarioFn = Callable[[Any], Any]
_SCENARIOS: dict[str, ScenarioFn] = {}


class ScenarioError(Exception):
    """An unknown scenario, or a snapshot that a devnet refused."""


def scenario(name: str) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register a named scenario: `@scenario("two_chain_market") def deploy(env): ...`."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in _SCENARIOS and _SCENARIOS[name] is not fn:
            raise ScenarioError(f"scenario {name!r} is registered twice")
        _SCENARIOS[name] = fn
        return fn

    return register


def scenarios() -> dict[str, ScenarioFn]:
    return dict(_SCENARIOS)


def _snapshot(url: str) -> str:
    return str(rpc_call(url, "evm_snapshot"))


def _revert(url: str, snapshot_id: str) -> bool:
    try:
        return bool(rpc_call(url, "evm_revert", [snapshot_id]))
    except RPCCallError:
        return False  # Anvil answers "Resource not found" for a consumed snapshot


@dataclass
class _Record:
    snapshots: dict[str, str]
    result: Any
    sequence: int


@dataclass
class FixtureLoader:
    """One per test session and set of devnets (identified by their RPC URLs)."""

    rpc_urls: Sequence[str]
    env: Any = None
    _base: dict[str, str] = field(default_factory=dict)
    _records: dict[str, _Record] = field(default_factory=dict)
    _sequence: int = 0
    _test_snapshots: dict[str, str] | None = None
    _test_loaded: str | None = None
    _at_scenario: str | None = None  # the chains are in this scenario's state (not the base)
    deploy_count: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._base = self._snapshot_all()

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _snapshot_all(self) -> dict[str, str]:
        return {url: _snapshot(url) for url in self.rpc_urls}

    def _revert_all(self, snapshots: dict[str, str]) -> bool:
        ok = True
        for url in self.rpc_urls:
            ok = _revert(url, snapshots[url]) and ok
        return ok

    def _forget_after(self, sequence: int) -> None:
        for name in [n for n, r in self._records.items() if r.sequence > sequence]:
            del self._records[name]

    def load(self, name: str, fn: ScenarioFn | None = None) -> Any:
        """Return the scenario's result with every devnet in its just-deployed state."""
        fn = fn or _SCENARIOS.get(name)
        if fn is None:
            known = ", ".join(sorted(_SCENARIOS)) or "none"
            raise ScenarioError(f"unknown scenario {name!r}; registered: {known}")
        record = self._records.get(name)
        if record is not None and self._revert_all(record.snapshots):
            self._forget_after(record.sequence)
            record.snapshots = self._snapshot_all()
            record.sequence = self._next()
        else:
            self._reset_to_base()
            result = fn(self.env)
            self.deploy_count[name] = self.deploy_count.get(name, 0) + 1
            record = _Record(self._snapshot_all(), result, self._next())
            self._records[name] = record
        self._test_loaded = self._at_scenario = name
        return record.result

    def _reset_to_base(self) -> None:
        if not self._revert_all(self._base):
            raise ScenarioError("the base snapshot was lost: a test reverted past the loader")
        self._records.clear()
        self._base = self._snapshot_all()
        self._sequence = 0
        self._at_scenario = None

    def begin_test(self, *, clean: bool = True) -> None:
        """Snapshot before a test. `clean`: the test loads no scenario, so it must not see one a
        previous test left deployed (it would find contracts at its own CREATE2 addresses)."""
        self._test_loaded = None
        if clean and self._at_scenario is not None:
            self._reset_to_base()
        self._test_snapshots = self._snapshot_all()

    def end_test(self) -> None:
        """Undo whatever the test did, whichever snapshots it consumed.

        A revert does not reset node settings or the mempool, so those are put back too: a test
        that turned automine off and failed must not leave the next one waiting for a block.
        """
        for url in self.rpc_urls:
            rpc_call(url, "anvil_dropAllTransactions")
            rpc_call(url, "evm_setAutomine", [True])
        loaded, own = self._test_loaded, self._test_snapshots
        self._test_loaded = self._test_snapshots = None
        if loaded is not None and loaded in self._records:
            record = self._records[loaded]
            if self._revert_all(record.snapshots):
                self._forget_after(record.sequence)
                record.snapshots = self._snapshot_all()
                record.sequence = self._next()
                return
        if own is not None and self._revert_all(own):
            return
        self._reset_to_base()
