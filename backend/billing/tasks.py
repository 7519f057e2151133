"""Celery task `billing.generate_statements` (beat, hourly).

Hourly rather than once a month because a statement can only become final when every watched
chain has finalised past the month's end, which happens some confirmations after midnight; each
run refreshes the open statements of the current and the previous month and finalises (and
receipts) those that can be. Final statements are returned untouched, so runs are idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import shared_task

from backend.billing.service import BlockTimeSource, generate_statements
from backend.db import SessionFactory
from backend.kit.columns import utcnow
from backend.receipts.signing import ReceiptSigner


def month_start(moment: datetime, *, months_back: int = 0) -> datetime:
    """00:00 UTC on the first day of `moment`'s month, `months_back` months earlier."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def run(
    factory: SessionFactory,
    *,
    block_time: BlockTimeSource,
    signer: ReceiptSigner,
    now: datetime,
) -> dict[str, str]:
    """Refresh the previous and the current month; one transaction per month."""
    report: dict[str, str] = {}
    for back in (1, 0):
        start = month_start(now, months_back=back)
        with factory() as session, session.begin():
            for statement in generate_statements(
                session, start, block_time=block_time, signer=signer, now=now
            ):
                report[f"{statement.provider_id}:{start:%Y-%m}"] = statement.status
    return report


@shared_task(name="billing.generate_statements", bind=True)
def generate(self: Any) -> dict[str, str]:
    from backend.receipts.service import signer_from_settings
    from backend.watcher.targets import watchers

    adapters = {w.chain_id: w.adapter for w in watchers(self.app.settings)}

    def block_time(chain_id: int, number: int) -> int:
        return int(adapters[chain_id].block(number).timestamp)

    return run(
        self.app.session_factory,
        block_time=block_time,
        signer=signer_from_settings(self.app.settings),
        now=utcnow(),
    )
