"""Transactional outbox: a task is written in the same transaction as its data and
published only after that transaction commits."""

import atexit
import logging
import os
import threading
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context, has_request_context
from sqlalchemy.orm import Session

from leads.extensions import commits_a_power_loss_may_undo, db, refuse_if_read_only
from leads.models import OutboxMessage
from leads.timeutil import utcnow

log = logging.getLogger(__name__)

# Task names are the contract between the web side (which writes them) and workers/.
ROUTE_LEAD = "workers.route_lead"
# The emails one transaction queues go out as one task: provider emails first, the rest after.
SEND_PROVIDER_EMAILS = "workers.send_provider_emails"
SEND_EMAILS = "workers.send_emails"
# One email per task: what earlier releases published, still consumed after an upgrade.
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
EMAIL_TASKS = frozenset({SEND_PROVIDER_EMAILS, SEND_EMAILS, SEND_EMAIL, DISPATCH_DUE_EMAILS})
# Within a queue the broker hands out priority 0 first (kombu's Redis transport keeps a list per
# priority step and asks for them in order, across every queue a worker consumes): a patient's
# confirmation or a coordinator's notice never holds up a provider's notification or a routing.
LATER_PRIORITY = 9
LATER_TASKS = frozenset({SEND_EMAILS})

_PENDING_KEY = "outbox_pending_ids"
_TASKS_KEY = "outbox_tasks"
_PUBLISHED_LOG_KEY = "outbox_published_log"
_TASKS_LOG_KEY = "outbox_tasks_logged"
_BATCHES_KEY = "outbox_batches"
# How much of a task's arguments the broker message shows (Celery's own default).
REPR_MAX = 1024
# A sweep's claim on rows it has not published after this long belongs to a sweep that died.
SWEEP_CLAIM_SECONDS = 60
# A sweep starts no publish that could end within this long of its claim lapsing: room for the
# socket's own wait beyond BROKER_PUBLISH_TIMEOUT, for recording what it published, and for
# another sweeper's clock running ahead of its own.
SWEEP_STOP_MARGIN_SECONDS = 10


def add_task(task_name: str, **payload) -> None:
    """Add a task to the caller's transaction: written when it commits, published after."""
    _join_the_transaction()
    db.session.info.setdefault(_TASKS_KEY, []).append((task_name, payload))


def add_to_batch(task_name: str, key: str, item) -> None:
    """Add `item` to the one `task_name` task of the caller's transaction (payload {key: [items]}),
    written when the transaction commits; a rollback forgets it with the rest."""
    _join_the_transaction()
    db.session.info.setdefault(_BATCHES_KEY, {}).setdefault((task_name, key), []).append(item)


def _join_the_transaction() -> None:
    """Refuse a read-only request; else begin the transaction if need be, so a rollback forgets."""
    refuse_if_read_only()
    db.session.connection()


# What the publish needs comes back from the INSERT itself, whatever order the rows return in.
_INSERT = OutboxMessage.__table__.insert().returning(
    OutboxMessage.id, OutboxMessage.task_name, OutboxMessage.payload
)


def _write_at_commit(session: Session) -> None:
    """At the commit: every task of the transaction written in one statement (one round trip),
    on its connection, and remembered for publishing after it (a rollback forgets them)."""
    tasks = [{"task_name": name, "payload": payload} for name, payload in session.info.pop(_TASKS_KEY, [])]
    for (name, key), items in session.info.pop(_BATCHES_KEY, {}).items():
        tasks.append({"task_name": name, "payload": {key: items}})
    if tasks:
        written = session.connection().execute(_INSERT, tasks).all()
        session.info.setdefault(_PENDING_KEY, []).extend(sorted(tuple(row) for row in written))


def publish(message_ids: list[int], stop_at: datetime | None = None) -> int:
    """Publish the given undispatched messages; return how many reached the broker (those still
    unsent when `stop_at` comes are left unsent).

    Never raises: a broker outage is recorded on the row and left to the sweep, and so is a
    database that cannot record the outcome (locked, restarting): the sweep publishes again, and
    every task is idempotent.
    """
    if not message_ids:
        return 0
    return _recorded_or_left_to_sweep(_publish, (message_ids, stop_at))


