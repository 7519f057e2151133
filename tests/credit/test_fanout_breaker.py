"""The half-open probe is claimed in a short transaction of its own, never in the request's.

Before: the claim was an UPDATE in the request's transaction, so the breaker row stayed locked
until that request committed, after its whole fan-out; a second request finding the same
provider half-open waited on the lock (PostgreSQL) or on the database (SQLite) for all of it.
Now: one request probes, the other skips the provider at once and answers while the probe is
still out. Run on PostgreSQL with DATABASE_URL set, else on SQLite; the same assertions hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.config import Settings
from backend.credit import circuit_breaker
from backend.credit.models import CircuitBreaker
from backend.db import create_db_engine, create_session_factory
from backend.kit.columns import utcnow
from tests.auth.conftest import bearer, create_provider, sign_in
from tests.backend.conftest import wait_for
from tests.credit.conftest import LenderProcess, MarketFiles

REQUEST: dict[str, Any] = {
    "amount": str(50_000 * 10**6),
    "asset": "USDC",
    "term_days": 90,
    "purpose": "working capital",
}
COOLDOWN = 30.0


def breaker_settings(
    make_settings: Callable[..., Settings], files: MarketFiles, **overrides: Any
) -> Settings:
    return make_settings(
        data_dir=files.data_dir,
        chains_file=files.chains_file,
        credit_assets_file=files.assets_file,
        credit_sanctions_file=files.sanctions_file,
        credit_provider_timeout=8.0,
        credit_fanout_deadline=9.0,
        credit_breaker_failures=1,
        credit_breaker_cooldown_seconds=COOLDOWN,
        **overrides,
    )


def half_open(config: Settings, provider_id: int) -> None:
    """Open the provider's breaker long enough ago that its cool-down is over."""
    engine = create_db_engine(config)
    try:
        circuit_breaker.record_many(
            create_session_factory(engine),
            {provider_id: False},
            now=utcnow() - timedelta(seconds=2 * COOLDOWN),
            threshold=1,
        )
    finally:
        engine.dispose()


def test_a_claimed_probe_is_committed_at_once_and_a_second_claim_skips(
    make_settings: Callable[..., Settings], market_files: MarketFiles, observer: Session
) -> None:
    config = breaker_settings(make_settings, market_files)
    provider_id, _ = create_provider(config)
    half_open(config, provider_id)
    engine = create_db_engine(config)
    try:
        sessions = create_session_factory(engine)
        now = utcnow()
        first = circuit_breaker.claim_probes(sessions, {provider_id}, now=now, cooldown=COOLDOWN)
        # committed already: another connection sees the claim while the probe is still out
        row = observer.get(CircuitBreaker, provider_id)
        assert row is not None and row.probe_started_at is not None
        observer.rollback()  # end the observer's read (on SQLite it holds the write lock)
        second = circuit_breaker.claim_probes(sessions, {provider_id}, now=now, cooldown=COOLDOWN)
    finally:
        engine.dispose()
    assert first == {provider_id}
    assert second == set()


def test_two_requests_one_probes_and_the_other_does_not_wait_for_it(
    make_settings: Callable[..., Settings],
    market_files: MarketFiles,
    market: Any,
    start_lender: Callable[..., LenderProcess],
) -> None:
    config = breaker_settings(make_settings, market_files)
    hung = start_lender("--delay", "60")
    with TestClient(create_app(config)) as client:
        hung_id, key = create_provider(config)
        answer = client.put("/v1/provider/webhook", json={"url": hung.url}, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        hung.secret_file.write_text(answer.json()["secret"])
        half_open(config, hung_id)
        token = sign_in(client, market.borrower)

        first: dict[str, Any] = {}

        def probe_request() -> None:
            reply = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
            first.update(status=reply.status_code, body=reply.json())

        prober = threading.Thread(target=probe_request)
        prober.start()
        assert wait_for(lambda: hung.stats()["received"] == 1, timeout=30)
        # the probe is out (the lender holds it for a minute, our timeout is 8 s) ...
        second = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
        # ... and the second request has its answer before the first one has finished
        still_probing = prober.is_alive()
        prober.join()

    assert still_probing
    assert second.status_code == 201, second.text
    skipped = {row["provider_id"]: row["outcome"] for row in second.json()["not_quoted"]}
    assert skipped[hung_id] == "circuit_open"
    assert first["status"] == 201, first["body"]
    probed = {row["provider_id"]: row["outcome"] for row in first["body"]["not_quoted"]}
    assert probed[hung_id] == "timed_out"
    assert hung.stats()["received"] == 1  # exactly one probe reached the lender
