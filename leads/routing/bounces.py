"""A dead address re-routes: when every notification address of a provider refuses the email
about a lead for good (5xx), that provider cannot see the lead, so its assignment expires at once
and the next-best provider is asked. Each refusing address is flagged to admins, and a provider
whose addresses all bounce on PROVIDER_BOUNCES_BEFORE_PAUSE leads is paused, with an email to
the coordinators."""

import logging

import sqlalchemy as sa
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app

from leads.directory.service import is_paused, pause_provider
from leads.extensions import db
from leads.messaging.email import HARD_BOUNCED, deliver_emails, email_coordinators, hard_bounced
from leads.messaging.provider_keys import KEY_PREFIXES, notification_key_prefix, notified_assignment_id
from leads.models import AddressBounce, Assignment, AssignmentStatus, EmailMessage, EmailStatus, Provider
from leads.notes import Note, verbatim
from leads.routing.responses import needs_replacement, refresh_provider_stats
from leads.routing.service import lock_as_routing, reroute_lead
from leads.timeutil import utcnow
from leads.workflow import assignment_sources

log = logging.getLogger(__name__)


def deliver_and_handle_bounces(email_ids: list[int], interrupted_at: float | None = None) -> dict[int, str]:
    """What a send task does: deliver the emails (`deliver_emails`, which claims none too close to
    `interrupted_at`, the task's soft time limit), then handle the bounces among them; each
    email's status afterwards."""
    statuses = deliver_emails(email_ids, interrupted_at)
    # A retry of the task finds the emails its first run failed "skipped", and handles them then.
    if any(status in (EmailStatus.FAILED, "skipped") for status in statuses.values()):
        handle_bounces(email_ids)
    return statuses


def handle_bounces(email_ids: list[int]) -> dict[int, str]:
    """Handle each hard bounce among `email_ids` not handled yet (`handle_hard_bounce`): the ones
    the send that just ran recorded, and the ones a send recorded before its task failed (a
    database error, a worker killed), which its retry or redelivery finds already failed. Each on
    its own (`_handle_each`); a database error is raised once the others are handled, so that the
    task is retried (what its retries leave, the due-email sweep handles)."""
    pending = db.session.scalars(
        sa.select(EmailMessage.id).where(
            EmailMessage.id.in_(email_ids),
            EmailMessage.status == EmailStatus.FAILED,
            EmailMessage.bounce_handled_at.is_(None),
        )
    ).all()
    db.session.rollback()
    handled, database_errors = _handle_each(pending)
    if database_errors:
        raise database_errors[0]
    return handled


# Bounces the due-email sweep handles per run, at most (those whose handling fails not counted).
LEFT_BATCH = 100


def handle_bounces_left(limit: int = LEFT_BATCH) -> dict[int, str]:
    """Handle the hard bounces of notifications that no send task handled: the task died after
    recording them and was not delivered again (its whole worker killed: the broker keeps the task
    until its visibility timeout, or loses it with its data), or it ran out of retries on database
    errors. The due-email sweep runs this; a send task handling the same bounce meanwhile is
    harmless (`handle_hard_bounce` handles each once).

    Up to `limit` handled, read in id order after the last one tried: one that fails is left to
    the next run and this run goes on past it, so bounces whose handling keeps failing, however
    many, never keep it from those behind them. Each is tried at most once a run."""
    done: dict[int, str] = {}
    after = 0
    while (wanted := limit - sum(status != NOT_HANDLED for status in done.values())) > 0:
        page = db.session.scalars(
            sa.select(EmailMessage.id)
            .where(
                HARD_BOUNCED,
                EmailMessage.bounce_handled_at.is_(None),
                EmailMessage.idempotency_key.startswith(f"{KEY_PREFIXES['notification']}:", autoescape=True),
                EmailMessage.id > after,
            )
            .order_by(EmailMessage.id)
            .limit(wanted)
        ).all()
        db.session.rollback()
        done.update(_handle_each(page)[0])
        if len(page) < wanted:
            break
        after = page[-1]
    return done


# What `handle_bounces` and `handle_bounces_left` say of a bounce whose handling failed.
NOT_HANDLED = "not_handled"


def _handle_each(email_ids: list[int]) -> tuple[dict[int, str], list[Exception]]:
    """Handle each bounce on its own (`handle_hard_bounce`), as retention handles each request: one
    that fails is rolled back, logged by its email's id and left unhandled for the next try, and
    the others go on, so that one bounce whose handling keeps failing never holds up the rest.
    What was done with each (NOT_HANDLED for a failure), and the database errors met."""
    done: dict[int, str] = {}
    database_errors: list[Exception] = []
    for email_id in email_ids:
        try:
            done[email_id] = handle_hard_bounce(email_id)
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: what is left is the sweep's
        except Exception as exc:
            db.session.rollback()
            done[email_id] = NOT_HANDLED
            if isinstance(exc, sa.exc.OperationalError):
                database_errors.append(exc)
            # The kind of error only: its text may quote the address or the server's answer.
            log.error(
                "email %s: its bounce could not be handled (%s); it is tried again later",
                email_id,
                type(exc).__name__,
            )
    failed = sum(1 for status in done.values() if status == NOT_HANDLED)
    if failed:
        log.warning("bounces: %d of %d not handled, left for the next try", failed, len(email_ids))
    return done, database_errors


