"""Calendar arithmetic shared by the schedules and both rate equations.

Months are counted the way 12 CFR 1026 Appendix J (b)(3)(iv) and (b)(5)(ii) count them, which is
also how the EU annex (2008/48/EC Annex I, Part I(c) as amended by 2011/90/EU) counts "equal
periods and then days ... back to the date of the initial drawdown": whole months are measured
back from the later date to the same day of an earlier month (the last day of the month when the
later date is a month end, or when the day does not exist, e.g. the 30th in February), and the
days left over are counted exactly (excluding the first day, including the last).

The functions are pure and their results immutable, and every quote of a credit request asks the
same questions (the same start, maturity and payment dates), so they are memoised (bounded LRU).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from functools import lru_cache


@lru_cache(maxsize=4096)
def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@lru_cache(maxsize=8192)
def add_months(day: date, months: int, *, month_end: bool = False) -> date:
    """`day` moved by `months` (either sign), clamping to the month's last day.

    `month_end=True` pins the result to the last day of its month (a schedule that pays on
    month ends keeps paying on month ends).
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = _last_day(year, month)
    return date(year, month, last if month_end else min(day.day, last))


def is_month_end(day: date) -> bool:
    """Whether `day` is the last day of its month."""
    return day.day == _last_day(day.year, day.month)


@dataclass(frozen=True)
class MonthsAndDays:
    """An interval as whole months plus remaining days (0 <= days < a month)."""

    months: int
    days: int


def _on_day(year_month: date, months: int, day: int) -> date:
    index = year_month.year * 12 + (year_month.month - 1) + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day, _last_day(year, month + 1)))


@lru_cache(maxsize=8192)
def months_and_days(start: date, end: date) -> MonthsAndDays:
    """Whole months counted back from `end`, then the days left down to `start`.

    Counting back keeps `end`'s day of the month, clamped to shorter months. When `end` is a
    month end its day stands for any later day (Appendix J (b)(3)(iv): a series on the 29th,
    30th or 31st falls on the last day of February), so 30 January -> 28 February is one month
    and 28 February -> 31 March is one month in a month-end series.

    Raises ValueError when `end` is before `start` (the callers validate dates first).
    """
    if end < start:
        raise ValueError(f"{end} is before {start}")
    day = max(end.day, start.day) if is_month_end(end) else end.day
    months = (end.year - start.year) * 12 + (end.month - start.month)
    while months > 0 and _on_day(end, -months, day) < start:
        months -= 1
    anchor = _on_day(end, -months, day) if months else end
    if months == 0:
        return MonthsAndDays(0, (end - start).days)
    return MonthsAndDays(months, (anchor - start).days)
