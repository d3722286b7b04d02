"""What a coordinator can do to a lead: notes, status changes through the workflow, assignment
to a coordinator, duplicate and spam verdicts, resending a failed email, and the routing calls.

Each function adds to the caller's transaction and raises ActionError with a message fit to
show; the caller commits.
"""

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from flask_babel import gettext as _

from leads.extensions import db
from leads.messaging.email import RESEND_PREFIX, add_email
from leads.models import (
    Assignment,
    AssignmentStatus,
    EmailMessage,
    EmailStatus,
    Lead,
    LeadEvent,
    User,
    find_by_reference,
)
from leads.notes import Note
from leads.quotes import rules as quote_rules
from leads.quotes import service as quotes
from leads.routing import service as routing
from leads.staff.labels import label
from leads.workflow import AWAITING_ANSWER, REROUTABLE, IllegalTransition, LeadStatus

log = logging.getLogger(__name__)
STAFF = "staff"
LEFT_BY_ERASURE_CHECKED_NOTE = Note("left_by_erasure_checked")


class ActionError(ValueError):
    """The action was refused; the message says why in words a coordinator understands."""


class LeadNotFound(LookupError):
    pass


def refused_move(exc: IllegalTransition) -> ActionError:
    """The workflow's refusal in the reader's words, each status as the pages name it."""
    return ActionError(exc.words(_, lambda status: label(status, exc.kind)))


def lock_lead(lead_id: int) -> Lead:
    """The lead, locked for this transaction by routing's `lock_lead`; LeadNotFound if none."""
    lead = routing.lock_lead(lead_id)
    if lead is None:
        raise LeadNotFound(lead_id)
    return lead


def _event(lead: Lead, kind: str, user_id: int, note: str | Note | None) -> LeadEvent:
    return lead.add_event(kind, actor_type=STAFF, actor_user_id=user_id, note=note)


def add_note(lead_id: int, user_id: int, text: str) -> LeadEvent:
    text = text.strip()
    if not text:
        raise ActionError(_("Write the note before saving it."))
    return _event(lock_lead(lead_id), "note", user_id, text)


def change_status(
    lead_id: int, user_id: int, target: str, *, expected_current: str | None = None, note: str | None = None
) -> LeadEvent:
    """Move the lead through the workflow; refuse illegal moves and moves made on a stale page.
    The lead's open quotes close with any move (README: what a manual move does to quotes)."""
    lead = lock_lead(lead_id)
    if expected_current and lead.status != expected_current:
        raise ActionError(
            _(
                "The lead changed to '%(status)s' while you were looking at it. "
                "Check the timeline, then choose the new status again.",
                status=label(lead.status),
            )
        )
    refusal = quote_rules.hand_move_refusal(target)
    if refusal:
        raise ActionError(str(refusal))
    try:
        return quotes.move_lead(
            lead,
            target,
            actor_type=STAFF,
            actor_user_id=user_id,
            note=note or None,
            reason=note or None,
            why=Note("because_moved", status=Note("lead_status", status=target)),
        )
    except IllegalTransition as exc:
        raise refused_move(exc) from None


def assign_coordinator(
    lead_id: int, user_id: int, assignee_id: int | None, *, shown_assignee_id: int | None
) -> LeadEvent:
    """Give the lead to a staff member (or to nobody); the history says who did it. Refused when
    the page it was asked from showed another holder (`shown_assignee_id`) than the lead has now:
    of two coordinators taking the same lead, the later one learns who has it."""
    lead = lock_lead(lead_id)
    if lead.assigned_to_id != shown_assignee_id:
        if lead.assigned_to is None:
            raise ActionError(
                _(
                    "The lead was unassigned while you were looking at it, so nothing was changed. "
                    "Check the timeline, then assign it again if you still mean to."
                )
            )
        raise ActionError(
            _(
                "The lead is now assigned to %(email)s: it changed while you were looking at it, "
                "so nothing was changed. Check the timeline, then assign it again if you still mean to.",
                email=lead.assigned_to.email,
            )
        )
    assignee = None
    if assignee_id is not None:
        assignee = db.session.get(User, assignee_id)
        if assignee is None or not assignee.active:
            raise ActionError(_("That staff member does not exist or is deactivated."))
    if lead.assigned_to_id == assignee_id:
        raise ActionError(_("The lead is already assigned that way."))
    lead.assigned_to_id = assignee_id
    note = Note("assigned_to", email=assignee.email) if assignee else Note("unassigned")
    return _event(lead, "assigned", user_id, note)


