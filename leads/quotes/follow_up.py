"""Quote follow-up, part of the escalation sweep beat runs: quotes past their validity expire, a
clinic that accepted but sent no quote within two working days gets one reminder, a patient with
live quotes and no choice after seven days gets one gentle reminder. Each step happens once,
however often beat fires: a guarded update claims it."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.i18n import patient_language
from leads.messaging.email import PROVIDER_TEMPLATE_PREFIX, email_patient
from leads.messaging.urls import patient_link, provider_link
from leads.models import Assignment, AssignmentStatus, Lead, Quote, QuoteRevision
from leads.notes import Note
from leads.quotes.service import expire_quote, patient_quotes
from leads.routing.notification import KEY_PREFIXES, email_provider
from leads.timeutil import utcnow
from leads.workdays import add_working_days
from leads.workflow import LeadStatus, QuoteStatus, sharing_refusal

log = logging.getLogger(__name__)
BATCH = 500
CLINIC_REMINDER_WORKING_DAYS = 2
PATIENT_REMINDER_DAYS = 7
# A clinic that accepted is reminded to quote only while the patient still waits for quotes.
WAITING_FOR_QUOTES = (LeadStatus.CONTACTED.value, LeadStatus.QUOTED.value)


@dataclass
class FollowUpResult:
    expired: int = 0
    clinics_reminded: int = 0
    patients_reminded: int = 0


def follow_up_quotes(now: datetime | None = None) -> FollowUpResult:
    """Expire overdue quotes, then send the due reminders; return what was done."""
    now = now or utcnow()
    result = FollowUpResult()
    for quote_id in _ids(_overdue_quotes(now)):
        result.expired += expire_quote(quote_id, now)
    for assignment_id in _ids(_silent_acceptances(now)):
        result.clinics_reminded += _remind_clinic(assignment_id, now)
    for lead_id in _ids(_undecided_leads(now)):
        result.patients_reminded += _remind_patient(lead_id, now)
    if result.expired or result.clinics_reminded or result.patients_reminded:
        log.info(
            "quote follow-up: %d expired, %d clinic reminder(s), %d patient reminder(s)",
            result.expired,
            result.clinics_reminded,
            result.patients_reminded,
        )
    return result


def _ids(query) -> list[int]:
    ids = list(db.session.scalars(query.limit(BATCH)))
    db.session.rollback()
    return ids


def _overdue_quotes(now: datetime):
    current = sa.and_(QuoteRevision.quote_id == Quote.id, QuoteRevision.number == Quote.revision)
    return (
        sa.select(Quote.id)
        .join(QuoteRevision, current)
        .where(Quote.status == QuoteStatus.LIVE.value, QuoteRevision.valid_until < now)
        .order_by(QuoteRevision.valid_until)
    )


def _silent_acceptances(now: datetime):
    # A working day is never shorter than a calendar day: only older acceptances can be due.
    return (
        sa.select(Assignment.id)
        .join(Lead, Lead.id == Assignment.lead_id)
        .outerjoin(Quote, Quote.assignment_id == Assignment.id)
        .where(
            Assignment.status == AssignmentStatus.ACCEPTED.value,
            Assignment.quote_reminded_at.is_(None),
            Assignment.responded_at <= now - timedelta(days=CLINIC_REMINDER_WORKING_DAYS),
            Quote.id.is_(None),
            Lead.status.in_(WAITING_FOR_QUOTES),
        )
        .order_by(Assignment.responded_at)
    )


def _undecided_leads(now: datetime):
    # Seven days from the first of the quotes the patient can choose from: after "none of these
    # suit me" and a re-route, the earlier round's quotes (not chosen) do not start the clock.
    return (
        sa.select(Lead.id)
        .join(Quote, sa.and_(Quote.lead_id == Lead.id, Quote.status == QuoteStatus.LIVE.value))
        .where(Lead.status == LeadStatus.QUOTED.value, Lead.quotes_reminded_at.is_(None))
        .group_by(Lead.id)
        .having(sa.func.min(Quote.created_at) <= now - timedelta(days=PATIENT_REMINDER_DAYS))
        .order_by(sa.func.min(Quote.created_at))
    )


def _remind_clinic(assignment_id: int, now: datetime) -> int:
    assignment = db.session.get(Assignment, assignment_id)
    if now < add_working_days(assignment.responded_at, CLINIC_REMINDER_WORKING_DAYS):
        db.session.rollback()
        return 0
    claimed = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.quote_reminded_at.is_(None),
            Assignment.status == AssignmentStatus.ACCEPTED.value,
        )
        .values(quote_reminded_at=now)
    ).rowcount
    db.session.refresh(assignment)
    lead, provider = assignment.lead, assignment.provider
    if not claimed or assignment.quote is not None:
        db.session.rollback()
        return 0
    if sharing_refusal(lead) or not provider.links_open:
        # Never to be reminded (a lead that may not be shared, an erased one among them; a clinic
        # paused until reactivated): the claim stands, so no sweep picks the row again and a few
        # hundred of them cannot crowd out the reminders that are due.
        db.session.commit()
        return 0
    email_provider(
        assignment,
        PROVIDER_TEMPLATE_PREFIX + "quote_reminder",
        f"{KEY_PREFIXES['quote_reminder']}:{assignment.id}",
        reference=lead.reference,
        provider_name=provider.name,
        link=provider_link(assignment.id),
    )
    lead.add_event(
        "quote_reminder_sent",
        actor_type="system",
        actor_provider_id=provider.id,
        note=Note("quote_reminder_sent", provider=provider.name),
    )
    db.session.commit()
    return 1


def _remind_patient(lead_id: int, now: datetime) -> int:
    claimed = db.session.execute(
        sa.update(Lead)
        .where(Lead.id == lead_id, Lead.quotes_reminded_at.is_(None), Lead.status == LeadStatus.QUOTED.value)
        .values(quotes_reminded_at=now)
    ).rowcount
    lead = db.session.get(Lead, lead_id)
    db.session.refresh(lead)
    live, _ = patient_quotes(lead, now)
    if claimed and sharing_refusal(lead):
        db.session.commit()  # never to be reminded: the claim stands (as for a clinic's reminder)
        return 0
    if not claimed or not live:
        # Without a live quote there is nothing to choose; a renewed quote makes the reminder due again.
        db.session.rollback()
        return 0
    email_patient(
        lead,
        template="patient_quote_reminder",
        idempotency_key=f"quote-reminder:{lead.id}:patient",
        link=patient_link(lead.id, patient_language(lead.preferred_language)),
    )
    lead.add_event("patient_reminded_of_quotes", actor_type="system", note=Note("patient_reminded"))
    db.session.commit()
    return 1
