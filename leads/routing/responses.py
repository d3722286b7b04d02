"""Provider answers to an assignment through their signed link, and the response statistics
the matching engine and the dashboard read."""

import logging
import statistics
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from leads.extensions import db, look_ups_first
from leads.i18n import Term
from leads.messaging import tokens
from leads.messaging.email import email_coordinators, email_patient
from leads.models import Assignment, AssignmentStatus, Lead, Provider
from leads.notes import Note
from leads.routing.notification import provider_language
from leads.routing.service import lock_as_routing, lock_lead, reroute_lead
from leads.timeutil import utcnow
from leads.workflow import (
    ACCEPTANCES,
    AWAITING_ANSWER,
    LeadStatus,
    QuoteStatus,
    assignment_sources,
    sharing_refusal,
)

log = logging.getLogger(__name__)

# Each reason as a choice of its own ("No capacity at the moment") and after a colon inside a
# sentence ("Reason: no capacity at the moment."), where Danish, Norwegian and Swedish write no capital.
DECLINE_REASONS = {
    "no_capacity": Term(_l("No capacity at the moment"), _l("no capacity at the moment")),
    "not_suitable": Term(_l("Not a suitable candidate"), _l("not a suitable candidate")),
    "treatment_not_offered": Term(_l("Treatment not offered"), _l("treatment not offered")),
    "other": Term(_l("Other reason"), _l("other reason")),
}
# Statistics look at a provider's most recent answered or expired assignments, so they follow
# current behaviour and cost the same after years of history.
STATS_WINDOW = 200


class NotAvailable(Exception):
    """The request behind a valid link can no longer be shown or answered; the message says why."""


@dataclass(frozen=True)
class Declined:
    """What a decline did: the assignment (its first answer stands) and, when this call recorded
    the decline, whether another clinic was asked in its place (None for an answer given before)."""

    assignment: Assignment
    passed_on: bool | None


def assignment_from_token(token: str) -> Assignment:
    """The assignment a provider link names; tokens.ExpiredToken / InvalidToken otherwise."""
    max_age = current_app.config["PROVIDER_LINK_MAX_AGE_DAYS"] * 86400
    assignment = db.session.get(Assignment, tokens.read_assignment_token(token, max_age))
    if assignment is None:
        raise tokens.InvalidToken("This link is not valid.")
    return assignment


def link_language(token: str | None) -> str | None:
    """The language of the clinic a link belongs to (its emails'); None for a link we cannot read."""
    try:
        assignment = assignment_from_token(token or "")
    except tokens.TokenError:
        return None
    return provider_language(assignment.provider)


def check_available(assignment: Assignment) -> None:
    """Raise NotAvailable when the lead may no longer be shared or the assignment is no longer
    the provider's."""
    refusal = sharing_refusal(assignment.lead)
    if refusal:
        raise NotAvailable(gettext(refusal))
    if not assignment.provider.links_open:
        raise NotAvailable(
            gettext("This clinic no longer receives requests through us, so the request is not shown.")
        )
    if assignment.status == AssignmentStatus.EXPIRED:
        raise NotAvailable(
            gettext("This request was passed to another clinic because it had no answer in time.")
        )
    if assignment.status in (AssignmentStatus.WITHDRAWN, AssignmentStatus.CLOSED):
        quote = assignment.quote
        if quote is not None and quote.status == QuoteStatus.CHOICE_ENDED:
            raise NotAvailable(
                gettext(
                    "The coordinators ended the patient's choice of your clinic, so the request is "
                    "no longer shown to you. Write to them if you have questions."
                )
            )
        raise NotAvailable(gettext("This request is no longer offered to your clinic."))
    if assignment.status == AssignmentStatus.NOT_CHOSEN:
        raise NotAvailable(
            gettext(
                "The patient decided not to go ahead with your clinic, so the request is closed for you. "
                "Thank you for your answer."
            )
        )


