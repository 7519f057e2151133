"""`EvmAdapter`: the ChainAdapter for EVM chains, on web3.py 8.

Composition only: RPC failover lives in the provider (rpc_pool), fees in fees, nonces in nonces,
the transaction lifecycle in transactions. The adapter turns the family-neutral requests of
chain_adapters.base into web3 calls and web3 results back into plain dataclasses.

Reads need nothing but the chain config. Writes need a signer (an eth-account LocalAccount) and
an Engine for the nonce and transaction tables (see store.py) — a process that sends without
persisting could not recover its transactions after a crash, so there is no such mode.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound
from web3.types import RPCEndpoint

from chain_adapters.base import (
    ABI,
    Block,
    BlockId,
    ChainAdapter,
    ContractCall,
    Deployment,
    Log,
    LogQueryTooLarge,
    RawTx,
    Receipt,
    WaitFor,
)
from chain_adapters.evm.convert import as_bytes, hex0x, to_block, to_log, to_receipt
from chain_adapters.evm.errors import ErrorDecoder, revert_data_from
from chain_adapters.evm.nonces import NonceAllocator
from chain_adapters.evm.rpc_pool import FailoverHTTPProvider, PoolPolicy
from chain_adapters.evm.store import TransactionStore
from chain_adapters.evm.transactions import TransactionManager, TxPolicy, UnsignedTx
from chain_adapters.exceptions import ChainError, TransactionError, TransactionTimeout
from chain_adapters.registry import ChainConfig

#: Lower-cased fragments of the errors providers return when an eth_getLogs query is too big:
#: geth/Infura/Alchemy ("query returned more than 10000 results"), Erigon and QuickNode
#: ("response size exceeded", "limit exceeded"), block-span caps ("block range is too large",
#: "exceed maximum block range").
LOG_LIMIT_MARKERS: tuple[str, ...] = (
    "more than",
    "too many results",
    "response size",
    "limit exceeded",
    "block range",
    "range is too large",
    "exceed maximum block range",
    "query timeout exceeded",
)


class EvmAdapter(ChainAdapter):
    family = "evm"

    def __init__(
        self,
        chain: ChainConfig,
        *,
        engine: Engine | None = None,
        signer: LocalAccount | None = None,
        pool_policy: PoolPolicy | None = None,
        tx_policy: TxPolicy | None = None,
    ) -> None:
        super().__init__(chain)
        self._provider = FailoverHTTPProvider(
            chain_name=chain.name,
            chain_id=chain.chain_id,
            urls=chain.rpc_urls,
            block_time=chain.block_time,
            policy=pool_policy,
        )
        self._w3 = Web3(self._provider)
        # Chain ids are checked per URL by the provider, which is stronger than web3's validation
        # middleware (one eth_chainId round trip before every call/estimate, on whatever URL
        # answers). ENS resolution of addresses is not something a backend should do implicitly.
        for name in ("validation", "ens_name_to_address"):
            self._w3.middleware_onion.remove(name)
        self._signer = signer
        self._errors = ErrorDecoder()
        self._store = TransactionStore(engine) if engine is not None else None
        self._transactions = (
            TransactionManager(
                w3=self._w3,
                chain=chain,
                store=self._store,
                allocator=NonceAllocator(engine),
                policy=tx_policy or TxPolicy.for_chain(chain),
                is_final=self.is_final,
            )
            if engine is not None and self._store is not None
            else None
        )

    # -- accessors ----------------------------------------------------------------------------

    @property
    def w3(self) -> Web3:
        """The underlying client, for EVM-only code (deploy.py). Not for the backend."""
        return self._w3

    @property
    def provider(self) -> FailoverHTTPProvider:
        return self._provider

    @property
    def signer(self) -> LocalAccount | None:
        return self._signer

    @property
    def store(self) -> TransactionStore | None:
        return self._store

    @property
    def transactions(self) -> TransactionManager:
        if self._transactions is None:
            raise ChainError(
                "this adapter was built without a database engine; sending needs one "
                "(transactions are persisted before broadcast)",
                chain=self.chain.name,
            )
        return self._transactions

    def with_signer(self, signer: LocalAccount) -> EvmAdapter:
        """The same connection and store, sending as another key."""
        other = copy.copy(self)
        other._signer = signer
        return other

    def register_abi(self, abi: ABI) -> None:
        """Make the custom errors of `abi` decodable in every revert this adapter reports."""
        self._errors.add_abi(abi)

    # -- lifecycle ----------------------------------------------------------------------------

    def connect(self) -> None:
        self._provider.check_chain_ids()

    # -- reads --------------------------------------------------------------------------------

    def call(self, request: ContractCall | RawTx, *, block: BlockId = "latest") -> Any:
        decoder = self._errors.merged(request.abi)
        params: dict[str, Any] = {}
        if self._signer is not None:
            params["from"] = self._signer.address
        try:
            if isinstance(request, ContractCall):
                if request.value:
                    params["value"] = request.value
                return self._function(request).call(params, block_identifier=block)
            params.update(self._tx_params(request.to, request.data, request.value))
            return bytes(self._w3.eth.call(params, block))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise decoder.revert(
                revert_data_from(exc), chain=self.chain.name, tx_hash=None
            ) from exc

    def block(self, block: BlockId) -> Block:
        return to_block(self._w3.eth.get_block(block))

    def head(self) -> int:
        return int(self._w3.eth.block_number)

    def get_logs(
        self,
        *,
        from_block: int,
        to_block: BlockId,
        address: str | Sequence[str] | None = None,
        topics: Sequence[str | Sequence[str] | None] | None = None,
    ) -> list[Log]:
        params: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block}
        if isinstance(address, str):
            params["address"] = Web3.to_checksum_address(address)
        elif address is not None:
            params["address"] = [Web3.to_checksum_address(a) for a in address]
        if topics is not None:
            params["topics"] = list(topics)
        return [to_log(entry) for entry in self._w3.eth.get_logs(params)]  # type: ignore[arg-type]

    def fetch_logs(
        self,
        *,
        from_block: int,
        to_block: int,
        address: str | Sequence[str] | None = None,
    ) -> list[Log]:
        """Like `get_logs`, through the raw provider (same failover and retries) for speed.

        web3's result formatters checksum every address and wrap every field; on a backfill of
        100,000 logs that costs more than the RPC itself. Here each distinct address is
        checksummed once. A provider's size/range limit becomes LogQueryTooLarge; any other
        JSON-RPC error is re-raised by web3's own path (`get_logs`) with its usual exception.
        """
        params: dict[str, Any] = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        if isinstance(address, str):
            params["address"] = address.lower()
        elif address is not None:
            params["address"] = [a.lower() for a in address]
        response = self._provider.make_request(RPCEndpoint("eth_getLogs"), [params])
        error = response.get("error")
        if error is not None:
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if any(marker in message.lower() for marker in LOG_LIMIT_MARKERS):
                raise LogQueryTooLarge(
                    message, chain=self.chain.name, from_block=from_block, to_block=to_block
                )
            return self.get_logs(from_block=from_block, to_block=to_block, address=address)
        checksummed: dict[str, str] = {}
        logs: list[Log] = []
        for entry in response.get("result") or []:
            raw_address = entry["address"].lower()
            checksum = checksummed.get(raw_address)
            if checksum is None:
                checksum = checksummed[raw_address] = Web3.to_checksum_address(raw_address)
            logs.append(
                Log(
                    address=checksum,
                    topics=tuple(map(str.lower, entry["topics"])),
                    data=bytes.fromhex(entry["data"][2:]),
                    block_number=int(entry["blockNumber"], 16),
                    block_hash=entry["blockHash"].lower(),
                    transaction_hash=entry["transactionHash"].lower(),
                    log_index=int(entry["logIndex"], 16),
                    removed=bool(entry.get("removed", False)),
                )
            )
        return logs

    def get_code(self, address: str, *, block: BlockId = "latest") -> bytes:
        return bytes(self._w3.eth.get_code(Web3.to_checksum_address(address), block))

    def get_balance(self, address: str, *, block: BlockId = "latest") -> int:
        return int(self._w3.eth.get_balance(Web3.to_checksum_address(address), block))

    def transaction_count(self, address: str, *, block: BlockId = "latest") -> int:
        return int(self._w3.eth.get_transaction_count(Web3.to_checksum_address(address), block))

    # -- writes -------------------------------------------------------------------------------

    def send(
        self,
        request: ContractCall | RawTx,
        *,
        wait: WaitFor = "final",
        label: str | None = None,
    ) -> Receipt:
        signer = self._require_signer()
        decoder = self._errors.merged(request.abi)
        if isinstance(request, ContractCall):
            to: str | None = request.address
            data = as_bytes(
                self._contract(request).encode_abi(request.function, args=list(request.args))
            )
        else:
            to, data = request.to, request.data
        gas = request.gas
        if gas is None:
            gas = self.transactions.estimate_gas(
                signer.address, to=to, data=data, value=request.value, decoder=decoder
            )
        unsigned = UnsignedTx(to=to, data=data, value=request.value, gas=gas, label=label)
        return self.transactions.send(signer, unsigned, wait=wait, decoder=decoder)

    def deploy(
        self,
        bytecode: bytes | str,
        *,
        abi: ABI = (),
        args: Sequence[Any] = (),
        wait: WaitFor = "final",
        label: str | None = None,
    ) -> Deployment:
        init_code = self.init_code(bytecode, abi=abi, args=args)
        receipt = self.send(RawTx(to=None, data=init_code, abi=abi), wait=wait, label=label)
        if receipt.contract_address is None:
            raise TransactionError(
                "creation receipt has no contract address",
                chain=self.chain.name,
                tx_hash=receipt.transaction_hash,
            )
        return Deployment(address=receipt.contract_address, receipt=receipt)

    def init_code(self, bytecode: bytes | str, *, abi: ABI = (), args: Sequence[Any] = ()) -> bytes:
        """Creation bytecode followed by the ABI-encoded constructor arguments."""
        code = as_bytes(bytecode)
        if not any(entry.get("type") == "constructor" for entry in abi):
            if args:
                raise ValueError("constructor arguments given but the ABI has no constructor")
            return code
        factory = self._w3.eth.contract(abi=list(abi), bytecode=code)  # type: ignore[call-overload]
        return as_bytes(factory.constructor(*args).data_in_transaction)

    def resume_pending(self, *, wait: WaitFor = "final") -> list[Receipt]:
        """After a restart: rebroadcast and follow this signer's unfinished transactions."""
        return self.transactions.resume(self._require_signer(), decoder=self._errors, wait=wait)

    def reset_nonce(self) -> int:
        """Set the signer's nonce counter to the chain's pending count (after a devnet reset).

        Only for chains marked `devnet = true`: on a real chain a counter ahead of the chain
        means transactions of ours are in flight, and lowering it would sign conflicting ones.
        """
        if not self.chain.devnet:
            raise ChainError("reset_nonce is for devnets only", chain=self.chain.name)
        signer = self._require_signer()
        return self.transactions.allocator.resync(
            self.chain_id,
            signer.address,
            chain_nonce=self.transaction_count(signer.address, block="pending"),
            force=True,
        )

    def send_presigned(self, raw_tx: bytes, *, timeout: float = 60.0) -> Receipt:
        """Broadcast a transaction signed elsewhere (not our key: no nonce allocation, no row).

        Used for the CREATE2 proxy's keyless deployment transaction.
        """
        tx_hash = hex0x(self._w3.eth.send_raw_transaction(raw_tx))
        receipt = self.wait_for_receipt(tx_hash, timeout=timeout)
        if not receipt.status:
            raise TransactionError(
                "presigned transaction failed", chain=self.chain.name, tx_hash=tx_hash
            )
        return receipt

    def wait_for_receipt(self, tx_hash: str, *, timeout: float = 60.0) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
                tx = self._w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
                return to_receipt(raw, chain_id=self.chain_id, nonce=int(tx["nonce"]))
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise TransactionTimeout(
                        f"not mined after {timeout:.0f}s", chain=self.chain.name, tx_hash=tx_hash
                    ) from None
                time.sleep(min(self.chain.block_time / 4, 1.0))

    # -- devnet helpers -----------------------------------------------------------------------

    def devnet_request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """An `anvil_*` / `evm_*` request; refused on chains not marked `devnet = true`."""
        if not self.chain.devnet:
            raise ChainError(f"{method} is for devnets only", chain=self.chain.name)
        return self._w3.manager.request_blocking(RPCEndpoint(method), list(params))

    # -- helpers ------------------------------------------------------------------------------

    def _require_signer(self) -> LocalAccount:
        if self._signer is None:
            raise ChainError(
                "this adapter has no signer; use with_signer(account) to send",
                chain=self.chain.name,
            )
        return self._signer

    def _contract(self, request: ContractCall) -> Any:
        return self._w3.eth.contract(
            address=Web3.to_checksum_address(request.address),
            abi=list(request.abi),  # type: ignore[arg-type]
        )

    def _function(self, request: ContractCall) -> Any:
        contract = self._contract(request)
        if "(" in request.function:
            return contract.get_function_by_signature(request.function)(*request.args)
        return contract.functions[request.function](*request.args)

    @staticmethod
    def _tx_params(to: str | None, data: bytes, value: int) -> dict[str, Any]:
        params: dict[str, Any] = {"data": data}
        if to is not None:
            params["to"] = Web3.to_checksum_address(to)
        if value:
            params["value"] = value
        return params
