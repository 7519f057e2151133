"""Billing tests reuse the risk tests' devnet driver and the watcher's database fixtures."""

from __future__ import annotations

from tests.risk.conftest import engine, factory, lending, market, watcher_settings  # noqa: F401
