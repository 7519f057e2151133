"""Rate limits: the token bucket's law, Redis atomicity, and 429s through the real app.

Redis tests use REDIS_URL (CI) or the local server's db 15, each under its own namespace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from backend.config import Settings
from backend.ratelimit.limiter import MemoryLimiter, RedisLimiter
from tests.backend.conftest import SettingsFactory
from tests.kit.conftest import bearer, build_kit_app, create_provider, create_wallet_session
from tests.kit.endpoints import PREFIX


class FakeClock:
    """The limiter's clock, advanced by the test (the limiter itself is real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_bucket_allows_a_burst_then_the_refill_rate() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)

    async def scenario() -> None:
        decisions = [await limiter.hit("ip:a", limit=3, window=60) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        refused = decisions[-1]
        assert refused.retry_after == pytest.approx(20.0)  # one token per 60/3 s
        assert refused.reset_after == pytest.approx(60.0)
        clock.now += 20.0
        assert (await limiter.hit("ip:a", limit=3, window=60)).allowed
        assert not (await limiter.hit("ip:a", limit=3, window=60)).allowed
        assert (await limiter.hit("ip:b", limit=3, window=60)).allowed  # its own bucket

    asyncio.run(scenario())


@given(gaps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=80))
def test_memory_bucket_never_allows_more_than_burst_plus_refill(gaps: list[float]) -> None:
    """Law: over any request pattern, allowed <= limit + elapsed * limit / window."""
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    start = clock.now
    limit, window = 5, 60.0

    async def run() -> int:
        allowed = 0
        for gap in gaps:
            clock.now += gap
            allowed += (await limiter.hit("k", limit=limit, window=window)).allowed
        return allowed

    allowed = asyncio.run(run())
    assert allowed <= limit + (clock.now - start) * limit / window + 1e-9
    assert allowed >= min(len(gaps), limit)  # the burst is always available at first


def test_memory_limiter_forgets_the_least_recent_buckets_beyond_its_bound() -> None:
    limiter = MemoryLimiter(max_keys=2, clock=FakeClock())

    async def run() -> bool:
        await limiter.hit("a", limit=1, window=60)
        await limiter.hit("b", limit=1, window=60)
        await limiter.hit("c", limit=1, window=60)  # evicts "a"
        return (await limiter.hit("a", limit=1, window=60)).allowed

    assert asyncio.run(run())


def test_redis_bucket_is_atomic_under_concurrency(redis_url: str) -> None:
    namespace = f"credagg-test:{uuid.uuid4().hex}"

    async def run() -> list[bool]:
        limiter = RedisLimiter(redis_url, namespace=namespace)
        try:
            hits = [limiter.hit("ip:x", limit=20, window=3600) for _ in range(60)]
            return [decision.allowed for decision in await asyncio.gather(*hits)]
        finally:
            await limiter.close()

    allowed = asyncio.run(run())
    # One hour for 20 tokens: the refill during the test is far below one token.
    assert sum(allowed) == 20


def test_redis_bucket_reports_remaining_and_retry(redis_url: str) -> None:
    namespace = f"credagg-test:{uuid.uuid4().hex}"

    async def run() -> None:
        limiter = RedisLimiter(redis_url, namespace=namespace)
        try:
            first = await limiter.hit("wallet:w", limit=2, window=3600)
            second = await limiter.hit("wallet:w", limit=2, window=3600)
            third = await limiter.hit("wallet:w", limit=2, window=3600)
        finally:
            await limiter.close()
        assert (first.allowed, first.remaining) == (True, 1)
        assert (second.allowed, second.remaining) == (True, 0)
        assert not third.allowed
        assert 0 < third.retry_after <= 1800  # one token per 3600/2 s
        assert third.reset_after <= 3600

    asyncio.run(run())


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Iterator[Settings]:
    """Settings with tight limits, on the in-process fallback and on real Redis."""
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else None
    yield make_settings(
        redis_url=redis,
        rate_limits_enabled=True,
        rate_limit_window_seconds=3600,
        rate_limit_per_ip=4,
        rate_limit_per_wallet=2,
        rate_limit_per_api_key=2,
        rate_limit_namespace=f"credagg-test:{uuid.uuid4().hex}",
    )


def test_rate_limits_are_off_by_default_only_in_the_test_environment(
    make_settings: SettingsFactory,
) -> None:
    assert not make_settings().rate_limits_active
    assert make_settings(environment="development").rate_limits_active
    assert make_settings(rate_limits_enabled=True).rate_limits_active


def test_per_ip_limit_answers_429_with_the_headers(limited: Settings) -> None:
    with TestClient(build_kit_app(limited)) as api:
        answers = [api.get("/v1/auth/nonce") for _ in range(5)]
        probes = [api.get("/healthz") for _ in range(10)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "4" for a in answers)
    refused = answers[-1]
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert "per-IP limit for testclient" in body["detail"]
    assert "4 requests per 3600 s" in body["detail"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 900  # one token per 3600/4 s
    assert f"allowed in {retry_after} s" in body["detail"]
    assert int(refused.headers["X-RateLimit-Reset"]) >= retry_after
    assert refused.headers["X-Request-ID"]
    assert all(p.status_code == 200 for p in probes)  # liveness probes are never limited


def test_per_api_key_limit_is_separate_per_key(limited: Settings) -> None:
    provider_id, first_key = create_provider(limited)
    _, other_provider_key = create_provider(limited)
    with TestClient(build_kit_app(limited)) as api:
        mine = [
            api.post(
                f"{PREFIX}/refuse", json={"nonce": "n", "amount": 1}, headers=bearer(first_key)
            )
            for _ in range(3)
        ]
        theirs = api.post(
            f"{PREFIX}/refuse", json={"nonce": "n", "amount": 1}, headers=bearer(other_provider_key)
        )
    assert [a.status_code for a in mine] == [409, 409, 429]
    assert "per-API-key limit for key" in mine[-1].json()["detail"]
    assert first_key.split("_")[1] in mine[-1].json()["detail"]  # names the key id, not secret
    assert first_key.split("_")[2] not in mine[-1].text
    assert theirs.status_code == 409  # the other key (same IP, 4th request) still has tokens
    assert provider_id > 0


def test_per_wallet_limit_spans_the_wallets_sessions(limited: Settings) -> None:
    address = "0x" + uuid.uuid4().hex + "00000000"
    sessions = [create_wallet_session(limited, address) for _ in range(2)]
    with TestClient(build_kit_app(limited)) as api:
        answers = [api.get("/v1/auth/nonce", headers=bearer(sessions[i % 2])) for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert f"per-wallet limit for {address}" in answers[-1].json()["detail"]


def test_an_invalid_credential_counts_against_the_ip(limited: Settings) -> None:
    with TestClient(build_kit_app(limited)) as api:
        answers = [
            api.get("/v1/auth/nonce", headers=bearer("ck_0000000000000000_" + "x" * 43))
            for _ in range(5)
        ]
    assert [a.status_code for a in answers][-1] == 429
    assert "per-IP limit" in answers[-1].json()["detail"]


def test_an_unreachable_redis_lets_requests_through(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        redis_url="redis://127.0.0.1:1/0", rate_limits_enabled=True, rate_limit_per_ip=1
    )
    with TestClient(build_kit_app(settings)) as api:
        answers = [api.get("/healthz"), api.get("/v1/auth/nonce"), api.get("/v1/auth/nonce")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in answers[-1].headers
