"""Routing on the database side: lock what a decision needs, ask the engine, and write the
Assignments, LeadEvents and provider emails in the same transaction as the lead's new status."""

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from leads import notes
from leads.extensions import db
from leads.messaging.email import cancel_provider_emails
from leads.models import Assignment, AssignmentStatus, Lead, Provider, User
from leads.notes import Note
from leads.routing import candidates, engine
from leads.routing.notification import queue_provider_emails
from leads.timeutil import utcnow
from leads.workflow import (
    AWAITING_ANSWER,
    ENGAGED,
    REROUTABLE,
    LeadStatus,
    assignment_sources,
    sharing_refusal,
)

log = logging.getLogger(__name__)

SKIPPED = "skipped"


class RoutingError(ValueError):
    """A routing request that cannot be carried out, with a message fit to show a coordinator."""


class NotReroutable(RoutingError):
    """A re-route asked for a lead whose status allows none; `status` is that status."""

    def __init__(self, status: str) -> None:
        self.status = status
        allowed = ", ".join(sorted(REROUTABLE))
        super().__init__(f"A lead in status '{status}' cannot be re-routed; only {allowed} leads can.")


def route_lead(lead_id: int) -> str:
    """Route a new lead once: 'routed', 'unroutable', 'needs_review', or 'skipped' when not new.

    Commits: the lead's status, its Assignments, LeadEvents and emails in one transaction.
    """
    lead = lock_lead(lead_id)
    if lead is None or lead.status != LeadStatus.NEW:
        db.session.rollback()
        log.info("route_lead %s: skipped (%s)", lead_id, "missing" if lead is None else lead.status)
        return SKIPPED
    if lead.treatment.requires_review:
        lead.change_status(
            LeadStatus.NEEDS_REVIEW,
            actor_type="system",
            note=Note("investigational"),
            reason=Note("investigational_reason"),
        )
        outcome = LeadStatus.NEEDS_REVIEW.value
    else:
        outcome = _route(lead, actor_type="system")
    db.session.commit()
    log.info("route_lead %s: %s", lead_id, outcome)
    return outcome


def approve_routing(lead_id: int, user_id: int) -> str:
    """A coordinator approves a needs_review lead: route it now. 'skipped' when not waiting for review."""
    lead = lock_lead(lead_id)
    if lead is None:
        db.session.rollback()
        raise RoutingError(gettext("That lead does not exist."))
    if lead.status != LeadStatus.NEEDS_REVIEW:
        db.session.rollback()
        return SKIPPED
    user = db.session.get(User, user_id)
    if user is None:
        db.session.rollback()
        raise RoutingError(gettext("Only a known staff member can approve routing."))
    lead.add_event(
        "routing_approved",
        actor_type="staff",
        actor_user_id=user.id,
        note=Note("routing_approved", email=user.email),
    )
    outcome = _route(lead, actor_type="staff", actor_user_id=user.id)
    db.session.commit()
    log.info("approve_routing %s by user %s: %s", lead_id, user_id, outcome)
    return outcome


def reroute_lead(
    lead_id: int,
    *,
    actor_type: str,
    actor_user_id: int | None = None,
    reason: str | Note,
    limit: int | None = None,
) -> list[Assignment]:
    """Assign the next-best providers not yet tried for the lead, and commit. `reason` is a
    coordinator's words, or the system's (a `Note`).

    By default enough to bring the open assignments back to ROUTING_TOP_N (at least one).
    When no provider is left the lead becomes unroutable with the reason. Commits whatever
    the caller's transaction holds, so an expiry and its replacement land together.
    """
    lead = lock_lead(lead_id)
    if lead is None:
        db.session.rollback()
        raise RoutingError(gettext("That lead does not exist."))
    if lead.status not in REROUTABLE:
        db.session.rollback()
        raise NotReroutable(lead.status)
    if limit is None:
        open_count = sum(1 for a in lead.assignments if a.status in ENGAGED)
        limit = max(current_app.config["ROUTING_TOP_N"] - open_count, 1)
    elif limit < 1:
        db.session.rollback()
        raise RoutingError(gettext("Ask for at least one provider."))
    blocked = sharing_refusal(lead)
    if blocked:
        assignments, why = [], notes.fixed(blocked)
    else:
        assignments, why = _assign_next(lead, limit)
    names = ", ".join(a.provider.name for a in assignments)
    still_open = any(a.status in ENGAGED for a in lead.assignments)
    lead.add_event(
        "rerouted",
        actor_type=actor_type,
        actor_user_id=actor_user_id,
        note=Note("rerouted", reason=reason, names=names)
        if assignments
        else Note("rerouted_none_left", reason=reason, why=why),
    )
    if assignments and lead.status == LeadStatus.UNROUTABLE:
        lead.change_status(
            LeadStatus.ROUTED,
            actor_type=actor_type,
            actor_user_id=actor_user_id,
            note=Note("sent_to", names=names),
        )
    elif not assignments and lead.status == LeadStatus.ROUTED and not still_open:
        # Unroutable only when nobody is left: other providers may still be considering it.
        lead.change_status(
            LeadStatus.UNROUTABLE, actor_type=actor_type, actor_user_id=actor_user_id, reason=why
        )
    elif not assignments and lead.status == LeadStatus.UNROUTABLE:
        lead.status_reason = why.stored
    # A lead a provider has accepted (contacted) keeps its status; the event tells the story.
    _notify(assignments)
    db.session.commit()
    log.info("reroute_lead %s: %d new assignment(s)", lead_id, len(assignments))
    return assignments


