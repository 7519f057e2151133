"""Transaction lifecycle: build, estimate, allocate nonce, sign, persist, broadcast, wait.

The order matters. Gas is estimated before a nonce is allocated, so a call that would revert
fails without consuming one. The signed bytes are committed to the database together with the
nonce *before* broadcasting: if the process dies after that, `resume()` rebroadcasts exactly the
same transaction instead of signing a second one (no double spend, no nonce gap).

While waiting, a transaction that is not mined after `stuck_after` seconds is first rebroadcast
unchanged (nodes drop transactions from their pools: restarts, pool limits), and if it is still
not mined after another `stuck_after`, replaced by the same nonce with fees bumped by at least
12.5 % (capped by the chain's `max_fee_gwei`). All attempts of a nonce are watched: whichever is
mined wins and the others become `replaced`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from chain_adapters.base import Receipt, WaitFor
from chain_adapters.evm import fees as fee_math
from chain_adapters.evm.convert import hex0x, to_receipt
from chain_adapters.evm.errors import ErrorDecoder, FeeCapExceeded, NonceGap, revert_data_from
from chain_adapters.evm.nonces import NonceAllocator
from chain_adapters.evm.store import NewTransaction, TransactionStore, TxRecord, TxStatus
from chain_adapters.evm.wire import (
    Broadcast,
    UnsignedTx,
    broadcast,
    fees_of,
    revert_data,
    unsigned_of,
)
from chain_adapters.exceptions import TransactionError, TransactionTimeout
from chain_adapters.registry import ChainConfig

logger = logging.getLogger(__name__)

CANCEL_GAS = 21_000


@dataclass(frozen=True)
class TxPolicy:
    """Timing of the wait loop. `for_chain` derives sane values from the block time."""

    poll_interval: float
    stuck_after: float  # seconds without a receipt before rebroadcast, then replacement
    timeout: float  # overall, from first broadcast to the requested finality
    max_replacements: int = 5
    gas_margin: Decimal = Decimal("1.2")  # on top of eth_estimateGas
    max_external_nonce_retries: int = 3
    fee_ttl: float | None = None  # reuse a fee quote this long; None = half the block time

    @classmethod
    def for_chain(cls, chain: ChainConfig) -> TxPolicy:
        block_time = chain.block_time
        return cls(
            poll_interval=min(max(block_time / 4, 0.05), 2.0),
            stuck_after=max(6 * block_time, 3.0),
            timeout=max(60 * block_time, 120.0) + chain.confirmations * block_time * 2,
        )


class TransactionManager:
    """Sends and tracks the transactions of one chain. Thread-safe; state lives in the DB."""

    def __init__(
        self,
        *,
        w3: Web3,
        chain: ChainConfig,
        store: TransactionStore,
        allocator: NonceAllocator,
        policy: TxPolicy,
        is_final: Callable[[int], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.chain = chain
        self.store = store
        self.allocator = allocator
        self.policy = policy
        self._is_final = is_final
        self._sleep = sleep
        self._quote: tuple[float, fee_math.FeeQuote] | None = None

    # -- public -------------------------------------------------------------------------------

    def send(
        self, signer: LocalAccount, tx: UnsignedTx, *, wait: WaitFor, decoder: ErrorDecoder
    ) -> Receipt:
        record = self.submit(signer, tx)
        return self.wait(signer, record, wait=wait, decoder=decoder)

    def estimate_gas(
        self,
        sender: str,
        *,
        to: str | None,
        data: bytes,
        value: int,
        decoder: ErrorDecoder,
    ) -> int:
        """eth_estimateGas plus the policy margin; a revert raises a decoded ContractRevert."""
        params: dict[str, Any] = {"from": sender, "data": data, "value": value}
        if to is not None:
            params["to"] = Web3.to_checksum_address(to)
        try:
            estimate = int(self.w3.eth.estimate_gas(params))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decoder.revert(
                revert_data_from(exc), chain=self.chain.name, tx_hash=None
            ) from exc
        return fee_math.ceil_mul(estimate, self.policy.gas_margin)

    def submit(self, signer: LocalAccount, tx: UnsignedTx) -> TxRecord:
        """Allocate a nonce, sign, persist, broadcast. Returns the persisted (pending) row."""
        quote = self._fee_quote()
        for _ in range(self.policy.max_external_nonce_retries + 1):
            record = self._sign_and_record(signer, tx, quote.fees)
            result = broadcast(self.w3, record.raw_tx)
            if result.in_pool:
                return record
            if result.outcome in (Broadcast.NONCE_TOO_LOW, Broadcast.UNDERPRICED):
                # Only this system allocates this key's nonces, so the nonce was used (mined, or
                # pending with a higher fee) by a transaction from elsewhere: re-sync the counter
                # past it and sign again.
                self.store.set_status(record.id, "dropped", error=result.message)
                self.allocator.resync(
                    self.chain.chain_id, signer.address, chain_nonce=self._pending_count(signer)
                )
                logger.warning(
                    "[%s] nonce %d of %s was used outside this system; re-signing",
                    self.chain.name,
                    record.nonce,
                    signer.address,
                )
                continue
            self._give_back(signer, record, result.message)
            raise TransactionError(
                f"node refused the transaction: {result.message}",
                chain=self.chain.name,
                tx_hash=record.tx_hash,
            )
        raise TransactionError(
            f"nonce of {signer.address} keeps being used by another sender; giving up",
            chain=self.chain.name,
        )

    def prepare(self, signer: LocalAccount, tx: UnsignedTx) -> TxRecord:
        """Sign and persist without broadcasting (what a crash right after commit leaves)."""
        return self._sign_and_record(signer, tx, self._fee_quote().fees)

    def resume(
        self, signer: LocalAccount, *, decoder: ErrorDecoder, wait: WaitFor = "final"
    ) -> list[Receipt]:
        """Rebroadcast and follow every unfinished transaction of `signer` (after a restart)."""
        receipts: list[Receipt] = []
        by_nonce: dict[int, list[TxRecord]] = {}
        for record in self.store.unfinished(self.chain.chain_id, signer.address):
            by_nonce.setdefault(record.nonce, []).append(record)
        for records in by_nonce.values():
            for record in records:
                if record.status == "pending":
                    broadcast(self.w3, record.raw_tx)
        for nonce in sorted(by_nonce):
            receipts.append(self.wait(signer, by_nonce[nonce][-1], wait=wait, decoder=decoder))
        return receipts

    def wait(
        self, signer: LocalAccount, record: TxRecord, *, wait: WaitFor, decoder: ErrorDecoder
    ) -> Receipt:
        """Follow every attempt of `record.nonce` until one is mined (and final if asked)."""
        started = time.monotonic()
        deadline = started + self.policy.timeout
        last_action = started
        rebroadcast: set[int] = set()
        consumed_since: float | None = None
        attempts = [record]  # fresh from submit(): no need to ask the database the first time
        while True:
            found = self._find_receipt(attempts)
            now = time.monotonic()
            if found is not None:
                mined, raw_receipt = found
                receipt = to_receipt(raw_receipt, chain_id=self.chain.chain_id, nonce=record.nonce)
                self._mark_losers(mined, attempts)
                if not receipt.status:
                    raise self._revert(mined, receipt, decoder)
                final = wait == "final" and self._is_final(receipt.block_number)
                self._record_mined(mined, receipt, "confirmed" if final else "mined")
                if wait == "mined" or final:
                    return receipt
            else:
                self._undo_mined(attempts)  # a reorg may have removed it again
                if now - last_action >= self.policy.stuck_after:
                    consumed_since = self._unstick(
                        signer, attempts, rebroadcast, consumed_since, now
                    )
                    last_action = now
            if now >= deadline:
                raise TransactionTimeout(
                    f"nonce {record.nonce} of {record.sender} not "
                    f"{'mined' if found is None else 'final'} after {self.policy.timeout:.0f}s "
                    f"({len(attempts)} attempt(s))",
                    chain=self.chain.name,
                    tx_hash=attempts[-1].tx_hash if attempts else record.tx_hash,
                )
            self._sleep(self.policy.poll_interval)
            attempts = self.store.attempts(self.chain.chain_id, record.sender, record.nonce)

    # -- signing and recording ----------------------------------------------------------------

    def _fee_quote(self) -> fee_math.FeeQuote:
        """Current fees; reused for a fraction of a block (they cannot change within one)."""
        ttl = self.policy.fee_ttl if self.policy.fee_ttl is not None else self.chain.block_time / 2
        now = time.monotonic()
        cached = self._quote
        if cached is not None and now - cached[0] < ttl:
            quote = cached[1]
        else:
            quote = fee_math.suggest_fees(self.w3, self.chain)
            self._quote = (now, quote)
        if quote.base_fee is not None and quote.fees.ceiling < quote.base_fee:
            raise FeeCapExceeded(
                f"base fee {quote.base_fee} wei exceeds max_fee_gwei={self.chain.max_fee_gwei}; "
                "raise the cap in the chains file or wait for fees to fall",
                chain=self.chain.name,
            )
        return quote

    def _pending_count(self, signer: LocalAccount) -> int:
        return int(self.w3.eth.get_transaction_count(signer.address, "pending"))

    def _sign_and_record(
        self,
        signer: LocalAccount,
        tx: UnsignedTx,
        fees: fee_math.Fees,
        *,
        attempt: int = 0,
        nonce: int | None = None,
    ) -> TxRecord:
        """Sign and insert in one DB transaction with the nonce (allocated, or given)."""
        if nonce is not None:
            with self.store.engine.begin() as conn:
                return self.store.insert(conn, self._new_row(signer, tx, fees, nonce, attempt))
        with self.allocator.reserve(
            self.chain.chain_id, signer.address, chain_nonce=lambda: self._pending_count(signer)
        ) as lease:
            return self.store.insert(
                lease.connection, self._new_row(signer, tx, fees, lease.nonce, attempt)
            )

    def _new_row(
        self, signer: LocalAccount, tx: UnsignedTx, fees: fee_math.Fees, nonce: int, attempt: int
    ) -> NewTransaction:
        fields: dict[str, Any] = {
            "chainId": self.chain.chain_id,
            "nonce": nonce,
            "gas": tx.gas,
            "value": tx.value,
            "data": tx.data,
            **fees.tx_fields(),
        }
        if tx.to is not None:
            fields["to"] = Web3.to_checksum_address(tx.to)
        signed = signer.sign_transaction(fields)
        eip1559 = fees if isinstance(fees, fee_math.Eip1559Fees) else None
        return NewTransaction(
            chain_id=self.chain.chain_id,
            sender=signer.address,
            nonce=nonce,
            tx_hash=hex0x(signed.hash),
            raw_tx=bytes(signed.raw_transaction),
            to_address=tx.to,
            gas_limit=tx.gas,
            max_fee_per_gas=eip1559.max_fee_per_gas if eip1559 else None,
            max_priority_fee_per_gas=eip1559.max_priority_fee_per_gas if eip1559 else None,
            gas_price=None if eip1559 else fees.ceiling,
            attempt=attempt,
            label=tx.label,
        )

    # -- broadcasting -------------------------------------------------------------------------

    def _give_back(self, signer: LocalAccount, record: TxRecord, reason: str) -> None:
        """A refused broadcast must not leave a hole in the nonce sequence."""
        self.store.set_status(record.id, "failed", error=reason)
        if self.allocator.release(self.chain.chain_id, signer.address, record.nonce):
            return
        # Later nonces are already out: fill this one with a 0-value transfer to self.
        cancel = UnsignedTx(
            to=signer.address, data=b"", value=0, gas=CANCEL_GAS, label=f"cancel:{record.nonce}"
        )
        filler = self._sign_and_record(
            signer, cancel, self._fee_quote().fees, attempt=record.attempt + 1, nonce=record.nonce
        )
        result = broadcast(self.w3, filler.raw_tx)
        if not result.in_pool:
            self.store.set_status(filler.id, "failed", error=result.message)
            raise NonceGap(
                f"nonce {record.nonce} of {signer.address} could not be filled "
                f"({result.message}); later transactions wait until it is",
                chain=self.chain.name,
                tx_hash=record.tx_hash,
            )

    # -- waiting ------------------------------------------------------------------------------

    def _find_receipt(self, attempts: list[TxRecord]) -> tuple[TxRecord, Any] | None:
        for attempt in reversed(attempts):
            try:
                receipt = self.w3.eth.get_transaction_receipt(attempt.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            if receipt is not None and receipt.get("blockNumber") is not None:
                return attempt, receipt
        return None

    def _record_mined(self, mined: TxRecord, receipt: Receipt, status: TxStatus) -> None:
        if mined.status == "confirmed" and mined.receipt_block_hash == receipt.block_hash:
            return  # never downgrade (resume() may wait only for "mined")
        if mined.status != status or mined.receipt_block_hash != receipt.block_hash:
            self.store.set_status(
                mined.id, status, block_number=receipt.block_number, block_hash=receipt.block_hash
            )

    def _mark_losers(self, mined: TxRecord, attempts: list[TxRecord]) -> None:
        """Once one attempt of a nonce is mined, every other attempt is `replaced`."""
        losers = [a.id for a in attempts if a.id != mined.id and a.status in ("pending", "mined")]
        self.store.set_status(losers, "replaced")

    def _undo_mined(self, attempts: list[TxRecord]) -> None:
        reorged = [a.id for a in attempts if a.status in ("mined", "replaced")]
        if any(a.status == "mined" for a in attempts):
            logger.warning("[%s] a mined transaction disappeared (reorg)", self.chain.name)
            self.store.set_status(reorged, "pending")

    def _unstick(
        self,
        signer: LocalAccount,
        attempts: list[TxRecord],
        rebroadcast: set[int],
        consumed_since: float | None,
        now: float,
    ) -> float | None:
        """One corrective action for a transaction without receipt; see module docstring."""
        if not attempts:
            return consumed_since
        latest = attempts[-1]
        if self._latest_count(signer) > latest.nonce:
            # The nonce is used but none of our attempts has a receipt: give the node one more
            # period (receipt indexing can lag), then conclude someone else used it.
            if consumed_since is None:
                return now
            self.store.set_status([a.id for a in attempts], "dropped", error="nonce used elsewhere")
            raise TransactionError(
                f"nonce {latest.nonce} of {signer.address} was used by a transaction not sent "
                "by this system; nothing of ours was mined",
                chain=self.chain.name,
                tx_hash=latest.tx_hash,
            )
        if latest.id not in rebroadcast:
            rebroadcast.add(latest.id)
            for attempt in attempts:  # every attempt: the node may have dropped any of them
                if attempt.status == "pending":
                    broadcast(self.w3, attempt.raw_tx)
            self._fill_gaps(signer, latest.nonce)
            logger.info("[%s] rebroadcast nonce %d", self.chain.name, latest.nonce)
            return None
        self._replace(signer, latest, attempts)
        return None

    def _fill_gaps(self, signer: LocalAccount, nonce: int) -> None:
        """Make sure every lower nonce the node lacks is on its way, or fail loudly.

        A lower nonce that was persisted but never broadcast (RPC outage, crash), or mined and
        then reorganised away while its waiter was gone, blocks every later one: rebroadcast it.
        If some lower nonce has no unfinished transaction of ours at all, nothing will ever
        fill it — the store is ahead of the chain (typically a devnet reverted under a nonce
        store that survived) — and waiting would only end in a timeout.
        """
        chain_next = self._pending_count(signer)
        if chain_next >= nonce:
            return
        ours = [
            r
            for r in self.store.unfinished(self.chain.chain_id, signer.address)
            if chain_next <= r.nonce < nonce
        ]
        for older in ours:
            broadcast(self.w3, older.raw_tx)
        missing = sorted(set(range(chain_next, nonce)) - {r.nonce for r in ours})
        if missing:
            raise NonceGap(
                f"nonce {nonce} of {signer.address} waits for nonce(s) {_ranges(missing)}, which "
                "no unfinished transaction of ours fills: the nonce store is ahead of the chain "
                "(a devnet reset or revert?). Re-sync it with "
                "NonceAllocator.resync(..., force=True) or EvmAdapter.reset_nonce()",
                chain=self.chain.name,
            )

    def _replace(self, signer: LocalAccount, latest: TxRecord, attempts: list[TxRecord]) -> None:
        if len(attempts) > self.policy.max_replacements:
            broadcast(self.w3, latest.raw_tx)
            return
        previous = fees_of(latest)
        try:
            current: fee_math.Fees | None = fee_math.suggest_fees(self.w3, self.chain).fees
        except Web3RPCError:
            current = None
        bumped = fee_math.bump(previous, current=current, max_fee_cap=self.chain.max_fee_wei)
        if bumped is None:
            logger.warning(
                "[%s] nonce %d stuck but max_fee_gwei=%s leaves no room for a 12.5%% bump",
                self.chain.name,
                latest.nonce,
                self.chain.max_fee_gwei,
            )
            broadcast(self.w3, latest.raw_tx)
            return
        tx = unsigned_of(latest)
        replacement = self._sign_and_record(
            signer, tx, bumped, attempt=latest.attempt + 1, nonce=latest.nonce
        )
        result = broadcast(self.w3, replacement.raw_tx)
        if result.outcome is Broadcast.UNDERPRICED or result.outcome is Broadcast.REJECTED:
            self.store.set_status(replacement.id, "dropped", error=result.message)
        logger.info(
            "[%s] replaced nonce %d with %s (%s): %s",
            self.chain.name,
            latest.nonce,
            replacement.tx_hash,
            bumped,
            result.outcome.value,
        )

    def _latest_count(self, signer: LocalAccount) -> int:
        return int(self.w3.eth.get_transaction_count(signer.address, "latest"))

    # -- reverts ------------------------------------------------------------------------------

    def _revert(self, mined: TxRecord, receipt: Receipt, decoder: ErrorDecoder) -> TransactionError:
        data = revert_data(self.w3, receipt.transaction_hash, receipt.block_number)
        error = decoder.revert(data, chain=self.chain.name, tx_hash=receipt.transaction_hash)
        self.store.set_status(
            mined.id,
            "failed",
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            error=str(error),
        )
        return error


def _ranges(values: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9" (a gap after a devnet revert can be long)."""
    spans: list[tuple[int, int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], value)
        else:
            spans.append((value, value))
    return ", ".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in spans)


__all__ = ["TransactionManager", "TxPolicy", "UnsignedTx"]