def _recorded_or_left_to_sweep(publishing, argument) -> int:
    """Run `publishing`; a database that cannot record the outcome leaves the rows to the sweep."""
    try:
        return publishing(argument)
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("outbox: could not record publishing (%s); the sweep takes over", type(exc).__name__)
        return 0


def _publish(ids_and_stop: tuple[list[int], datetime | None]) -> int:
    message_ids, stop_at = ids_and_stop
    rows = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.task_name, OutboxMessage.payload).where(
            OutboxMessage.id.in_(message_ids), OutboxMessage.dispatched_at.is_(None)
        )
    ).all()
    db.session.commit()  # hold no transaction while waiting on the broker
    return _send_and_record([tuple(row) for row in rows], stop_at)


def _send_and_record(rows: list[tuple[int, str, dict]], stop_at: datetime | None = None) -> int:
    """Send (id, task name, payload) rows to the broker, then record them in one transaction."""
    sent, failure = _send(rows, stop_at)
    # Bookkeeping a power loss may undo: the sweep publishes those rows again (every task is idempotent).
    with commits_a_power_loss_may_undo():
        if sent:
            db.session.execute(_mark_published(sent))
        if failure:
            _record_failure(*failure)
        db.session.commit()
    return len(sent)


def _send(
    rows: list[tuple[int, str, dict]], stop_at: datetime | None = None
) -> tuple[list[int], tuple[int, str] | None]:
    """Send rows to the broker until one fails or `stop_at` comes: (ids sent, (id, error) of the
    one that failed)."""
    celery_app = current_app.extensions["celery"]
    sent: list[int] = []
    try:
        # One producer (one pooled connection) for every row; the payloads are ids, so their plain
        # repr stands in for Celery's safe one, which costs more than the rest of a publish.
        with celery_app.producer_or_acquire() as producer:
            for message_id, task_name, payload in rows:
                if stop_at is not None and utcnow() >= stop_at:
                    log.info(
                        "outbox: sweep's claim running out; %d rows left to the next", len(rows) - len(sent)
                    )
                    break
                celery_app.send_task(
                    task_name, kwargs=payload, retry=False, producer=producer,
                    argsrepr="()", kwargsrepr=repr(payload)[:REPR_MAX],
                )  # fmt: skip
                sent.append(message_id)
    except Exception as exc:  # any broker failure: the sweep retries later
        if len(sent) == len(rows):  # every row went; only handing the connection back failed
            log.warning("outbox: broker connection not released cleanly: %s", type(exc).__name__)
            return sent, None
        failed = rows[len(sent)][0]
        log.warning("outbox message %s not published: %s", failed, type(exc).__name__)
        # One failure means the broker is down; do not wait on it for every row.
        return sent, (failed, f"{type(exc).__name__}: {exc}"[:1000])
    return sent, None


def _mark_published(ids: list[int]):
    # No session object stands for these rows: nothing to synchronise (the ORM would compile the
    # condition to evaluate it in Python first).
    return (
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(dispatched_at=utcnow(), attempts=OutboxMessage.attempts + 1, last_error=None)
        .execution_options(synchronize_session=False)
    )


def _commit_failure(failure: tuple[int, str]) -> int:
    with commits_a_power_loss_may_undo():
        _record_failure(*failure)
        db.session.commit()
    return 0


def _record_failure(message_id: int, error: str) -> None:
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(attempts=OutboxMessage.attempts + 1, last_error=error)
    )


