"""How long records are kept: month arithmetic for the time partitions and the retention rule they obey."""

from __future__ import annotations

from datetime import UTC, date, datetime

# The express licensing rules keep records (快递业务档案) at least three years.
MIN_RETENTION_MONTHS = 36


def month_start(at: datetime | date) -> date:
    """The first day of at's month (in UTC for a time)."""
    if isinstance(at, datetime):
        at = at.astimezone(UTC).date()
    return at.replace(day=1)


def add_months(month: date, n: int) -> date:
    """The first day of the month n months after month's (n may be negative)."""
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def cutoff(now: datetime, retention_months: int) -> datetime:
    """The time before which a record is older than the retention: now, retention_months months back."""
    total = now.year * 12 + now.month - 1 - retention_months
    year, month = total // 12, total % 12 + 1
    day = min(now.day, _days_in(year, month))
    return now.replace(year=year, month=month, day=day)


def _days_in(year: int, month: int) -> int:
    following = add_months(date(year, month, 1), 1)
    return (following - date(year, month, 1)).days


def archivable(upper: datetime, newest: datetime | None, now: datetime, retention_months: int) -> bool:
    """Whether a partition may be archived: its whole range and its newest record older than the retention."""
    if retention_months < MIN_RETENTION_MONTHS:
        raise ValueError(f"retention of {retention_months} months is below the {MIN_RETENTION_MONTHS} the rules ask")
    limit = cutoff(now, retention_months)
    return upper <= limit and (newest is None or newest < limit)
