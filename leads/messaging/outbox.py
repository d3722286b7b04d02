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
REFRESH_STATS_SUMMARIES = "workers.refresh_stats_summaries"
# Broker queues: routing (and beat's housekeeping) apart from the email backlog.
ROUTING_QUEUE = "routing"
EMAIL_QUEUE = "email"
EMAIL_TASKS = frozenset({SEND_EMAIL, DISPATCH_DUE_EMAILS})

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
    return _recorded_or_left_to_sweep(_publish, message_ids)


def _recorded_or_left_to_sweep(publishing, argument) -> int:
    """Run `publishing`; a database that cannot record the outcome leaves the rows to the sweep."""
    try:
        return publishing(argument)
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("outbox: could not record publishing (%s); the sweep takes over", type(exc).__name__)
        return 0


def _publish(message_ids: list[int]) -> int:
    rows = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.task_name, OutboxMessage.payload).where(
            OutboxMessage.id.in_(message_ids), OutboxMessage.dispatched_at.is_(None)
        )
    ).all()
    db.session.commit()  # hold no transaction while waiting on the broker
    return _send_and_record([tuple(row) for row in rows])


def _send_and_record(rows: list[tuple[int, str, dict]]) -> int:
    """Send (id, task name, payload) rows to the broker, then record them in one transaction."""
    celery_app = current_app.extensions["celery"]
    sent: list[int] = []
    failure: tuple[int, str] | None = None
    for message_id, task_name, payload in rows:
        try:
            celery_app.send_task(task_name, kwargs=payload, retry=False)
        except Exception as exc:  # any broker failure: the sweep retries later
            log.warning("outbox message %s not published: %s", message_id, type(exc).__name__)
            failure = (message_id, f"{type(exc).__name__}: {exc}"[:1000])
            # One failure means the broker is down; do not wait on it for every row.
            break
        sent.append(message_id)
    if sent:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id.in_(sent))
            .values(dispatched_at=utcnow(), attempts=OutboxMessage.attempts + 1, last_error=None)
        )
    if failure:
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == failure[0])
            .values(attempts=OutboxMessage.attempts + 1, last_error=failure[1])
        )
    db.session.commit()
    return len(sent)


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
    # What to publish is known here, so the fast path needs no query after the commit.
    rows = [(obj.id, obj.task_name, obj.payload) for obj in session.new if isinstance(obj, OutboxMessage)]
    if rows:
        session.info.setdefault(_PENDING_KEY, []).extend(rows)


def _publish_after_commit(session: Session) -> None:
    rows = session.info.pop(_PENDING_KEY, None)
    if rows and has_app_context():
        # The committed session cannot run SQL here; publish from a fresh one.
        with current_app.app_context():
            try:
                _recorded_or_left_to_sweep(_send_and_record, rows)
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