class PublishedLog:
    """Rows a web process or a worker process published, marked so in one UPDATE per interval
    instead of one write transaction per request or task (on SQLite, one less turn of the write
    lock per form and per routing).

    A row published but not yet marked is at worst published again by the sweep once it is past
    OUTBOX_GRACE_SECONDS (every task is idempotent), the same as a process killed between its
    commit and its publish; so the interval must stay well under the grace period. The marks are
    written by a thread of each process, and at its exit (a worker's pool process, which leaves
    without running exit handlers, flushes from the worker's shutdown signal instead).
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._ids: list[int] = []
        self._lock = threading.Lock()
        self._owner_pid: int | None = None

    @classmethod
    def of(cls, app: Flask) -> "PublishedLog":
        return app.extensions.setdefault(_PUBLISHED_LOG_KEY, cls(app))

    def add(self, ids: list[int]) -> None:
        with self._lock:
            self._ids.extend(ids)
            if self._owner_pid != os.getpid():  # first use in this process (gunicorn forks)
                self._owner_pid = os.getpid()
                threading.Thread(target=self._run, name="outbox-marks", daemon=True).start()
                atexit.register(self.flush)

    def pending(self) -> int:
        with self._lock:
            return len(self._ids)

    def flush(self) -> int:
        """Mark what was published since the last flush; on a database error keep it for the next."""
        with self._lock:
            ids, self._ids = self._ids, []
        if not ids:
            return 0
        with self.app.app_context():
            try:
                with commits_a_power_loss_may_undo():
                    db.session.execute(_mark_published(ids))
                    db.session.commit()
            except sa.exc.SQLAlchemyError as exc:
                db.session.rollback()
                log.warning("outbox: could not mark %d published rows (%s)", len(ids), type(exc).__name__)
                with self._lock:
                    self._ids[:0] = ids
                return 0
            finally:
                db.session.remove()
        return len(ids)

    def _run(self) -> None:
        while True:
            time.sleep(self.app.config["OUTBOX_RECORD_INTERVAL_SECONDS"])
            self.flush()


def publish_stale(limit: int = 500) -> int:
    """Publish what the fast path could not (broker down, process killed after commit).

    The rows are claimed first, so two sweeps (two beats, or one sweep overlapping the next)
    never publish the same row twice; a publish starts only while it can end before the claim
    lapses, and the rows left then are given back to the next sweep.
    """
    # Read before the claim is stamped, so the claim holds at least this long.
    publish_at_most = (
        SWEEP_CLAIM_SECONDS - SWEEP_STOP_MARGIN_SECONDS - current_app.config["BROKER_PUBLISH_TIMEOUT"]
    )
    stop_at = utcnow() + timedelta(seconds=publish_at_most)
    ids = claim_stale(limit)
    try:
        return publish(ids, stop_at)
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


def log_what_tasks_publish(app: Flask) -> None:
    """For a worker's process: what its tasks publish after their commits is marked by the
    process's PublishedLog, as in a web request (the worker calls this as each process starts)."""
    app.extensions[_TASKS_LOG_KEY] = True


def _publish_after_commit(session: Session) -> None:
    rows = session.info.pop(_PENDING_KEY, None)
    if rows and has_app_context():
        # The committed session cannot run SQL here; publish from a fresh one.
        app = current_app._get_current_object()
        logged = has_request_context() or app.extensions.get(_TASKS_LOG_KEY, False)
        if logged and app.config["OUTBOX_RECORD_INTERVAL_SECONDS"] > 0:
            _publish_and_log(app, rows)
            return
        with app.app_context():
            try:
                _recorded_or_left_to_sweep(_send_and_record, rows)
            finally:
                db.session.remove()


def _publish_and_log(app: Flask, rows: list[tuple[int, str, dict]]) -> None:
    """The fast path of a request or a worker's task: publish, leave the marks to the process's
    PublishedLog; only a broker failure is written at once (it is rare, and the sweep needs its
    error)."""
    sent, failure = _send(rows)
    if sent:
        PublishedLog.of(app).add(sent)
    if failure:
        with app.app_context():
            try:
                _recorded_or_left_to_sweep(_commit_failure, failure)
            finally:
                db.session.remove()


def _forget_on_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_TASKS_KEY, None)
    session.info.pop(_BATCHES_KEY, None)


def register_outbox_hooks() -> None:
    """Publish new outbox messages right after the transaction that wrote them commits."""
    if not sa.event.contains(Session, "before_commit", _write_at_commit):
        sa.event.listen(Session, "before_commit", _write_at_commit)
        sa.event.listen(Session, "after_commit", _publish_after_commit)
        sa.event.listen(Session, "after_soft_rollback", _forget_on_rollback)