def mark_duplicate(lead_id: int, user_id: int, original_reference: str, note: str | None = None) -> Lead:
    """Mark the lead a duplicate of an earlier one (followed to the first of its chain)."""
    lead = lock_lead(lead_id)
    original = find_by_reference(original_reference)
    if original is None:
        raise ActionError(
            _("No request has the reference '%(reference)s'.", reference=original_reference.strip())
        )
    original = original.original
    if original.id == lead.id:
        raise ActionError(_("A request cannot be a duplicate of itself."))
    if original.created_at > lead.created_at:
        raise ActionError(
            _(
                "%(reference)s arrived after this request. Mark %(reference)s as the duplicate instead.",
                reference=original.reference,
            )
        )
    typed = (note or "").strip()
    text = (
        Note("duplicate_marked_with_note", reference=original.reference, note=typed)
        if typed
        else Note("duplicate_marked", reference=original.reference)
    )
    try:
        lead.change_status(
            LeadStatus.DUPLICATE, actor_type=STAFF, actor_user_id=user_id, note=text, reason=text
        )
    except IllegalTransition as exc:
        raise refused_move(exc) from None
    lead.duplicate_of_id = original.id
    routing.stop_sharing_if_closed(lead)
    return original


def check_left_by_erasure(lead_id: int, user_id: int) -> LeadEvent:
    """A coordinator judged a request an erasure at its deadline left (`Lead.left_by_erasure_at`):
    not the erased patient's, so it is kept. It leaves the queue's list, and its history says who
    checked. Were it the same patient's, an admin would erase it instead, which ends the wait too."""
    lead = lock_lead(lead_id)
    if lead.left_by_erasure_at is None or lead.anonymised_at is not None:
        raise ActionError(_("This request no longer waits for a check after an erasure."))
    lead.left_by_erasure_at = None
    return _event(lead, "left_by_erasure_checked", user_id, LEFT_BY_ERASURE_CHECKED_NOTE)


def mark_spam(lead_id: int, user_id: int, note: str | None = None) -> LeadEvent:
    lead = lock_lead(lead_id)
    text = (note or "").strip() or Note("spam_marked")
    try:
        event = lead.change_status(
            LeadStatus.SPAM, actor_type=STAFF, actor_user_id=user_id, note=text, reason=text
        )
    except IllegalTransition as exc:
        raise refused_move(exc) from None
    routing.stop_sharing_if_closed(lead)
    return event


