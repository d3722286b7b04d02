"""Escalation, run by beat: one reminder to a provider who has not answered, then expiry and
the next-best provider; then the quotes' follow-up (expiry and reminders). Counted in Danish
working days. Each step happens once, however often beat fires."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from leads.extensions import db
from leads.models import Assignment, AssignmentStatus
from leads.notes import Note
from leads.quotes.follow_up import FollowUpResult, follow_up_quotes
from leads.routing.notification import queue_provider_emails
from leads.routing.responses import needs_replacement, refresh_provider_stats
from leads.routing.service import lock_as_routing, lock_lead, reroute_lead
from leads.timeutil import utcnow
from leads.workdays import add_working_days
from leads.workflow import AWAITING_ANSWER, assignment_sources, sharing_refusal

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class EscalationResult:
    reminded: int = 0
    expired: int = 0
    quotes: FollowUpResult | None = None


def escalate_assignments(now: datetime | None = None) -> EscalationResult:
    """Send due reminders and expire overdue assignments; return what was done."""
    now = now or utcnow()
    config = current_app.config
    result = EscalationResult()
    for assignment_id in _open_assignment_ids(now):
        assignment = db.session.get(Assignment, assignment_id)
        expires_at = add_working_days(assignment.created_at, config["EXPIRE_AFTER_WORKING_DAYS"])
        if now >= expires_at:
            result.expired += _expire(assignment_id, now)
        elif assignment.reminded_at is None and now >= add_working_days(
            assignment.created_at, config["REMINDER_AFTER_WORKING_DAYS"]
        ):
            result.reminded += _remind(assignment_id, now, expires_at)
        else:
            db.session.rollback()
    if result.reminded or result.expired:
        log.info("escalation: %d reminder(s), %d expiry(ies)", result.reminded, result.expired)
    result.quotes = follow_up_quotes(now)
    return result


def _open_assignment_ids(now: datetime, most: int = 10 * BATCH) -> Iterator[int]:
    """The waiting assignments that may be due, oldest first, a batch at a time (at most `most` a
    run, so a run always ends). A working day is never shorter than a calendar day, so only rows
    older than the calendar days can be due; one already reminded takes no place in the batch until
    it is that many calendar days old, so a backlog of reminded rows does not hold newer reminders
    up (only those past the calendar days of their expiry, over a weekend or a holiday, still do)."""
    config = current_app.config
    reminder_due = now - timedelta(days=config["REMINDER_AFTER_WORKING_DAYS"])
    expiry_due = now - timedelta(days=config["EXPIRE_AFTER_WORKING_DAYS"])
    may_be_due = sa.and_(
        Assignment.status.in_(sorted(AWAITING_ANSWER)),
        sa.or_(
            sa.and_(Assignment.reminded_at.is_(None), Assignment.created_at <= reminder_due),
            Assignment.created_at <= expiry_due,
        ),
    )
    last, seen = None, 0
    while seen < most:
        query = sa.select(Assignment.id, Assignment.created_at).where(may_be_due)
        if last is not None:
            query = query.where(
                Assignment.created_at >= last.created_at,  # the index's lower bound
                sa.or_(Assignment.created_at > last.created_at, Assignment.id > last.id),
            )
        rows = db.session.execute(query.order_by(Assignment.created_at, Assignment.id).limit(BATCH)).all()
        db.session.rollback()
        yield from (row.id for row in rows)
        if len(rows) < BATCH:
            return
        last, seen = rows[-1], seen + len(rows)


def _remind(assignment_id: int, now: datetime, expires_at: datetime) -> int:
    # The guarded update makes the reminder happen once even with two beats or redelivered tasks.
    claimed = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.reminded_at.is_(None),
            Assignment.status.in_(sorted(AWAITING_ANSWER)),
        )
        .values(reminded_at=now)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return 0
    assignment = db.session.get(Assignment, assignment_id)
    lead, provider = assignment.lead, assignment.provider
    if sharing_refusal(lead):
        # Nothing more goes to a provider about a lead that may no longer be shared.
        db.session.rollback()
        return 0
    queue_provider_emails(assignment, "reminder", expires_at=expires_at)
    lead.add_event(
        "provider_reminded",
        actor_type="system",
        actor_provider_id=provider.id,
        note=Note("provider_reminded", provider=provider.name),
    )
    db.session.commit()
    return 1


def _expire(assignment_id: int, now: datetime) -> int:
    # The lead first, as every path that changes its assignments (`lock_lead`).
    lock_lead(db.session.scalar(sa.select(Assignment.lead_id).where(Assignment.id == assignment_id)))
    expired = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.status.in_(assignment_sources(AssignmentStatus.EXPIRED)),
        )
        .values(status=AssignmentStatus.EXPIRED.value, expired_at=now)
    ).rowcount
    if not expired:
        db.session.rollback()
        return 0
    assignment = db.session.get(Assignment, assignment_id)
    db.session.refresh(assignment)
    lead, provider = assignment.lead, assignment.provider
    reason = Note("no_answer", provider=provider.name, days=current_app.config["EXPIRE_AFTER_WORKING_DAYS"])
    lead.add_event("assignment_expired", actor_type="system", actor_provider_id=provider.id, note=reason)
    lock_as_routing(lead, provider.id)
    refresh_provider_stats(provider.id)
    if needs_replacement(lead):
        # Commits the expiry together with the replacement (or the lead's move to unroutable).
        reroute_lead(lead.id, actor_type="system", reason=reason, limit=1)
    else:
        db.session.commit()
    return 1
