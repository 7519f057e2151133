"""The API fuzz run: the app and database fixtures of tests/backend, and callers of each kind.

A `Caller` holds the credentials one principal sends (none, a wallet session, a provider key,
an auditor key) and can mint fresh ones: the fuzzer may well log the wallet out or revoke the
provider's own key, and the rest of the run should still exercise the authorised code paths
rather than collect 401s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from backend.config import Settings
from tests.auth.conftest import create_key, create_provider, sign_in
from tests.backend.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    _no_credagg_env,
    app,
    backend_database_url,
    client,
    make_settings,
    settings,
)

CALLER_KINDS = ("anonymous", "wallet", "provider", "auditor")

#: (caller kind, status class such as "2xx") -> responses seen by the fuzz run, so the run's
#: log shows that authorised code paths ran and not only 401s.
FUZZ_STATUSES: Counter[tuple[str, str]] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FUZZ_STATUSES:
        return
    terminalreporter.section("OpenAPI fuzz: responses by caller")
    for kind in CALLER_KINDS:
        mix = {status: n for (who, status), n in sorted(FUZZ_STATUSES.items()) if who == kind}
        total = sum(mix.values())
        shown = ", ".join(f"{status}: {n}" for status, n in mix.items())
        terminalreporter.write_line(f"{kind:>9}: {total} requests ({shown})")


def new_wallet_session(api: TestClient) -> str:
    """A new wallet's session token (SIWE through the real endpoints)."""
    return sign_in(api, Account.create())


def mint_token(kind: str, api: TestClient, config: Settings) -> str | None:
    """A working bearer token for a principal of `kind` (None for the anonymous caller)."""
    if kind == "anonymous":
        return None
    if kind == "wallet":
        return new_wallet_session(api)
    if kind == "provider":
        return create_provider(config)[1]
    if kind == "auditor":
        return create_key(config).token
    raise ValueError(f"unknown caller kind {kind!r}; expected one of {CALLER_KINDS}")


@dataclass
class Caller:
    """One principal's credentials, renewed when a fuzzed request has revoked them."""

    kind: str
    mint: Callable[[], str | None]
    token: str | None = None
    renewals: int = field(default=0)

    def __post_init__(self) -> None:
        self.token = self.mint()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def renew_if_revoked(self, api: TestClient) -> None:
        """Mint new credentials if the current ones no longer authenticate."""
        if self.token is None:
            return
        if api.get("/v1/auth/me", headers=self.headers()).status_code == 401:
            self.token = self.mint()
            self.renewals += 1
