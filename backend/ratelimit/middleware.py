"""`RateLimitMiddleware`: per-IP, per-wallet and per-API-key limits on every request.

Pure ASGI, so a refused request costs no endpoint work. Which limits apply:

* every request: the client IP's bucket (`CREDAGG_RATE_LIMIT_PER_IP`);
* a valid wallet session: the wallet's bucket (`..._PER_WALLET`), shared by all its sessions;
* a valid provider or auditor API key: that key's bucket (`..._PER_API_KEY`).

The caller is resolved from the bearer credential by `backend.ratelimit.caller` (middlewares run
before FastAPI's auth dependency); an invalid credential counts as anonymous, against its IP.
Refused: 429 `rate_limited` with `Retry-After` and `X-RateLimit-Limit/-Remaining/-Reset`, the
detail naming the limit and when it frees up. Allowed responses carry the same headers for the
tightest limit. Liveness, readiness and metrics probes are never limited.

If Redis fails the request is let through and the failure logged: the limiter protects the
service, and an outage of it must not become an outage of the API.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.config import Settings
from backend.db import SessionFactory
from backend.exceptions import RateLimited, error_response
from backend.ratelimit.caller import Caller, caller_of
from backend.ratelimit.limiter import Decision, Limiter, MemoryLimiter, RedisLimiter

logger = logging.getLogger("credagg.ratelimit")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Rule:
    """One bucket a request draws from: `name` for humans, `key` for the store."""

    name: str
    key: str
    limit: int


def rules_for(caller: Caller, settings: Settings) -> list[Rule]:
    rules = [Rule(f"per-IP limit for {caller.ip}", f"ip:{caller.ip}", settings.rate_limit_per_ip)]
    principal = caller.principal
    if principal is not None and principal.kind == "wallet":
        rules.append(
            Rule(
                f"per-wallet limit for {principal.id}",
                f"wallet:{principal.id}",
                settings.rate_limit_per_wallet,
            )
        )
    elif principal is not None and caller.api_key_id is not None:
        rules.append(
            Rule(
                f"per-API-key limit for key {caller.api_key_id}",
                f"key:{caller.api_key_id}",
                settings.rate_limit_per_api_key,
            )
        )
    return [rule for rule in rules if rule.limit > 0]


def build_limiter(settings: Settings) -> Limiter:
    """Redis when REDIS_URL is set (shared by all replicas), else this process's memory."""
    if settings.redis_url:
        return RedisLimiter(settings.redis_url, namespace=settings.rate_limit_namespace)
    return MemoryLimiter()


def _headers(decision: Decision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset_after)),
    }


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        session_factory: SessionFactory,
        limiter: Limiter | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.session_factory = session_factory
        self.limiter = limiter or build_limiter(settings)
        self.window = settings.rate_limit_window_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        caller = await caller_of(scope, self.settings, self.session_factory)
        decisions = await self._decide(rules_for(caller, self.settings))
        refused = [(rule, d) for rule, d in decisions if not d.allowed]
        if refused:
            rule, decision = max(refused, key=lambda pair: pair[1].retry_after)
            await self._refuse(rule, decision, scope, receive, send)
            return
        if not decisions:
            await self.app(scope, receive, send)
            return
        tightest = min(decisions, key=lambda pair: pair[1].remaining / pair[1].limit)[1]
        extra = _headers(tightest)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _decide(self, rules: list[Rule]) -> list[tuple[Rule, Decision]]:
        decisions: list[tuple[Rule, Decision]] = []
        for rule in rules:
            try:
                decision = await self.limiter.hit(rule.key, limit=rule.limit, window=self.window)
            except (redis.RedisError, OSError) as exc:
                logger.warning("rate limiter unavailable, request let through: %s", exc)
                continue
            decisions.append((rule, decision))
        return decisions

    async def _refuse(
        self, rule: Rule, decision: Decision, scope: Scope, receive: Receive, send: Send
    ) -> None:
        retry_after = max(1, math.ceil(decision.retry_after))
        error = RateLimited(
            f"{rule.name} exceeded: {rule.limit} requests per {self.window:g} s; the next request "
            f"is allowed in {retry_after} s",
            hint=f"Wait {retry_after} s (Retry-After) and slow down; X-RateLimit-Remaining shows "
            "what is left.",
        )
        headers = _headers(decision) | {"Retry-After": str(retry_after)}
        response = error_response(
            error.status_code, error.code, error.detail, hint=error.hint, headers=headers
        )
        await response(scope, receive, send)
