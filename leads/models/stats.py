"""Daily summaries behind the stats page: one row per UTC day, kept by beat."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from leads.extensions import db
from leads.timeutil import utcnow


class StatsDay(db.Model):
    """The figures of the leads that arrived on `day` and the assignments made on it, as
    `leads.staff.stats_figures.Figures` in JSON; `leads.staff.stats_summary` writes and reads them."""

    day: Mapped[date] = mapped_column(primary_key=True)
    figures: Mapped[dict] = mapped_column(sa.JSON)
    # Every change to the day's leads, assignments and quotes stamped before this is counted; a
    # later one makes the row stale until it is computed again.
    counts_changes_before: Mapped[datetime]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
