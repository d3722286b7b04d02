"""Daily summaries of the stats figures: computed by beat (`refresh`) or an operator
(`rebuild`), read by the stats page (`figures_for`) for whole days whose row is still true.

A row holds the figures of the leads that arrived on its UTC day and of the assignments made on
it. Those figures change after the day ends (a status moves on, a provider answers, a quote is
chosen), so each row records the instant before which it counts every change. Leads, assignments
and quotes stamp `updated_at` on every change (ORM or bulk UPDATE), and a day with a change
stamped since its row's instant is stale: beat computes it again, and until then the page
computes that day live. An SLA still running when the row was made settles by the clock alone:
the page uses such a row only once every open deadline in it has passed.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leads.extensions import db, look_ups_first
from leads.models import Assignment, Lead, Quote, StatsDay
from leads.staff.stats_figures import Figures
from leads.staff.stats_live import as_date, figures_by_day, utc_day
from leads.timeutil import utcnow

# A change is stamped when it is flushed, not when it commits, and by the clock of whichever
# machine made it: a row counts only the changes stamped this long before it was computed.
SETTLE = timedelta(minutes=15)
# Days computed in one round of queries (and one transaction) while rebuilding a range.
CHUNK_DAYS = 31
# Missing days of the recent past that one beat run fills (newest first), so that a fresh
# installation gets its history within hours without one long task.
FILL_DAYS_PER_RUN = 31


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Sorted days joined into [start, end) instants, one range per run of consecutive days."""
    ranges: list[tuple[datetime, datetime]] = []
    for day in sorted(set(days)):
        start = day_start(day)
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + timedelta(days=1))
        else:
            ranges.append((start, start + timedelta(days=1)))
    return ranges


def changed_days(since: datetime, first: date | None = None, last: date | None = None) -> set[date]:
    """UTC days (from `first` to `last`, when given) whose leads, assignments or quotes changed
    at or after `since`."""

    def bounded(column):
        return sa.and_(
            column >= day_start(first) if first else sa.true(),
            column < day_start(last + timedelta(days=1)) if last else sa.true(),
        )

    lead_days = sa.select(utc_day(Lead.created_at)).where(Lead.updated_at >= since, bounded(Lead.created_at))
    assignment_days = sa.select(utc_day(Assignment.created_at)).where(
        Assignment.updated_at >= since, bounded(Assignment.created_at)
    )
    quote_days = (
        sa.select(utc_day(Lead.created_at))
        .join(Quote, Quote.lead_id == Lead.id)
        .where(Quote.updated_at >= since, bounded(Lead.created_at))
    )
    union = sa.union(lead_days, assignment_days, quote_days).subquery()
    return {as_date(day) for day in db.session.scalars(sa.select(union.c[0]))}


def summarise(days: Iterable[date]) -> int:
    """Compute and store (insert or replace) the rows of `days`, a chunk per transaction; returns
    how many rows were written."""
    days = sorted(set(days))
    for first in range(0, len(days), CHUNK_DAYS):
        chunk = days[first : first + CHUNK_DAYS]
        now = utcnow()
        with look_ups_first():  # on SQLite, computed without holding the write lock
            figures = figures_by_day(day_ranges(chunk), now)
        rows = [
            {"day": day, "figures": figures.get(day, Figures()).to_json(),
             "counts_changes_before": now - SETTLE, "computed_at": now}
            for day in chunk
        ]  # fmt: skip
        _upsert(rows)
        db.session.commit()
    return len(days)


def _upsert(rows: list[dict]) -> None:
    insert = (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(StatsDay)
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=[StatsDay.day],
            set_={
                name: insert.excluded[name] for name in ("figures", "counts_changes_before", "computed_at")
            },
        ),
        rows,
    )


@dataclass(frozen=True)
class Refreshed:
    changed: int  # days computed again because something in them changed
    filled: int  # missing recent days computed for the first time
    written: int


def refresh(today: date, keep_days: int) -> Refreshed:
    """Beat's run: compute again the days changed since their rows were made, yesterday and
    today, and up to FILL_DAYS_PER_RUN missing days of the last `keep_days`; then record that
    every other row still counts every change up to now. Idempotent."""
    covers = utcnow() - SETTLE
    window = [today - timedelta(days=n) for n in range(keep_days)]
    with look_ups_first():  # on SQLite, searched without holding the write lock
        since = db.session.scalar(sa.select(sa.func.min(StatsDay.counts_changes_before)))
        changed = changed_days(since) if since else set()
        have = set(db.session.scalars(sa.select(StatsDay.day).where(StatsDay.day >= window[-1])))
    missing = [day for day in window[2:] if day not in have and day not in changed][:FILL_DAYS_PER_RUN]
    written = summarise(changed | {today, today - timedelta(days=1)} | set(missing))
    if since:
        # The rows the search above covered stay true up to `covers`; a row another process
        # wrote meanwhile with an older instant keeps it, and is searched from there next time.
        db.session.execute(
            sa.update(StatsDay)
            .where(StatsDay.counts_changes_before >= since, StatsDay.counts_changes_before < covers)
            .values(counts_changes_before=covers)
        )
    db.session.commit()
    return Refreshed(changed=len(changed), filled=len(missing), written=written)


def figures_for(first: date, last: date, now: datetime) -> Figures:
    """The figures of the days `first` to `last`: each day's row where it is still true, the
    other days (today, changed or unsettled days, days never summarised) computed live."""
    rows = db.session.execute(
        sa.select(StatsDay.day, StatsDay.figures, StatsDay.counts_changes_before).where(
            StatsDay.day >= first, StatsDay.day <= last
        )
    ).all()
    stale = changed_days(min(row[2] for row in rows), first, last) if rows else set()
    total, summarised = Figures(), set()
    for day, data, _ in rows:
        figures = Figures.from_json(data)
        if day in stale or not figures.settled(now):
            continue
        figures.breached, figures.sla_open, figures.open_due_max = figures.breaches(), 0, None
        total.add(figures)
        summarised.add(day)
    live_days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for figures in figures_by_day(day_ranges(d for d in live_days if d not in summarised), now).values():
        total.add(figures)
    return total