def stop_sharing(lead: Lead, ending: AssignmentStatus, reason: Note) -> tuple[int, int]:
    """End the lead's assignments still waiting for an answer with `ending` (never counted against
    a provider) and cancel its unsent provider emails; how many of each. In the caller's transaction.
    An accepted assignment stays as it is (a standing choice is ended by `quotes.service.end_choice`)."""
    waiting = [source for source in assignment_sources(ending) if source in AWAITING_ANSWER]
    ended = db.session.execute(
        sa.update(Assignment)
        .where(Assignment.lead_id == lead.id, Assignment.status.in_(waiting))
        .values(status=ending.value)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    return ended, cancel_provider_emails(lead.id, reason)


def stop_sharing_if_closed(lead: Lead) -> None:
    """A lead moved where it may no longer be shared (closed, spam, a duplicate) is no longer
    offered: providers still waiting are released as `closed`, never counted against them."""
    refusal = sharing_refusal(lead)
    if refusal:
        ended, cancelled = stop_sharing(lead, AssignmentStatus.CLOSED, notes.fixed(refusal))
        if ended or cancelled:
            lead.add_event(
                "sharing_stopped",
                actor_type="system",
                note=Note("sharing_stopped", ended=ended, cancelled=cancelled),
            )


def route_waiting_leads(older_than: timedelta, batch: int = 100, most: int = 10_000) -> int:
    """Route leads still `new` after `older_than` (their task was lost), a batch at a time until
    none is left (at most `most` per run, so a run always ends); return how many were tried."""
    cutoff, after, tried = utcnow() - older_than, 0, 0
    while tried < most:
        ids = db.session.scalars(
            sa.select(Lead.id)
            .where(Lead.status == LeadStatus.NEW, Lead.created_at <= cutoff, Lead.id > after)
            .order_by(Lead.id)
            .limit(min(batch, most - tried))
        ).all()
        db.session.rollback()
        if not ids:
            break
        for lead_id in ids:
            route_lead(lead_id)
        after, tried = ids[-1], tried + len(ids)
    return tried


def lock_as_routing(lead: Lead, provider_id: int) -> None:
    """Take routing's locks in routing's order before writing a provider row outside a routing:
    the lead, then every provider offering its treatment and `provider_id` (which may no longer
    offer it), all in id order, as a routing locks its candidates. An expiry or a decline that
    then updates the provider's statistics and re-routes never waits on a routing that waits on it."""
    lock_lead(lead.id)
    db.session.execute(
        sa.select(Provider.id)
        .where(sa.or_(Provider.id.in_(candidates.offering(lead.treatment_id)), Provider.id == provider_id))
        .order_by(Provider.id)
        .with_for_update(key_share=True)
    ).all()


def lock_lead(lead_id: int) -> Lead | None:
    """The lead, locked until the transaction ends. Every path that changes a lead's assignments
    locks the lead first (routing, answers, expiries, choosing, withdrawing, closing), so two of
    them never wait on each other's rows in opposite orders."""
    # PostgreSQL: a second delivery waits here, then sees the new status. SQLite: BEGIN IMMEDIATE
    # already made this transaction the only writer.
    return db.session.execute(
        sa.select(Lead)
        .where(Lead.id == lead_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _route(lead: Lead, *, actor_type: str, actor_user_id: int | None = None) -> str:
    """Assign the top providers and move the lead to routed, or to unroutable with the reason."""
    blocked = sharing_refusal(lead)
    if blocked:
        assignments, why = [], notes.fixed(blocked)
    else:
        assignments, why = _assign_next(lead, current_app.config["ROUTING_TOP_N"])
    if assignments:
        names = ", ".join(a.provider.name for a in assignments)
        lead.change_status(
            LeadStatus.ROUTED,
            actor_type=actor_type,
            actor_user_id=actor_user_id,
            note=Note("sent_to", names=names),
        )
        _notify(assignments)
        return LeadStatus.ROUTED.value
    lead.change_status(
        LeadStatus.UNROUTABLE,
        actor_type=actor_type,
        actor_user_id=actor_user_id,
        note=why,
        reason=why,
    )
    return LeadStatus.UNROUTABLE.value


def _assign_next(lead: Lead, limit: int) -> tuple[list[Assignment], Note | None]:
    """Lock the candidates, rank them, add Assignments and their events; return them and, when
    there are none, why (`notes.no_provider`). The
    caller records the lead's outcome, then `_notify`s the providers."""
    now = utcnow()
    providers = candidates.lock_candidates(lead.treatment_id)
    # Counted after the locks: what a concurrent routing committed is already visible.
    profile = candidates.lead_profile(lead)
    result = engine.rank_providers(
        profile, candidates.provider_profiles(providers, now), now=now, top_n=limit
    )
    by_id = {p.id: p for p in providers}
    next_rank = max((a.rank for a in lead.assignments), default=0) + 1
    assignments = []
    for offset, match in enumerate(result.matches):
        provider = by_id[match.provider_id]
        assignment = Assignment(
            lead=lead,
            provider=provider,
            rank=next_rank + offset,
            score=match.score,
            score_breakdown=match.breakdown(),
            status=AssignmentStatus.NOTIFIED.value,
            created_at=now,
        )
        provider.last_assigned_at = now
        db.session.add(assignment)
        lead.add_event(
            "provider_assigned",
            actor_type="system",
            note=Note(
                "provider_assigned", provider=provider.name, rank=assignment.rank, score=float(match.score)
            ),
        )
        assignments.append(assignment)
    return assignments, None if assignments else notes.no_provider(result)


def _notify(assignments: list[Assignment]) -> None:
    """Write what the routing made in one flush (each link names its assignment's id), then queue
    each provider's notification (written without the ORM: nothing is left for the commit)."""
    if not assignments:
        return
    db.session.flush()
    for assignment in assignments:
        queue_provider_emails(assignment, "notification")
