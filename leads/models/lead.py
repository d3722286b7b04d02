"""The patient's request, their consent and its append-only history."""

import re
import secrets
import unicodedata
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from leads.extensions import db
from leads.timeutil import utcnow
from leads.workflow import SLA_PENDING, TAKEN_IN_HAND, LeadStatus, check_transition

# No 0/O or 1/I/L: references are read aloud over the phone.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 6  # code characters after "Q-"
# A reference as people type it: "Q-", "Q" or nothing before the code. Q is a code letter too,
# so a leading Q is the prefix only when a whole code follows it (QK3M9P is the code of Q-QK3M9P).
_TYPED_REFERENCE = re.compile(rf"(?:Q-?)?([{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}})")


def new_reference() -> str:
    """A random public reference such as Q-7K3M9P."""
    return "Q-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def typed_reference(text: str) -> str | None:
    """The reference `text` names as a patient or coordinator types it (`q-7k3m9p`, `Q7K3M9P`,
    `7K3M9P`, spaces anywhere), or None when it cannot be one."""
    match = _TYPED_REFERENCE.fullmatch("".join(text.split()).upper())
    return f"Q-{match[1]}" if match else None


# Requests an erasure at its deadline left that nobody has judged yet (the queue's filter, its index).
LEFT_BY_ERASURE = "left_by_erasure_at IS NOT NULL AND anonymised_at IS NULL"


