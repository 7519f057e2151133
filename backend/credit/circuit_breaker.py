"""A circuit breaker per provider, shared by every API replica through the database.

Why the database and not process memory or Redis: replicas are stateless, so a breaker kept in
memory would need N failures per replica before it opened, and a probe per replica; Redis is
optional in the embedded default (SQLite, no broker server) while the database is always there,
and the breaker's writes are rare (a failure, a probe, a recovery), so one small row per
provider costs nothing. The probe is claimed with a compare-and-set UPDATE, so exactly one
replica sends it.

States: closed (`opened_at` null) lets every call through; open (`opened_at` set, cool-down
running) skips the provider without calling it; half-open (cool-down over) lets one probe
through: success closes the breaker, failure re-opens it with a fresh cool-down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from backend.credit.repository import BreakerRepository


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
    repo = BreakerRepository(session)
    if success:
        row = repo.get(provider_id)
        if row is not None and (row.consecutive_failures or row.opened_at is not None):
            row.consecutive_failures = 0
            row.opened_at = None
            row.probe_started_at = None
            row.updated_at = now
            session.flush()
        return
    row = repo.get_or_create(provider_id, now=now)
    row.consecutive_failures += 1
    if row.consecutive_failures >= threshold:
        row.opened_at = now  # opens, or re-opens after a failed probe, with a fresh cool-down
        row.probe_started_at = None
    row.updated_at = now
    session.flush()
