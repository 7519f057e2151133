"""EVM chains on web3.py 8: RPC pool, fees, nonces, transaction store and lifecycle, adapter."""

from chain_adapters.evm.adapter import EvmAdapter
from chain_adapters.evm.rpc_pool import FailoverHTTPProvider, PoolPolicy
from chain_adapters.evm.transactions import TxPolicy

__all__ = ["EvmAdapter", "FailoverHTTPProvider", "PoolPolicy", "TxPolicy"]
