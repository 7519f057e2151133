"""A circuit breaker per provider, shared by every API replica through the database.

Why the database and not process memory or Redis: replicas are stateless, so a breaker kept in
memory would need N failures per replica before it opened, and a probe per replica; Redis is
optional in the embedded default (SQLite, no broker server) while the database is always there,
and the breaker's writes are rare (a failure, a probe, a recovery), so one small row per
provider costs nothing. The probe is claimed with a compare-and-set UPDATE, so exactly one
replica sends it.

Under load the breaker never writes in the request's transaction: the request reads every
breaker of its providers in one query (`assess`), claims a half-open probe in a short transaction
of its own (`claim_probes`, a conditional UPDATE committed at once), and counts the results in
another short one after the fan-out (`record_many`). A row lock is thus held for one statement's
commit, never across the request's network wait, and two requests that both find a provider
half-open never wait on each other: one claims the probe, the other sees it taken and skips.

States: closed (`opened_at` null) lets every call through; open (`opened_at` set, cool-down
running) skips the provider without calling it; half-open (cool-down over) lets one probe
through: success closes the breaker, failure re-opens it with a fresh cool-down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from backend.credit.breaker_repository import BulkBreakerRepository
from backend.credit.models import CircuitBreaker
from backend.credit.repository import BreakerRepository
from backend.db import SessionFactory, session_scope


class Admission(StrEnum):
    CALL = "call"  # closed: call as usual
    PROBE = "probe"  # half-open: this caller sends the one probe
    SKIP = "skip"  # open (or another replica is probing): do not call


def admit(session: Session, provider_id: int, *, now: datetime, cooldown: float) -> Admission:
    """May we call `provider_id` now?"""
    repo = BreakerRepository(session)
    row = repo.get(provider_id)
    if row is None or row.opened_at is None:
        return Admission.CALL
    if now < row.opened_at + timedelta(seconds=cooldown):
        return Admission.SKIP
    stale_before = now - timedelta(seconds=cooldown)
    if repo.claim_probe(provider_id, stale_before=stale_before, now=now):
        return Admission.PROBE
    return Admission.SKIP


def record(
    session: Session, provider_id: int, *, success: bool, now: datetime, threshold: int
) -> None:
    """Count a call's result; write only when the state changes (a success on a closed,
    failure-free breaker writes nothing)."""
    repo = BulkBreakerRepository(session)
    if success:
        row = repo.get(provider_id)
        if row is not None and (row.consecutive_failures or row.opened_at is not None):
            row.consecutive_failures = 0
            row.opened_at = None
            row.probe_started_at = None
            row.updated_at = now
            session.flush()
        return
    row = repo.locked(provider_id, now=now)
    row.consecutive_failures += 1
    if row.consecutive_failures >= threshold:
        row.opened_at = now  # opens, or re-opens after a failed probe, with a fresh cool-down
        row.probe_started_at = None
    row.updated_at = now
    session.flush()


# -- short transactions of their own (the request path) ---------------------------------------


@dataclass(frozen=True)
class BreakerState:
    """A breaker row as read, detached from any session (it outlives the read transaction)."""

    consecutive_failures: int
    opened_at: datetime | None


def snapshot(rows: Mapping[int, CircuitBreaker]) -> dict[int, BreakerState]:
    return {pid: BreakerState(row.consecutive_failures, row.opened_at) for pid, row in rows.items()}


def assess(
    rows: Mapping[int, BreakerState], provider_id: int, *, now: datetime, cooldown: float
) -> Admission | None:
    """CALL or SKIP from the row alone; None when half-open (a probe must be claimed)."""
    row = rows.get(provider_id)
    if row is None or row.opened_at is None:
        return Admission.CALL
    if now < row.opened_at + timedelta(seconds=cooldown):
        return Admission.SKIP
    return None


def needs_write(rows: Mapping[int, BreakerState], provider_id: int, *, success: bool) -> bool:
    """Whether recording this result changes the row (a success on a clean breaker does not)."""
    if not success:
        return True
    row = rows.get(provider_id)
    return row is not None and bool(row.consecutive_failures or row.opened_at is not None)


def claim_probes(
    sessions: SessionFactory, provider_ids: Iterable[int], *, now: datetime, cooldown: float
) -> set[int]:
    """Claim the half-open probe of each provider in one short transaction; the ids won."""
    won: set[int] = set()
    with session_scope(sessions) as session:
        for provider_id in sorted(provider_ids):  # one lock order: no deadlock between claims
            if admit(session, provider_id, now=now, cooldown=cooldown) is Admission.PROBE:
                won.add(provider_id)
    return won


def record_many(
    sessions: SessionFactory, results: Mapping[int, bool], *, now: datetime, threshold: int
) -> None:
    """Count every result (provider id -> success) in one short transaction."""
    if not results:
        return
    with session_scope(sessions) as session:
        for provider_id in sorted(results):  # one lock order: no deadlock between requests
            record(session, provider_id, success=results[provider_id], now=now, threshold=threshold)
