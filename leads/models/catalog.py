"""The treatment taxonomy, the provider directory and lead-to-provider assignments."""

import unicodedata
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from leads.extensions import db
from leads.timeutil import utcnow
from leads.workflow import AssignmentStatus, check_assignment_transition


class EvidenceStatus(StrEnum):
    APPROVED = "approved"
    CLINICAL_TRIAL = "clinical_trial"
    INVESTIGATIONAL = "investigational"


treatment_condition = sa.Table(
    "treatment_condition",
    db.metadata,
    sa.Column("treatment_id", sa.ForeignKey("treatment.id"), primary_key=True),
    sa.Column("condition_id", sa.ForeignKey("condition.id"), primary_key=True),
)

provider_condition = sa.Table(
    "provider_condition",
    db.metadata,
    sa.Column("provider_id", sa.ForeignKey("provider.id"), primary_key=True),
    sa.Column("condition_id", sa.ForeignKey("condition.id"), primary_key=True),
)


class Treatment(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    evidence_status: Mapped[str] = mapped_column(sa.String(20))
    # Investigational treatments wait for a coordinator before any provider sees them.
    requires_review: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    conditions = relationship("Condition", secondary=treatment_condition, order_by="Condition.sort_order")


class Condition(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[str] = mapped_column(sa.String(80))
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class ProviderTreatment(db.Model):
    """A treatment a provider offers, and the evidence status they offer it under."""

    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("provider.id"), primary_key=True)
    treatment_id: Mapped[int] = mapped_column(sa.ForeignKey("treatment.id"), primary_key=True)
    evidence_status: Mapped[str] = mapped_column(sa.String(20))

    treatment = relationship("Treatment")


def provider_name_key(name: str) -> str:
    """What two provider names must not share: the name in any case, the same on every database
    (the directory form, the CSV import and `find_by_name` all compare this).

    Case-folded, not lower-cased: a name is a label for people, and "STRASSE KLINIK" is the same
    clinic as "Straße Klinik" (casefold() turns ß into ss and a final sigma into sigma, where
    lower() leaves them). NFC first, so an Å typed as A and a combining ring is the Å it looks
    like; runs of white space (a no-break space too) become one space, as the form stores a name.
    Computed in Python and stored (Provider.name_key, unique): SQLite's lower() changes A to Z
    only. Unicode never changes the case folding or NFC form of a character it has encoded, so a
    stored key stays right after an upgrade of Python.
    """
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class Provider(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Not unique by itself: the key below refuses the same name in any case (migration 0021k
    # dropped the case-sensitive key it made redundant).
    name: Mapped[str] = mapped_column(sa.String(200))
    # provider_name_key(name), set with the name (`_name_set`): its unique index is what keeps
    # "Nordic Clinic" and "nordic clinic" from both being saved by two admins at the same moment.
    # casefold() turns a letter into at most three (ΐ), so three times the name's length.
    name_key: Mapped[str] = mapped_column(sa.String(600), unique=True, index=True)
    city: Mapped[str] = mapped_column(sa.String(100))
    region: Mapped[str] = mapped_column(sa.String(100))
    notification_emails: Mapped[list] = mapped_column(sa.JSON, default=list)
    languages: Mapped[list] = mapped_column(sa.JSON, default=list)  # ISO 639-1 codes
    notification_language: Mapped[str] = mapped_column(sa.String(2), default="en")
    weekly_capacity: Mapped[int] = mapped_column(default=10)
    active: Mapped[bool] = mapped_column(default=True)
    paused_until: Mapped[datetime | None]
    is_demo: Mapped[bool] = mapped_column(default=False)
    # Of its most recent assignments that were answered or expired (responses.STATS_WINDOW): how
    # many it answered, how many of those were acceptances, how many it let expire, and the median
    # time to an answer. Kept by `responses.refresh_provider_stats` at every answer and expiry.
    response_count: Mapped[int] = mapped_column(default=0)
    accepted_count: Mapped[int] = mapped_column(default=0)
    unanswered_count: Mapped[int] = mapped_column(default=0)
    median_response_seconds: Mapped[int | None]
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    treatments = relationship("ProviderTreatment", cascade="all, delete-orphan")
    conditions = relationship("Condition", secondary=provider_condition)

    @validates("name")
    def _name_set(self, _key: str, name: str) -> str:
        self.name_key = provider_name_key(name)
        return name

    @hybrid_property
    def links_open(self) -> bool:
        """Whether its signed links still show and mark its requests: not once an admin deactivated
        it (paused until reactivated); a pause until a date stops only new leads. The same rule in
        Python and, for a guarded UPDATE, in SQL."""
        return self.active

    @links_open.inplace.expression
    @classmethod
    def _links_open_expression(cls):
        return cls.active.is_(True)


class AddressBounce(db.Model):
    """A provider's notification address the mail server refused for good (5xx), shown to admins
    until one of them confirms the address works (or it leaves the provider's list)."""

    __table_args__ = (sa.UniqueConstraint("provider_id", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("provider.id"), index=True)
    address: Mapped[str] = mapped_column(sa.String(320))
    answer: Mapped[str] = mapped_column(sa.String(1000))  # the mail server's last answer
    # Leads whose notification to this address bounced since it was last confirmed.
    bounces: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assignment(db.Model):
    __table_args__ = (
        sa.UniqueConstraint("lead_id", "provider_id"),
        # A provider's assignments by date: routing counts the candidates' assignments of the week
        # from this index alone (and its leading column serves the provider's foreign key).
        sa.Index("ix_assignment_provider_id_created_at", "provider_id", "created_at"),
        # A provider's assignments newest settled first (`responses.refresh_provider_stats`, at every
        # answer and expiry): its last 200 are read from the top of this index instead of sorting
        # the provider's whole history. The expression is the one that query orders by.
        sa.Index(
            "ix_assignment_provider_id_settled_at",
            "provider_id",
            sa.text("coalesce(responded_at, expired_at, created_at) DESC"),
            sa.text("id DESC"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("provider.id"))
    rank: Mapped[int]
    score: Mapped[float]
    score_breakdown: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    status: Mapped[str] = mapped_column(sa.String(20), default=AssignmentStatus.NOTIFIED.value)
    decline_reason: Mapped[str | None] = mapped_column(sa.String(40))
    response_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    viewed_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    # The one reminder to a clinic that accepted but has not sent its quote.
    quote_reminded_at: Mapped[datetime | None]
    # Stamped by every change (ORM or bulk UPDATE), so the stats summaries see late answers;
    # empty on rows not changed since migration 0007s.
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    lead = relationship("Lead", back_populates="assignments")
    provider = relationship("Provider")

    def change_status(self, target: str) -> AssignmentStatus:
        """Move through the assignment table; IllegalTransition otherwise. Callers record the event."""
        new_status = check_assignment_transition(self.status, target)
        self.status = new_status.value
        return new_status
