"""Failed sign-ins counted per key in fixed windows of time, one row per key and window: the
account's ceiling (leads.auth.ceiling) and a device cookie's lock (leads.auth.device_lock).

Each function takes the table's key column (`LoginCeiling.account`, `LoginDeviceLock.device`);
the table has `window_start` and `failures` beside it, unique on (key, window_start). Counting
is one atomic upsert, so parallel failures are all counted; the rows of ended windows go at each
counted failure and in the daily retention run.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from leads.auth.throttle import upsert
from leads.extensions import db

# Windows are counted from here, so that every process agrees where one starts.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the window `now` falls in."""
    return _EPOCH + window * ((now - _EPOCH) // window)


def this_window(key_column, key: str, now: datetime, window: timedelta) -> sa.ColumnElement[bool]:
    """`key`'s row of the window `now` falls in."""
    return sa.and_(key_column == key, key_column.class_.window_start == window_start(now, window))


def failures(key_column, key: str, now: datetime, window: timedelta) -> int:
    """The failures counted against `key` in the window of `now`."""
    model = key_column.class_
    return db.session.scalar(sa.select(model.failures).where(this_window(key_column, key, now, window))) or 0


def count_failure(key_column, key: str, now: datetime, window: timedelta) -> int:
    """Count one failure against `key` in the window of `now` (one atomic upsert), and forget
    ended windows; the window's count with it."""
    model = key_column.class_
    statement = upsert(model).values(
        {key_column.key: key, "window_start": window_start(now, window), "failures": 1}
    )
    statement = statement.on_conflict_do_update(
        index_elements=[key_column.key, "window_start"], set_={"failures": model.failures + 1}
    ).returning(model.failures)
    counted = db.session.execute(statement).scalar_one()
    forget_ended(model, now, window)
    return counted


def forget_ended(model, now: datetime, window: timedelta) -> int:
    """Delete the counts of windows that have ended; how many. Rows another transaction is
    deleting are left to it (PostgreSQL; SQLite has one writer at a time), so two cleanings never
    wait on each other."""
    ended = (
        sa.select(model.id)
        .where(model.window_start < window_start(now, window))
        .with_for_update(skip_locked=True)
    )
    return db.session.execute(sa.delete(model).where(model.id.in_(ended))).rowcount
