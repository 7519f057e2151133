"""Adapter registry: chain config -> adapter class, per chain family.

Only the EVM family exists today, but the backend asks this module, never `EvmAdapter`
directly, so adding a family is one class plus one `register_adapter` call, and every adapter
proves itself against the same conformance tests (tests/chain_adapters/conformance.py).

Adapters are registered lazily by import path so that importing the registry does not import
every family's client library.
"""

from __future__ import annotations

import importlib
from typing import Any

from chain_adapters.base import ChainAdapter
from chain_adapters.exceptions import ChainConfigError
from chain_adapters.registry import ChainConfig

DEFAULT_FAMILY = "evm"

_REGISTRY: dict[str, str | type[ChainAdapter]] = {
    "evm": "chain_adapters.evm.adapter:EvmAdapter",
}


def register_adapter(family: str, adapter: str | type[ChainAdapter]) -> None:
    """Register a family's adapter class (or "module:Class" to import it on first use)."""
    existing = _REGISTRY.get(family)
    if existing is not None and existing != adapter:
        raise ChainConfigError(f"chain family {family!r} already has an adapter: {existing}")
    _REGISTRY[family] = adapter


def families() -> list[str]:
    return sorted(_REGISTRY)


def family_of(chain: ChainConfig) -> str:
    """The chain's family; ChainConfig has no `family` field yet, so EVM unless it grows one."""
    return str(getattr(chain, "family", DEFAULT_FAMILY))


def adapter_class(chain: ChainConfig) -> type[ChainAdapter]:
    family = family_of(chain)
    entry = _REGISTRY.get(family)
    if entry is None:
        raise ChainConfigError(
            f"no adapter for chain family {family!r}; known: {', '.join(families())}",
            chain=chain.name,
        )
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        loaded = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(loaded, type) and issubclass(loaded, ChainAdapter)):
            raise ChainConfigError(f"{entry} is not a ChainAdapter subclass")
        _REGISTRY[family] = loaded
        return loaded
    return entry


def create_adapter(chain: ChainConfig, **options: Any) -> ChainAdapter:
    """An adapter for `chain`; `options` go to the family's constructor (engine, signer, ...)."""
    return adapter_class(chain)(chain, **options)