def open_request(token: str, *, by_a_person: bool = True) -> bool:
    """Check that the link's request may be shown to its clinic (tokens.TokenError, NotAvailable
    otherwise) and, at the first opening by a person (`by_a_person`: not a prefetch, a preview or
    a HEAD, `signed_links.opened_by_a_person`), mark the assignment viewed. Whether this opening
    did.

    Only that first opening writes: the checks read without the write lock (`look_ups_first`), so
    a fetch ahead of the clinic, or its later openings, never make other writers wait."""
    with look_ups_first():
        assignment = assignment_from_token(token)
        check_available(assignment)
        first_view = (
            by_a_person and assignment.status == AssignmentStatus.NOTIFIED and assignment.viewed_at is None
        )
        assignment_id = assignment.id
    return first_view and _mark_viewed(assignment_id)


def _mark_viewed(assignment_id: int) -> bool:
    """Mark the assignment viewed with its history entry, in one transaction, unless an opening
    at the same moment did (or an answer, a withdrawal or an expiry moved it on since it was read,
    or an admin deactivated its clinic, which `check_available` would now refuse). Whether this
    call did."""
    updated = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.viewed_at.is_(None),
            Assignment.status.in_(assignment_sources(AssignmentStatus.VIEWED)),
            sa.exists().where(Provider.id == Assignment.provider_id, Provider.links_open),
        )
        .values(viewed_at=utcnow(), status=AssignmentStatus.VIEWED.value)
    ).rowcount
    if updated:
        assignment = db.session.get(Assignment, assignment_id)
        assignment.lead.add_event(
            "provider_viewed",
            actor_type="provider",
            actor_provider_id=assignment.provider_id,
            note=Note("provider_viewed", provider=assignment.provider.name),
        )
    db.session.commit()
    return bool(updated)