def resend_email(lead_id: int, email_id: int, user_id: int) -> str:
    """Queue a failed email again as a new delivery with the same content; the address it goes to.

    The failed row stays as it is, so the history keeps the server's answer.
    """
    lead = lock_lead(lead_id)
    original = db.session.get(EmailMessage, email_id)
    if original is None or original.lead_id != lead.id:
        raise ActionError(_("That email does not belong to this request."))
    if original.status != EmailStatus.FAILED:
        raise ActionError(_("Only an email that failed can be sent again."))
    if not original.to_address or (not original.body_text and original.render_context is None):
        # Erasure or retention removed its words (and a patient's address): nothing to send again.
        raise ActionError(
            _("This email's words have been removed (erasure or retention), so it cannot be sent again.")
        )
    prefix = f"{RESEND_PREFIX}{original.id}:"
    resends = db.session.scalars(
        sa.select(EmailMessage).where(
            EmailMessage.lead_id == lead.id, EmailMessage.idempotency_key.startswith(prefix)
        )
    ).all()
    if any(r.status != EmailStatus.FAILED for r in resends):
        raise ActionError(_("This email has already been sent again; see its status below."))
    copy_id = add_email(
        idempotency_key=f"{prefix}{len(resends) + 1}",
        template=original.template,
        to_address=original.to_address,
        reply_to=original.reply_to,
        subject=original.subject,
        body_text=original.body_text,
        body_html=original.body_html,
        render_context=original.render_context,  # one not yet rendered renders as the original would
        lead_id=lead.id,
    )
    _event(
        lead, "email_resent", user_id, Note("email_queued_again", template=original.template, id=original.id)
    )
    log.info("lead %s: email %s resent as %s", lead.id, original.id, copy_id)
    return original.to_address


def approve_routing(lead_id: int, user_id: int) -> str:
    """Let a needs-review lead go to providers; the routing outcome ('routed', 'unroutable')."""
    lead = lock_lead(lead_id)
    if lead.status != LeadStatus.NEEDS_REVIEW:
        raise ActionError(
            _(
                "Only a lead that needs review can be approved; this one is '%(status)s'.",
                status=label(lead.status),
            )
        )
    try:
        return routing.approve_routing(lead_id, user_id)
    except IllegalTransition as exc:
        raise refused_move(exc) from None
    except routing.RoutingError as exc:
        raise ActionError(str(exc)) from None


def offers_shown(status: str, assignment_statuses: Iterable[str]) -> str:
    """What a re-route from the lead page rests on, as the page carries it: the lead's status and
    how many clinics were offered it, are still to answer and have accepted. Offers only move
    forward, so every new offer, answer and expiry changes it."""
    statuses = list(assignment_statuses)
    waiting = sum(1 for s in statuses if s in AWAITING_ANSWER)
    accepted = sum(1 for s in statuses if s == AssignmentStatus.ACCEPTED)
    return f"{status}:{len(statuses)}:{waiting}:{accepted}"


def reroute(lead_id: int, user_id: int, reason: str, *, shown_offers: str) -> list:
    """Offer the lead to the next-best providers not yet tried; the new assignments. Refused when
    the page it was asked from showed other offers (`shown_offers`) than the lead has now: each
    re-route reaches at least one more clinic, so a second click from a stale page would send the
    request further than anyone meant."""
    lead = lock_lead(lead_id)
    offers = db.session.scalars(sa.select(Assignment.status).where(Assignment.lead_id == lead.id)).all()
    if offers_shown(lead.status, offers) != shown_offers:
        raise ActionError(
            _(
                "The lead's providers or status changed while you were looking at it, so no clinic was "
                "asked. Check the providers and the timeline, then re-route again if you still mean to."
            )
        )
    reason = reason.strip()
    if not reason:
        raise ActionError(_("Say why the lead needs other providers."))
    if lead.treatment.requires_review and not any(e.kind == "routing_approved" for e in lead.events):
        # Moved out of needs_review by hand, it would otherwise reach clinics unapproved.
        raise ActionError(
            _(
                "This treatment needs a coordinator's review before any clinic sees the request: "
                "move the lead to Needs review, then approve routing."
            )
        )
    try:
        return routing.reroute_lead(lead_id, actor_type=STAFF, actor_user_id=user_id, reason=reason)
    except IllegalTransition as exc:
        raise refused_move(exc) from None
    except routing.NotReroutable as exc:
        raise ActionError(
            _(
                "A lead in status '%(status)s' cannot be re-routed; only %(statuses)s leads can.",
                status=label(exc.status),
                statuses=", ".join(sorted(label(status) for status in REROUTABLE)),
            )
        ) from None
    except routing.RoutingError as exc:
        raise ActionError(str(exc)) from None
