"""Working days in Denmark: weekends and Danish public holidays do not count."""

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DANISH_TIME = ZoneInfo("Europe/Copenhagen")


@lru_cache(maxsize=16)
def _danish_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DK", years=year))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _danish_holidays(day.year)


def danish_date(moment: datetime) -> date:
    """The date in Denmark at `moment`: a clinic's "today", which the UTC date lags behind for an
    hour or two after each Danish midnight."""
    return moment.astimezone(DANISH_TIME).date()


def add_working_days(start: datetime, days: int) -> datetime:
    """The moment `days` Danish working days after `start`, at the same local clock time.

    A start outside working days counts from the beginning of the next working day, so a request
    sent on Saturday is due on Monday's close as if it had arrived first thing Monday.
    """
    local = start.astimezone(DANISH_TIME)
    day = local.date()
    clock = local.time().replace(tzinfo=None)
    if not is_working_day(day):
        while not is_working_day(day):
            day += timedelta(days=1)
        clock = time(0, 0)
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return datetime.combine(day, clock, tzinfo=DANISH_TIME).astimezone(start.tzinfo)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 in Denmark of the week holding `now`, in UTC (providers' capacity is weekly)."""
    local = now.astimezone(DANISH_TIME)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time.min, tzinfo=DANISH_TIME).astimezone(UTC)
