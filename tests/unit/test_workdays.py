"""Danish working days: weekends and public holidays are skipped; the week starts on Monday in Denmark."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.workdays import DANISH_TIME, add_working_days, danish_date, is_working_day, week_start


def _dk(*args) -> datetime:
    return datetime(*args, tzinfo=DANISH_TIME)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (_dk(2026, 11, 24, 10, 0), 1, _dk(2026, 11, 25, 10, 0)),  # Tuesday -> Wednesday
        (_dk(2026, 11, 27, 15, 0), 1, _dk(2026, 11, 30, 15, 0)),  # Friday -> Monday
        (_dk(2026, 11, 28, 11, 0), 1, _dk(2026, 12, 1, 0, 0)),  # Saturday counts from Monday
        (_dk(2026, 12, 24, 9, 0), 1, _dk(2026, 12, 28, 9, 0)),  # Christmas Day and Boxing Day skipped
        (_dk(2027, 3, 24, 12, 0), 1, _dk(2027, 3, 30, 12, 0)),  # Maundy Thursday to Easter Monday skipped
        (_dk(2026, 11, 24, 10, 0), 3, _dk(2026, 11, 27, 10, 0)),
    ],
)
def test_add_working_days_skips_weekends_and_danish_holidays(start, days, due):
    assert add_working_days(start, days) == due


def test_christmas_and_easter_are_not_working_days():
    assert not is_working_day(datetime(2026, 12, 25).date())
    assert not is_working_day(datetime(2027, 3, 29).date())  # Easter Monday
    assert is_working_day(datetime(2026, 11, 26).date())


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31)), st.integers(1, 10))
def test_the_due_moment_is_later_on_a_working_day_and_keeps_utc(naive_start, days):
    start = naive_start.replace(tzinfo=UTC)
    due = add_working_days(start, days)
    assert due > start
    assert due.tzinfo is UTC
    assert is_working_day(due.astimezone(DANISH_TIME).date())


@pytest.mark.parametrize(
    ("moment", "monday"),
    [
        (datetime(2026, 11, 25, 12, 0, tzinfo=UTC), datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        (datetime(2026, 11, 22, 22, 59, tzinfo=UTC), datetime(2026, 11, 15, 23, 0, tzinfo=UTC)),
        # Summer time: Monday 00:00 in Copenhagen is 22:00 UTC on Sunday.
        (datetime(2026, 6, 10, 8, 0, tzinfo=UTC), datetime(2026, 6, 7, 22, 0, tzinfo=UTC)),
    ],
)
def test_the_week_starts_on_monday_at_midnight_danish_time(moment, monday):
    assert week_start(moment) == monday


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 11, 28, 22, 59, tzinfo=UTC), date(2026, 11, 28)),  # 23:59 CET
        (datetime(2026, 11, 28, 23, 0, tzinfo=UTC), date(2026, 11, 29)),  # Danish midnight, UTC's 23:00
        (datetime(2026, 11, 28, 23, 59, tzinfo=UTC), date(2026, 11, 29)),  # just before UTC's midnight
        (datetime(2026, 11, 29, 0, 30, tzinfo=UTC), date(2026, 11, 29)),
        (datetime(2026, 7, 1, 22, 0, tzinfo=UTC), date(2026, 7, 2)),  # midnight CEST
    ],
)
def test_the_danish_date_turns_at_danish_midnight(moment, day):
    assert danish_date(moment) == day
