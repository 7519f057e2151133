"""Concurrent quote fan-out: every provider at once, each within its timeout, all within one
overall deadline.

A provider that has not answered by its own timeout is `timed_out`; when the overall deadline
comes, whatever is still running is cancelled and `timed_out` too, so the borrower's latency is
bounded by the deadline whatever the providers do. Only the first counts against the provider's
circuit breaker: the deadline shrinks when our own server is loaded (it covers the whole
request), and our overload must not open the breakers of lenders that were never given their
full timeout. With no time left at all, nobody is asked. A provider's failure (an exception in its
source) is its `error` outcome and is logged, never the borrower's 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from backend.credit.models import Outcome
from backend.credit.sources import SourceResult

logger = logging.getLogger("credagg.credit.fanout")


@dataclass(frozen=True)
class Call:
    provider_id: int
    run: Callable[[], Awaitable[SourceResult]]


ResultHook = Callable[[int, SourceResult], None]


async def _one(call: Call, timeout: float, on_result: ResultHook | None) -> SourceResult:
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(call.run(), timeout)
    except TimeoutError:
        result = SourceResult(
            Outcome.TIMED_OUT, reason=f"no answer within {timeout:g} s", counts_as_failure=True
        )
    except Exception as exc:  # one provider's bug must not fail the borrower's request
        logger.warning(
            "quote source failed",
            extra={"provider_id": call.provider_id, "error": repr(exc)},
        )
        result = SourceResult(
            Outcome.ERROR, reason=f"source failed: {type(exc).__name__}", counts_as_failure=True
        )
    if result.outcome is Outcome.TIMED_OUT:
        result = replace(result, counts_as_failure=True)
    result = replace(result, duration_ms=int((time.monotonic() - started) * 1000))
    if on_result is not None:
        on_result(call.provider_id, result)  # after the clock stopped: not the provider's time
    return result


async def fan_out(
    calls: Sequence[Call],
    *,
    provider_timeout: float,
    deadline: float,
    on_result: ResultHook | None = None,
) -> dict[int, SourceResult]:
    """Run `calls` concurrently; one result per provider id, however each one ends.

    `on_result` sees each result that arrives before the deadline, as it arrives (synchronous,
    on the loop: the caller's head start on work that needs the answers, such as pricing)."""
    if not calls:
        return {}
    if deadline <= 0:
        return {
            call.provider_id: SourceResult(
                Outcome.TIMED_OUT,
                reason="not asked: no time was left before the overall deadline",
            )
            for call in calls
        }
    started = time.monotonic()
    tasks = {asyncio.create_task(_one(call, provider_timeout, on_result)): call for call in calls}
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    results = {tasks[task].provider_id: task.result() for task in done}
    waited = int((time.monotonic() - started) * 1000)
    for task in pending:
        task.cancel()
        results[tasks[task].provider_id] = SourceResult(
            Outcome.TIMED_OUT,
            reason=f"no answer before the overall deadline ({deadline:.3g} s were left)",
            duration_ms=waited,
            counts_as_failure=deadline >= provider_timeout,
        )
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return results