class Lead(db.Model):
    __table_args__ = (
        sa.Index("ix_lead_status_created_at", "status", "created_at"),
        # The coordinator queue: the SLA-overdue segment, and "mine" in newest-first order.
        sa.Index("ix_lead_status_sla_due_at", "status", "sla_due_at"),
        sa.Index("ix_lead_assigned_to_id_created_at", "assigned_to_id", "created_at"),
        # The queue's search by part of a name (ILIKE '%…%') or the end of a phone number (LIKE '%…'):
        # trigram indexes, on PostgreSQL only (migration 0007t creates pg_trgm).
        sa.Index(
            "ix_lead_full_name_trgm",
            "full_name",
            postgresql_using="gin",
            postgresql_ops={"full_name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        sa.Index(
            "ix_lead_phone_trgm", "phone", postgresql_using="gin", postgresql_ops={"phone": "gin_trgm_ops"}
        ).ddl_if(dialect="postgresql"),
        # The stats summaries find the days whose leads changed since they were computed.
        sa.Index("ix_lead_updated_at", "updated_at"),
        # The queue's erasure count: the few leads whose erasure is asked for and not yet done.
        sa.Index(
            "ix_lead_erasure_pending",
            "erasure_requested_at",
            postgresql_where=sa.text("erasure_requested_at IS NOT NULL AND anonymised_at IS NULL"),
            sqlite_where=sa.text("erasure_requested_at IS NOT NULL AND anonymised_at IS NULL"),
        ),
        # The queue's "left by an erasure" count: the few requests still waiting for a person's check.
        sa.Index(
            "ix_lead_left_by_erasure",
            "left_by_erasure_at",
            postgresql_where=sa.text(LEFT_BY_ERASURE),
            sqlite_where=sa.text(LEFT_BY_ERASURE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(12), unique=True, default=new_reference)
    status: Mapped[str] = mapped_column(sa.String(20), default=LeadStatus.NEW.value)
    # A coordinator's note on a status change (up to 2,000 characters), or a system note's data.
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    # email_key(email), set with the email (`_email_set`; the intake's insert gives it itself), and
    # cleared with it at erasure. Its index serves every look-up of the same email in any case
    # (`same_email`): the duplicate check at intake, the search, a patient's other requests.
    # lower() makes two letters of one at most (İ), so twice the address's length.
    email_key: Mapped[str] = mapped_column(sa.String(508), index=True)
    phone: Mapped[str] = mapped_column(sa.String(20), index=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    preferred_language: Mapped[str] = mapped_column(sa.String(8), default="en")
    treatment_id: Mapped[int] = mapped_column(sa.ForeignKey("treatment.id"), index=True)
    condition_id: Mapped[int] = mapped_column(sa.ForeignKey("condition.id"), index=True)
    details: Mapped[str] = mapped_column(sa.Text, default="")
    diagnosis_date: Mapped[date | None]
    injury_level: Mapped[str | None] = mapped_column(sa.String(20))
    timeframe: Mapped[str] = mapped_column(sa.String(30))
    budget: Mapped[str] = mapped_column(sa.String(30))
    contact_preference: Mapped[str] = mapped_column(sa.String(20))
    utm_source: Mapped[str | None] = mapped_column(sa.String(100))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(100))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(100))
    utm_term: Mapped[str | None] = mapped_column(sa.String(100))
    utm_content: Mapped[str | None] = mapped_column(sa.String(100))
    referrer: Mapped[str | None] = mapped_column(sa.String(500))
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    # The quote form's one-time token: a double-tapped Send stores one lead, not two.
    submission_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    # Indexed by ix_lead_assigned_to_id_created_at, whose leading column it is.
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    sla_due_at: Mapped[datetime | None] = mapped_column(index=True)
    anonymised_at: Mapped[datetime | None]
    # The patient asked, through their self-service link, for their data to be erased.
    erasure_requested_at: Mapped[datetime | None]
    # When an erasure at its deadline left this request, linked to the erased one, for a person to
    # judge (its history's note says so: `left_at_deadline` in `leads.notes`); cleared when a
    # coordinator records their check (`lead_actions.check_left_by_erasure`); an erasure of the
    # request ends the wait too.
    left_by_erasure_at: Mapped[datetime | None]
    # The one gentle reminder to a patient who has live quotes and has not chosen.
    quotes_reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    treatment = relationship("Treatment")
    condition = relationship("Condition")
    consent = relationship("Consent", back_populates="lead", uselist=False)
    events = relationship("LeadEvent", back_populates="lead", order_by="LeadEvent.id")
    assignments = relationship("Assignment", back_populates="lead", order_by="Assignment.rank")
    duplicate_of = relationship("Lead", remote_side=[id])
    assigned_to = relationship("User")

    @validates("email")
    def _email_set(self, _key: str, email: str) -> str:
        self.email_key = email_key(email)
        return email

    def change_status(
        self,
        target: str,
        *,
        actor_type: str,
        note: str | None = None,
        actor_user_id: int | None = None,
        actor_provider_id: int | None = None,
        reason=None,
    ) -> "LeadEvent":
        """Move to `target` through the workflow and record it; IllegalTransition otherwise. A
        `note` or `reason` the system writes is a `leads.notes.Note`; a person's is their text."""
        new_status, values = status_change(
            self.status,
            target,
            actor_type=actor_type,
            actor_user_id=actor_user_id,
            actor_provider_id=actor_provider_id,
            note=note,
        )
        event = LeadEvent(lead=self, **values)
        db.session.add(event)
        self.status = new_status.value
        self.status_reason = reason if reason is None or isinstance(reason, str) else reason.stored
        return event

    def add_event(self, kind: str, **columns) -> "LeadEvent":
        """Append one event to the lead's history, in the caller's transaction; `columns` are
        those `event_values` names (the actor, the statuses, the note)."""
        event = LeadEvent(lead=self, **event_values(kind, **columns))
        db.session.add(event)
        return event

    @property
    def taken_in_hand_at(self) -> datetime | None:
        """When the lead first left SLA_PENDING, stopping its SLA clock; None while it runs."""
        return min((e.created_at for e in self.events if e.to_status in TAKEN_IN_HAND), default=None)

    @property
    def sla_running(self) -> bool:
        """Its SLA clock still runs (`sla_running` in SQL): it has a due time, is in SLA_PENDING and
        was never taken in hand. A booked lead, or one reopened after a coordinator handled it, has
        no SLA left to meet or miss."""
        return bool(self.sla_due_at) and self.status in SLA_PENDING and self.taken_in_hand_at is None

    @property
    def original(self) -> "Lead":
        """The first request of this lead's duplicate chain (the lead itself when it is no duplicate)."""
        lead, seen = self, {self.id}
        # Links only ever point to an earlier request, but a corrupted chain must not loop forever.
        while lead.duplicate_of is not None and lead.duplicate_of.id not in seen:
            lead = lead.duplicate_of
            seen.add(lead.id)
        return lead


def find_by_reference(reference: str) -> Lead | None:
    """The lead a reference names, as a patient or coordinator types it (`typed_reference`)."""
    code = typed_reference(reference)
    return db.session.scalar(sa.select(Lead).filter_by(reference=code)) if code else None


def event_values(
    kind: str,
    *,
    actor_type: str,
    note=None,
    actor_user_id: int | None = None,
    actor_provider_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> dict:
    """The columns of one entry of a lead's history, but its lead: `Lead.add_event` makes the
    entry from them, and so does the intake, which writes a new lead's first entries as rows.
    A `note` the system writes is a `leads.notes.Note`: its data is kept beside its English
    sentence; a person's note is their text, kept as typed."""
    if note is None or isinstance(note, str):
        text, data = note, None
    else:
        text, data = note.english, note.data
    return {
        "kind": kind,
        "actor_type": actor_type,
        "actor_user_id": actor_user_id,
        "actor_provider_id": actor_provider_id,
        "from_status": from_status,
        "to_status": to_status,
        "note": text,
        "note_data": data,
    }


def status_change(current: str, target: str, **actor_and_note) -> tuple[LeadStatus, dict]:
    """The status a lead moves to from `current` (IllegalTransition if the workflow forbids it)
    and the history entry that records the move: `Lead.change_status`, and the intake's."""
    new_status = check_transition(current, target)
    values = event_values("status_changed", from_status=current, to_status=new_status.value, **actor_and_note)
    return new_status, values


def email_key(address: str) -> str:
    """An email address in any case: what Lead.email_key stores, and what two addresses are
    compared by wherever the same patient's address is looked for (`same_email`).

    NFC, then lower(). Not casefold(): besides case, it makes one letter of two different ones (ß
    and ss, ς and σ), and two such addresses are two mailboxes; two domains, even (IDNA 2008,
    which email-validator applies, keeps straße.de and strasse.de apart). Case alone is what mail
    systems ignore in practice. The intake stores what email-validator returns: the domain lower-
    cased, the local part in NFC with its case kept; so this key is that address lower-cased, and
    NFC makes an Å typed as A and a combining ring in the search the Å stored. Computed in Python
    and stored: SQLite's lower() (and PostgreSQL's under the C locale) changes A to Z only, so the
    database could not tell ØRSTED@ from øRSTED@. Unicode never changes which letters are each
    other's case, so a stored key stays right after an upgrade of Python.
    """
    return unicodedata.normalize("NFC", address).lower()


def same_email(key) -> sa.ColumnElement[bool]:
    """Leads holding the address whose `email_key` is `key` (a value or a bound parameter), in any
    case, through the index on Lead.email_key."""
    return Lead.email_key == key


def sla_running() -> sa.ColumnElement[bool]:
    """Leads whose SLA clock still runs (`Lead.sla_running`): in SLA_PENDING, with a due time, and
    never moved to a status that takes a lead in hand (their history says). The queue's overdue
    segment and filter and the stats' leads still waiting past due are these, once past due."""
    return sa.and_(
        Lead.status.in_(sorted(SLA_PENDING)),
        Lead.sla_due_at.is_not(None),
        ~sa.exists().where(LeadEvent.lead_id == Lead.id, LeadEvent.to_status.in_(sorted(TAKEN_IN_HAND))),
    )


def same_patient(email: str | None, phone: str | None) -> sa.ColumnElement[bool]:
    """Leads of the same patient: the same email address in any case, or the same phone number."""
    clauses = []
    if email:
        clauses.append(same_email(email_key(email)))
    if phone:
        clauses.append(Lead.phone == phone)
    return sa.or_(*clauses) if clauses else sa.false()


class Consent(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id"), unique=True)
    text_version: Mapped[str] = mapped_column(sa.String(40))
    # SHA-256 of the exact wording shown, and the language it was shown in: consent you can prove.
    text_hash: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    share_with_providers: Mapped[bool]
    contact: Mapped[bool]
    source_form: Mapped[str] = mapped_column(sa.String(40))
    given_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]

    lead = relationship("Lead", back_populates="consent")


class LeadEvent(db.Model):
    """Append-only: rows are added, never edited."""

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    actor_type: Mapped[str] = mapped_column(sa.String(20))  # staff, provider, patient, system
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    actor_provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("provider.id"))
    from_status: Mapped[str | None] = mapped_column(sa.String(20))
    to_status: Mapped[str | None] = mapped_column(sa.String(20))
    # A person's words as typed; the system's in English (its data, `note_data`, says them in the
    # reader's language: `leads.notes`). The patient's data export and the CSV export read it.
    note: Mapped[str | None] = mapped_column(sa.Text)
    note_data: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lead = relationship("Lead", back_populates="events")
