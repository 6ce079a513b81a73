"""The retention rule's month arithmetic: a partition is archivable only when its whole month and its newest record
are older than RETENTION_MONTHS, never below 36."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.core.retention import add_months, archivable, cutoff, month_start


def test_months_wrap_over_years_both_ways() -> None:
    assert add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)
    assert add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert add_months(date(2026, 3, 1), -36) == date(2023, 3, 1)
    assert month_start(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2026, 12, 1)


def test_the_cutoff_is_the_same_day_years_back_or_the_month_end() -> None:
    assert cutoff(datetime(2026, 12, 3, 11, 0, tzinfo=UTC), 36) == datetime(2023, 12, 3, 11, 0, tzinfo=UTC)
    assert cutoff(datetime(2027, 5, 31, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)
    assert cutoff(datetime(2028, 2, 29, tzinfo=UTC), 36) == datetime(2025, 2, 28, tzinfo=UTC)


def test_a_month_is_archivable_only_once_all_of_it_and_its_newest_record_are_past_the_retention() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    upper = datetime(2023, 12, 1, tzinfo=UTC)  # the month of November 2023
    assert archivable(upper, datetime(2023, 11, 30, tzinfo=UTC), now, 36)
    # December 2023 ends after the cutoff (2023-12-03): kept, even if its rows are older.
    assert not archivable(datetime(2024, 1, 1, tzinfo=UTC), datetime(2023, 12, 1, tzinfo=UTC), now, 36)
    # An event recorded late (a parcel held for months) keeps its acceptance month as long as it is kept itself.
    assert not archivable(upper, datetime(2024, 6, 1, tzinfo=UTC), now, 36)
    assert not archivable(upper, None, now, 40)
    with pytest.raises(ValueError, match="below the 36"):
        archivable(upper, None, now, 12)
