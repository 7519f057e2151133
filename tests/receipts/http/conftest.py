"""The receipts API over HTTP: the app and database fixtures of tests/backend, and the auth
helpers of tests/auth to make wallets, providers and auditors."""

from __future__ import annotations

from tests.backend.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    _no_credagg_env,
    app,
    backend_database_url,
    client,
    make_settings,
    settings,
)
