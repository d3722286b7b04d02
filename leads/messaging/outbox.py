"""Transactional outbox: a task is written in the same transaction as its data and
published only after that transaction commits."""

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from leads.extensions import db
from leads.models import OutboxMessage
from leads.timeutil import utcnow

log = logging.getLogger(__name__)

# Task names are the contract between the web side (which writes them) and workers/.
ROUTE_LEAD = "workers.route_lead"
SEND_EMAIL = "workers.send_email"
# Beat: route leads whose route_lead task was lost (still `new` after ROUTING_RETRY_AFTER_SECONDS).
ROUTE_WAITING_LEADS = "workers.route_waiting_leads"
# Beat's other periodic tasks.
SWEEP_OUTBOX = "workers.sweep_outbox"
DISPATCH_DUE_EMAILS = "workers.dispatch_due_emails"
ESCALATE_ASSIGNMENTS = "workers.escalate_assignments"
APPLY_RETENTION = "workers.apply_retention"

_PENDING_KEY = "outbox_pending_ids"
# A sweep's claim on rows it has not published after this long belongs to a sweep that died.
SWEEP_CLAIM_SECONDS = 60


def add_task(task_name: str, **payload) -> OutboxMessage:
    """Add a task to the caller's transaction; it is published after commit."""
    message = OutboxMessage(task_name=task_name, payload=payload)
    db.session.add(message)
    return message


def publish(message_ids: list[int]) -> int:
    """Publish the given undispatched messages; return how many reached the broker.

    Never raises: a broker outage is recorded on the row and left to the sweep, and so is a
    database that cannot record the outcome (locked, restarting): the sweep publishes again, and
    every task is idempotent.
    """
    if not message_ids:
        return 0
    try:
        return _publish(message_ids)
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("outbox: could not record publishing (%s); the sweep takes over", type(exc).__name__)
        return 0


def _publish(message_ids: list[int]) -> int:
    celery_app = current_app.extensions["celery"]
    rows = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.task_name, OutboxMessage.payload).where(
            OutboxMessage.id.in_(message_ids), OutboxMessage.dispatched_at.is_(None)
        )
    ).all()
    db.session.commit()  # hold no transaction while waiting on the broker
    published = 0
    for message_id, task_name, payload in rows:
        try:
            celery_app.send_task(task_name, kwargs=payload, retry=False)
        except Exception as exc:  # any broker failure: the sweep retries later
            log.warning("outbox message %s not published: %s", message_id, type(exc).__name__)
            _record(message_id, error=f"{type(exc).__name__}: {exc}"[:1000])
            # One failure means the broker is down; do not wait on it for every row.
            break
        _record(message_id, error=None)
        published += 1
    return published


def _record(message_id: int, *, error: str | None) -> None:
    values = {"attempts": OutboxMessage.attempts + 1, "last_error": error}
    if error is None:
        values["dispatched_at"] = utcnow()
    db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))
    db.session.commit()


def publish_stale(limit: int = 500) -> int:
    """Publish what the fast path could not (broker down, process killed after commit).

    The rows are claimed first, so two sweeps (two beats, or one sweep overlapping the next)
    never publish the same row twice.
    """
    ids = claim_stale(limit)
    try:
        return publish(ids)
    finally:
        _release(ids)


def claim_stale(limit: int) -> list[int]:
    """Claim up to `limit` undispatched rows past the grace period that no live sweep holds.

    One statement for both databases: PostgreSQL skips rows a concurrent sweep has locked
    (`FOR UPDATE SKIP LOCKED`) and re-checks the claim of rows it waited on; SQLite runs one
    writer at a time, so the conditional UPDATE is the claim.
    """
    now = utcnow()
    grace = timedelta(seconds=current_app.config["OUTBOX_GRACE_SECONDS"])
    abandoned = now - timedelta(seconds=SWEEP_CLAIM_SECONDS)
    candidates = (
        sa.select(OutboxMessage.id)
        .where(
            OutboxMessage.dispatched_at.is_(None),
            OutboxMessage.created_at <= now - grace,
            sa.or_(OutboxMessage.sweep_claimed_at.is_(None), OutboxMessage.sweep_claimed_at <= abandoned),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = db.session.scalars(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates))
        .values(sweep_claimed_at=now)
        .returning(OutboxMessage.id)
    ).all()
    db.session.commit()
    return sorted(ids)


def _release(ids: list[int]) -> None:
    """Give back the claim on rows the sweep could not publish, for the next sweep."""
    if not ids:
        return
    try:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.dispatched_at.is_(None))
            .values(sweep_claimed_at=None)
        )
        db.session.commit()
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()  # the claim lapses after SWEEP_CLAIM_SECONDS instead
        log.warning("outbox: could not release the sweep's claim (%s)", type(exc).__name__)


def _remember_new_messages(session: Session, flush_context) -> None:
    ids = [obj.id for obj in session.new if isinstance(obj, OutboxMessage)]
    if ids:
        session.info.setdefault(_PENDING_KEY, []).extend(ids)


def _publish_after_commit(session: Session) -> None:
    ids = session.info.pop(_PENDING_KEY, None)
    if ids and has_app_context():
        # The committed session cannot run SQL here; publish from a fresh one.
        with current_app.app_context():
            try:
                publish(ids)
            finally:
                db.session.remove()


def _forget_on_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING_KEY, None)


def register_outbox_hooks() -> None:
    """Publish new outbox messages right after the transaction that wrote them commits."""
    if not sa.event.contains(Session, "after_flush", _remember_new_messages):
        sa.event.listen(Session, "after_flush", _remember_new_messages)
        sa.event.listen(Session, "after_commit", _publish_after_commit)
        sa.event.listen(Session, "after_soft_rollback", _forget_on_rollback)