def _lock_open_assignment(assignment_id: int) -> Assignment | None:
    """The assignment, locked after its lead (`lock_lead`), if it still waits for an answer; None
    once answered."""
    lock_lead(db.session.scalar(sa.select(Assignment.lead_id).where(Assignment.id == assignment_id)))
    assignment = db.session.execute(
        sa.select(Assignment)
        .where(Assignment.id == assignment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    check_available(assignment)
    return assignment if assignment.status in AWAITING_ANSWER else None


def accept(assignment_id: int, *, note: str | None) -> Assignment:
    """The provider takes the patient on. Idempotent: a second answer changes nothing."""
    assignment = _lock_open_assignment(assignment_id)
    if assignment is None:
        db.session.rollback()
        return db.session.get(Assignment, assignment_id)
    lead, provider = assignment.lead, assignment.provider
    _record_answer(assignment, AssignmentStatus.ACCEPTED, note=note)
    summary = _l("%(provider)s accepted", provider=provider.name)
    lead.add_event(
        "provider_accepted",
        actor_type="provider",
        actor_provider_id=provider.id,
        note=Note("provider_accepted_with_note", provider=provider.name, note=note)
        if note
        else Note("provider_accepted", provider=provider.name),
    )
    if lead.status in (LeadStatus.ROUTED, LeadStatus.UNROUTABLE):
        lead.change_status(
            LeadStatus.CONTACTED,
            actor_type="provider",
            actor_provider_id=provider.id,
            note=Note("provider_will_contact", provider=provider.name),
        )
    _email_coordinators(assignment, summary, note)
    email_patient(
        lead,
        template="patient_provider_accepted",
        idempotency_key=f"accepted:{assignment.id}:patient",
        provider_name=provider.name,
        provider_city=provider.city,
    )
    refresh_provider_stats(provider.id)
    db.session.commit()
    log.info("assignment %s accepted", assignment.id)
    return assignment


def decline(assignment_id: int, *, reason: str, note: str | None) -> Declined:
    """The provider declines; while no clinic has accepted a routed lead, the next-best provider
    not yet tried is asked in their place. Idempotent: a second answer changes nothing."""
    if reason not in DECLINE_REASONS:
        raise ValueError(f"Unknown decline reason {reason!r}")
    assignment = _lock_open_assignment(assignment_id)
    if assignment is None:
        db.session.rollback()
        return Declined(db.session.get(Assignment, assignment_id), passed_on=None)
    lead, provider = assignment.lead, assignment.provider
    _record_answer(assignment, AssignmentStatus.DECLINED, note=note)
    assignment.decline_reason = reason
    said = DECLINE_REASONS[reason].in_sentence  # lazy: worded in the coordinators' language
    summary = _l("%(provider)s declined: %(reason)s", provider=provider.name, reason=said)
    why = Note("decline_reason", reason=reason)
    lead.add_event(
        "provider_declined",
        actor_type="provider",
        actor_provider_id=provider.id,
        note=Note("provider_declined_with_note", provider=provider.name, reason=why, note=note)
        if note
        else Note("provider_declined", provider=provider.name, reason=why),
    )
    _email_coordinators(assignment, summary, note)
    lock_as_routing(lead, provider.id)  # before the provider row is written: see refresh_provider_stats
    refresh_provider_stats(provider.id)
    replacements = []
    if needs_replacement(lead):
        # reroute_lead commits this transaction together with its new assignment.
        replacements = reroute_lead(
            lead.id,
            actor_type="system",
            reason=Note("provider_declined_reason", provider=provider.name),
            limit=1,
        )
    else:
        db.session.commit()
    log.info("assignment %s declined", assignment.id)
    return Declined(assignment, passed_on=bool(replacements))


def needs_replacement(lead: Lead) -> bool:
    """A routed lead that no provider has accepted gets a replacement for each one that drops out."""
    if lead.status != LeadStatus.ROUTED:
        return False
    return not any(a.status == AssignmentStatus.ACCEPTED for a in lead.assignments)


def _record_answer(assignment: Assignment, status: AssignmentStatus, *, note: str | None) -> None:
    now = utcnow()
    assignment.change_status(status)
    assignment.responded_at = now
    assignment.viewed_at = assignment.viewed_at or now
    assignment.response_note = note or None


def _email_coordinators(assignment: Assignment, summary, note: str | None) -> None:
    email_coordinators(
        assignment.lead,
        template="coordinator_provider_response",
        idempotency_key=f"response:{assignment.id}:coordinators",
        summary=summary,
        note=note,
    )


def refresh_provider_stats(provider_id: int) -> None:
    """Recompute the provider's answer statistics from its last STATS_WINDOW settled assignments
    (answered or expired): answers, acceptances, expiries and the median time to answer.

    Run in the transaction of every answer and every expiry; it writes the provider row. A caller
    that re-routes afterwards takes routing's locks first (`service.lock_as_routing`), so it never
    holds a provider row a routing waits for while it waits for that routing; an acceptance takes
    no lock after this one. Routing reads the stored figures and never counts a provider's history.
    """
    # The order of the (provider, settle time, id) index: the last STATS_WINDOW come from its top.
    settled_at = sa.func.coalesce(Assignment.responded_at, Assignment.expired_at, Assignment.created_at)
    rows = db.session.execute(
        sa.select(Assignment.status, Assignment.created_at, Assignment.responded_at)
        .where(
            Assignment.provider_id == provider_id,
            sa.or_(Assignment.responded_at.is_not(None), Assignment.status == AssignmentStatus.EXPIRED),
        )
        .order_by(settled_at.desc(), Assignment.id.desc())
        .limit(STATS_WINDOW)
    ).all()
    answered = [row for row in rows if row.status != AssignmentStatus.EXPIRED]
    provider = db.session.get(Provider, provider_id)
    provider.response_count = len(answered)
    provider.unanswered_count = len(rows) - len(answered)
    # An acceptance stays one when the patient later chooses another clinic.
    provider.accepted_count = sum(1 for row in answered if row.status in ACCEPTANCES)
    durations = [(row.responded_at - row.created_at).total_seconds() for row in answered]
    provider.median_response_seconds = int(statistics.median(durations)) if durations else None
