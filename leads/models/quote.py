"""A clinic's quote to the patient: one per assignment, every revision kept."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from leads.extensions import db
from leads.quotes.rules import last_valid_day
from leads.timeutil import utcnow
from leads.workflow import QuoteStatus, check_quote_transition


class Quote(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(sa.ForeignKey("assignment.id"), unique=True)
    # Denormalised from the assignment: the patient's page and the choice lock read by lead.
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=QuoteStatus.LIVE.value)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: the stats summaries find the days whose quotes changed since they were computed.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    decided_at: Mapped[datetime | None]
    # The clinic's confirmation that the treatment is booked, and for when.
    booked_at: Mapped[datetime | None]
    treatment_date: Mapped[date | None]
    # The patient asked the clinic to renew the expired quote; cleared by the clinic's next revision.
    renewal_requested_at: Mapped[datetime | None]

    assignment = relationship("Assignment", backref=db.backref("quote", uselist=False))
    revisions = relationship("QuoteRevision", back_populates="quote", order_by="QuoteRevision.number")

    @property
    def current(self) -> "QuoteRevision":
        return self.revisions[-1]

    def change_status(self, target: str) -> QuoteStatus:
        """Move through the quote table; IllegalTransition otherwise. Callers record the event."""
        new_status = check_quote_transition(self.status, target)
        self.status = new_status.value
        return new_status


class QuoteRevision(db.Model):
    """What the clinic offered at one moment; never edited, a revision adds a row."""

    __table_args__ = (sa.UniqueConstraint("quote_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(sa.ForeignKey("quote.id"), index=True)
    number: Mapped[int]
    price_from: Mapped[int]
    price_to: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    includes: Mapped[list] = mapped_column(sa.JSON, default=list)
    earliest_start: Mapped[date]
    valid_days: Mapped[int]
    valid_until: Mapped[datetime]
    needs_records: Mapped[bool] = mapped_column(default=False)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    quote = relationship("Quote", back_populates="revisions")

    @property
    def last_valid_day(self) -> date:
        """The Danish calendar day this revision is valid through (`rules.last_valid_day`)."""
        return last_valid_day(self.valid_until)
