"""Everything the lead page shows, read in a handful of queries."""

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from markupsafe import Markup

from leads import consent
from leads.consent import ConsentText
from leads.extensions import db
from leads.messaging.email import resend_key_parent
from leads.models import Assignment, EmailMessage, EmailStatus, Lead, LeadEvent, Provider, User
from leads.notes import describe_event, describe_problem
from leads.patients.privacy import CLOSING_WARNING, closing_for_inactivity, erasure_due_at
from leads.quotes.rules import hand_move_refusal
from leads.quotes.service import QuoteCard, staff_quotes
from leads.timeutil import utcnow
from leads.workflow import ALLOWED_TRANSITIONS, LeadStatus


@dataclass
class EmailRow:
    email: EmailMessage
    resends: list[EmailMessage] = field(default_factory=list)
    resent_from_id: int | None = None

    @property
    def problem(self) -> Markup:
        """Why it was not sent or not delivered, in the reader's words (empty when nothing went wrong)."""
        return describe_problem(self.email.last_error, self.email.last_error_data)

    @property
    def can_resend(self) -> bool:
        return self.email.status == EmailStatus.FAILED and all(
            r.status == EmailStatus.FAILED for r in self.resends
        )


@dataclass
class AssignmentRow:
    assignment: Assignment
    provider: Provider

    @property
    def response_seconds(self) -> float | None:
        a = self.assignment
        return (a.responded_at - a.created_at).total_seconds() if a.responded_at else None

    @property
    def viewed_seconds(self) -> float | None:
        a = self.assignment
        return (a.viewed_at - a.created_at).total_seconds() if a.viewed_at else None


@dataclass
class EventRow:
    event: LeadEvent
    actor: str
    note: Markup  # in the reader's language when the system wrote it, as typed when a person did


@dataclass
class LeadPage:
    lead: Lead
    events: list[EventRow]
    assignments: list[AssignmentRow]
    emails: list[EmailRow]
    later_duplicates: list[Lead]
    staff: list[User]
    next_statuses: list[str]
    overdue: bool
    consent_text: ConsentText | None = None
    erasure_due_at: datetime | None = None
    erasure_overdue: bool = False
    erasure_automatic: bool = False  # retention carries it out once due, if nobody has
    # Open and idle so long that retention closes it within CLOSING_WARNING unless someone acts.
    closing_for_inactivity: bool = False
    closing_days: int = CLOSING_WARNING.days
    quotes: list[QuoteCard] = field(default_factory=list)


def _actor(event: LeadEvent, users: dict[int, User], providers: dict[int, Provider]) -> str:
    if event.actor_type == "staff" and event.actor_user_id in users:
        return users[event.actor_user_id].email
    if event.actor_type == "provider" and event.actor_provider_id in providers:
        return providers[event.actor_provider_id].name
    actors = {"patient": _("Patient"), "system": _("System"), "provider": _("Provider"), "staff": _("Staff")}
    return actors.get(event.actor_type, event.actor_type)


def load_lead_page(lead_id: int, now: datetime | None = None) -> LeadPage | None:
    lead = db.session.get(Lead, lead_id)
    if lead is None:
        return None
    now = now or utcnow()
    events = db.session.scalars(
        # Newest first: an action's new entry comes right after its result, not below a long history.
        sa.select(LeadEvent)
        .filter_by(lead_id=lead.id)
        .order_by(LeadEvent.created_at.desc(), LeadEvent.id.desc())
    ).all()
    assignments = db.session.execute(
        sa.select(Assignment, Provider)
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.lead_id == lead.id)
        .order_by(Assignment.created_at, Assignment.rank)
    ).all()
    users = {u.id: u for u in db.session.scalars(sa.select(User).order_by(User.email))}
    providers = {p.id: p for _, p in assignments}
    missing = {e.actor_provider_id for e in events if e.actor_provider_id} - set(providers)
    if missing:
        providers.update(
            {p.id: p for p in db.session.scalars(sa.select(Provider).where(Provider.id.in_(missing)))}
        )
    later = db.session.scalars(
        sa.select(Lead).filter_by(duplicate_of_id=lead.id).order_by(Lead.created_at)
    ).all()
    due = erasure_due_at(lead)
    return LeadPage(
        lead=lead,
        events=[
            EventRow(e, _actor(e, users, providers), describe_event(e.note, e.note_data)) for e in events
        ],
        assignments=[AssignmentRow(a, p) for a, p in assignments],
        emails=_email_rows(lead.id),
        later_duplicates=list(later),
        staff=[u for u in users.values() if u.active],
        next_statuses=[
            s.value
            for s in LeadStatus
            if s in ALLOWED_TRANSITIONS[LeadStatus(lead.status)] and not hand_move_refusal(s.value)
        ],
        overdue=lead.sla_running and lead.sla_due_at < now,
        consent_text=consent.text_for(lead.consent.text_version, lead.consent.language)
        if lead.consent
        else None,
        erasure_due_at=due,
        erasure_overdue=bool(due and due < now and not lead.anonymised_at),
        erasure_automatic=current_app.config["ERASURE_AUTOMATIC_WHEN_DUE"],
        closing_for_inactivity=db.session.scalar(
            sa.select(sa.exists().where(Lead.id == lead.id, closing_for_inactivity(now)))
        ),
        quotes=staff_quotes(lead, now),
    )


def _email_rows(lead_id: int) -> list[EmailRow]:
    emails = db.session.scalars(
        sa.select(EmailMessage).filter_by(lead_id=lead_id).order_by(EmailMessage.created_at, EmailMessage.id)
    ).all()
    rows = {e.id: EmailRow(e, resent_from_id=resend_key_parent(e.idempotency_key)) for e in emails}
    for row in rows.values():
        if row.resent_from_id in rows:
            rows[row.resent_from_id].resends.append(row.email)
    return list(rows.values())