def handle_hard_bounce(email_id: int) -> str:
    """After an email failed: flag the address, and expire and replace the assignment when every
    address of its provider bounced; once per email. Returns what was done ('ignored', 'flagged',
    'rerouted')."""
    email = db.session.get(EmailMessage, email_id)
    assignment_id = notified_assignment_id(email.idempotency_key) if email is not None else None
    if assignment_id is None or not hard_bounced(email):
        db.session.rollback()
        return "ignored"
    assignment = db.session.get(Assignment, assignment_id)
    # Routing's locks in routing's order: no deadlock with a routing or the re-route below, and
    # one bounce at a time per provider, whose flags and pause are read and written together.
    lock_as_routing(assignment.lead, assignment.provider_id)
    db.session.refresh(email)
    if email.bounce_handled_at is not None:  # by a delivery of the same task that ran meanwhile
        db.session.rollback()
        return "ignored"
    email.bounce_handled_at = utcnow()
    provider = assignment.provider
    _flag(provider.id, email.to_address, email.last_error)
    if not _every_address_bounced(assignment_id) or not _expire(assignment):
        db.session.commit()
        return "flagged"
    lead = assignment.lead
    reason = Note("every_address_refused", provider=provider.name, answer=verbatim(email.last_error[:200]))
    lead.add_event("assignment_expired", actor_type="system", actor_provider_id=provider.id, note=reason)
    refresh_provider_stats(provider.id)
    _pause_after_repeated_bounces(provider, lead, email.last_error)
    if needs_replacement(lead):
        reroute_lead(lead.id, actor_type="system", reason=reason, limit=1)  # commits it all
    else:
        db.session.commit()
    log.info("assignment %s expired: every address of provider %s bounced", assignment_id, provider.id)
    return "rerouted"


def confirm_address(bounce: AddressBounce) -> None:
    """An admin fixed or confirmed the address: the flag goes (in the caller's transaction)."""
    db.session.delete(bounce)


def flags_by_provider() -> dict[int, list[AddressBounce]]:
    """The flagged addresses still in each provider's list, for the directory page."""
    flags: dict[int, list[AddressBounce]] = {}
    rows = db.session.execute(
        sa.select(AddressBounce, Provider.notification_emails)
        .join(Provider, Provider.id == AddressBounce.provider_id)
        .order_by(AddressBounce.address)
    ).all()
    for bounce, addresses in rows:
        if bounce.address in addresses:
            flags.setdefault(bounce.provider_id, []).append(bounce)
    return flags


def _flag(provider_id: int, address: str, answer: str) -> None:
    bounce = db.session.scalar(sa.select(AddressBounce).filter_by(provider_id=provider_id, address=address))
    if bounce is None:
        bounce = AddressBounce(provider_id=provider_id, address=address, bounces=0)
        db.session.add(bounce)
    bounce.answer, bounce.last_at = answer[:1000], utcnow()
    bounce.bounces += 1


def _every_address_bounced(assignment_id: int) -> bool:
    emails = db.session.scalars(
        sa.select(EmailMessage).where(
            EmailMessage.idempotency_key.startswith(notification_key_prefix(assignment_id), autoescape=True)
        )
    ).all()
    return bool(emails) and all(hard_bounced(email) for email in emails)


def _expire(assignment: Assignment) -> bool:
    """Expire the assignment now, once (a guarded update: two bounces may race here)."""
    expired = db.session.execute(
        sa.update(Assignment)
        .where(
            Assignment.id == assignment.id,
            Assignment.status.in_(assignment_sources(AssignmentStatus.EXPIRED)),
        )
        .values(status=AssignmentStatus.EXPIRED.value, expired_at=utcnow())
    ).rowcount
    db.session.refresh(assignment)
    return bool(expired)


def _pause_after_repeated_bounces(provider: Provider, lead, answer: str) -> None:
    """Pause the provider once its addresses have all bounced on enough leads."""
    counts = [
        bounce.bounces
        for bounce in db.session.scalars(sa.select(AddressBounce).filter_by(provider_id=provider.id))
        if bounce.address in provider.notification_emails
    ]
    dead_leads = min(counts) if len(counts) == len(provider.notification_emails) else 0
    if dead_leads < current_app.config["PROVIDER_BOUNCES_BEFORE_PAUSE"] or is_paused(provider):
        return
    pause_provider(provider, None)
    paused = Note("provider_paused", provider=provider.name, count=dead_leads)
    lead.add_event("provider_paused", actor_type="system", actor_provider_id=provider.id, note=paused)
    email_coordinators(
        lead,
        template="coordinator_provider_paused",
        idempotency_key=f"provider-paused:{provider.id}:{lead.id}",
        summary=paused.lazy,  # its count's plural form in the mailbox's language
        note=answer[:300],
    )
