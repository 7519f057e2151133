"""The chain error tree.

Every error carries the context an operator needs to act without reading a stack trace: which
chain, which transaction, which revert. Modelled on ape's and web3.py's exception trees, but
rooted in one class so callers can catch everything chain-related in one place.
"""

from __future__ import annotations

from typing import Any


class ChainError(Exception):
    """Root of every error raised by chain_adapters."""

    def __init__(self, message: str, *, chain: str | None = None) -> None:
        self.chain = chain
        super().__init__(f"[{chain}] {message}" if chain else message)


class ChainConfigError(ChainError):
    """The chains config file is malformed or contradicts itself."""


class ChainIdMismatch(ChainError):
    """An RPC endpoint answers with another chain id than the config promises."""

    def __init__(self, *, chain: str, url: str, expected: int, actual: int) -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"RPC {url} reports chain id {actual} but the config expects {expected}; "
            "fix the chain id or the RPC URL in the chains file",
            chain=chain,
        )


class RPCUnavailable(ChainError):
    """No RPC endpoint of a chain answered (every URL was tried)."""

    def __init__(self, *, chain: str, urls: list[str], last_error: str) -> None:
        self.urls = urls
        self.last_error = last_error
        super().__init__(
            f"no RPC endpoint answered (tried {', '.join(urls)}); last error: {last_error}",
            chain=chain,
        )


class CompileError(ChainError):
    """solc rejected a source file. `file`, `line` and `message` name the first error."""

    def __init__(self, *, file: str, line: int | None, message: str, formatted: str) -> None:
        self.file = file
        self.line = line
        self.compiler_message = message
        self.formatted = formatted
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class SolcNotFound(ChainError):
    """No usable solc executable could be resolved."""


class DevnetError(ChainError):
    """An Anvil devnet failed to start or stopped unexpectedly."""


class TransactionError(ChainError):
    """A transaction failed after broadcast, or could not be sent at all."""

    def __init__(self, message: str, *, chain: str, tx_hash: str | None = None) -> None:
        self.tx_hash = tx_hash
        suffix = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{message}{suffix}", chain=chain)


class ContractRevert(TransactionError):
    """A call or transaction reverted. `error_name`/`error_args` decode a custom error."""

    def __init__(
        self,
        *,
        chain: str,
        tx_hash: str | None,
        error_name: str | None,
        error_args: dict[str, Any] | None,
        raw_data: str | None,
    ) -> None:
        self.error_name = error_name
        self.error_args = error_args or {}
        self.raw_data = raw_data
        if error_name:
            args = ", ".join(f"{k}={v!r}" for k, v in self.error_args.items())
            what = f"reverted with {error_name}({args})"
        else:
            what = f"reverted (undecoded data {raw_data or '0x'})"
        super().__init__(what, chain=chain, tx_hash=tx_hash)


class TransactionTimeout(TransactionError):
    """A transaction was not mined (or not confirmed) within the allowed time."""


class DeploymentError(ChainError):
    """A deterministic deployment could not be completed or verified."""
