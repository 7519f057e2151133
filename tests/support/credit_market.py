"""The credit pipeline's market fixtures (tests/credit/conftest.py) for the end-to-end tests:
the two-chain market, its files, settings on a migrated database, lender processes.

Only fixtures that run when asked: the autouse ones of tests/credit stay in that package
(a test module elsewhere that wants them imports them by name, which ruff accepts).
"""

from tests.credit.conftest import (  # noqa: F401 - registered as fixtures by this plugin
    backend_database_url,
    credit_settings,
    make_settings,
    market,
    market_files,
    start_lender,
)
