"""What an operator watches: the broker's queues, the work waiting in the database, and beat.
Each figure has a threshold past which the operations page shows it red."""

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
import sqlalchemy as sa
from flask import current_app

from leads.extensions import broker_redis, db
from leads.i18n import duration
from leads.messaging import outbox
from leads.models import EmailMessage, EmailStatus, Lead, OutboxMessage
from leads.timeutil import utcnow
from leads.workflow import LeadStatus

log = logging.getLogger(__name__)

# Where the outbox sweep notes each run: beat sends it every OUTBOX_SWEEP_SECONDS.
BEAT_RUN_KEY = "leads:last_beat_run"
# Thresholds: past these a figure turns red.
QUEUE_RED = 500  # tasks waiting in one queue
UNROUTED_RED = timedelta(minutes=10)  # past ROUTING_RETRY_AFTER_SECONDS plus a sweep or two
OUTBOX_RED = timedelta(minutes=2)  # the sweep republishes within OUTBOX_GRACE + OUTBOX_SWEEP
OVERDUE_EMAIL_RED = timedelta(minutes=10)  # an email due this long ago and still queued
FAILED_WINDOW = timedelta(hours=24)
SAMPLE = 1000  # queued tasks read per queue to count them by task


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    red: bool
    threshold: str


@dataclass
class Operations:
    figures: list[Figure]
    queues: list[tuple[str, int, list[tuple[str, int]]]] = field(default_factory=list)
    broker_error: str | None = None


def record_beat_run() -> None:
    """Note that beat's sweep ran (the page shows how long ago); never fails the sweep."""
    client = broker_redis(timeout=2)
    try:
        client.set(BEAT_RUN_KEY, utcnow().isoformat())
    except redis.RedisError as exc:
        log.warning("could not record the beat run (%s)", type(exc).__name__)
    finally:
        client.close()


def collect(now: datetime | None = None) -> Operations:
    now = now or utcnow()
    report = Operations(figures=_database_figures(now))
    client = broker_redis(timeout=2)
    try:
        report.queues = _queues(client)
        report.figures.append(_beat_figure(client.get(BEAT_RUN_KEY), now))
    except redis.RedisError as exc:
        report.broker_error = f"Redis unreachable: {type(exc).__name__}"
        report.figures.append(Figure("Last beat run", "unknown (Redis unreachable)", True, "Redis reachable"))
    finally:
        client.close()
    for name, depth, _ in report.queues:
        report.figures.append(
            Figure(f"Tasks waiting in queue '{name}'", f"{depth:,}", depth > QUEUE_RED, f"over {QUEUE_RED}")
        )
    return report


def _database_figures(now: datetime) -> list[Figure]:
    oldest_new = db.session.scalar(
        sa.select(sa.func.min(Lead.created_at)).where(Lead.status == LeadStatus.NEW)
    )
    unpublished, oldest_unpublished = db.session.execute(
        sa.select(sa.func.count(OutboxMessage.id), sa.func.min(OutboxMessage.created_at)).where(
            OutboxMessage.dispatched_at.is_(None)
        )
    ).one()
    waiting = db.session.scalar(
        sa.select(sa.func.count(EmailMessage.id)).where(
            EmailMessage.status.in_([EmailStatus.QUEUED, EmailStatus.SENDING])
        )
    )
    overdue = db.session.scalar(
        sa.select(sa.func.count(EmailMessage.id)).where(
            EmailMessage.status == EmailStatus.QUEUED, EmailMessage.next_attempt_at <= now - OVERDUE_EMAIL_RED
        )
    )
    retrying = db.session.scalar(
        sa.select(sa.func.count(EmailMessage.id)).where(
            EmailMessage.status == EmailStatus.QUEUED, EmailMessage.attempts > 0
        )
    )
    failed = db.session.scalar(
        sa.select(sa.func.count(EmailMessage.id)).where(
            EmailMessage.status == EmailStatus.FAILED, EmailMessage.created_at >= now - FAILED_WINDOW
        )
    )
    db.session.rollback()
    unrouted_age = _age(oldest_new, now)
    outbox_age = _age(oldest_unpublished, now)
    return [
        Figure(
            "Oldest lead not yet routed",
            _describe_age(unrouted_age) if unrouted_age is not None else "none",
            unrouted_age is not None and unrouted_age > UNROUTED_RED,
            f"older than {_describe_age(UNROUTED_RED)}",
        ),
        Figure(
            "Outbox rows not yet published",
            f"{unpublished:,}" + (f" (oldest {_describe_age(outbox_age)})" if outbox_age is not None else ""),
            outbox_age is not None and outbox_age > OUTBOX_RED,
            f"one older than {_describe_age(OUTBOX_RED)}",
        ),
        Figure(
            "Emails waiting to be sent",
            f"{waiting:,} ({overdue:,} overdue)",
            overdue > 0,
            f"one due more than {_describe_age(OVERDUE_EMAIL_RED)} ago",
        ),
        Figure("Emails failing and being retried", f"{retrying:,}", retrying > 0, "any"),
        Figure("Emails failed in the last 24 hours", f"{failed:,}", failed > 0, "any"),
    ]


def _beat_figure(raw: bytes | None, now: datetime) -> Figure:
    silent_after = timedelta(seconds=max(3 * current_app.config["OUTBOX_SWEEP_SECONDS"], 60))
    threshold = f"no run for {_describe_age(silent_after)}"
    if raw is None:
        return Figure("Last beat run", "never recorded", True, threshold)
    age = now - datetime.fromisoformat(raw.decode())
    return Figure("Last beat run", f"{_describe_age(age)} ago", age > silent_after, threshold)


# kombu's Redis transport keeps the tasks of a lower priority in a list of their own, named so.
PRIORITY_SEPARATOR = "\x06\x16"


def _queues(client: redis.Redis) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """Each Celery queue (ours always, any other list in Redis too) with its lower-priority lists,
    its depth and, from the first SAMPLE tasks of each list, their names."""
    depths: Counter = Counter({outbox.ROUTING_QUEUE: 0, outbox.EMAIL_QUEUE: 0})
    tasks: dict[str, Counter] = {name: Counter() for name in depths}
    for raw in client.scan_iter(_type="list", count=1000):
        list_name = raw.decode(errors="replace")
        if list_name.startswith(("unacked", "_kombu")):
            continue
        name = list_name.partition(PRIORITY_SEPARATOR)[0]
        by_task = tasks.setdefault(name, Counter())
        for task in client.lrange(raw, 0, SAMPLE - 1):
            try:
                by_task[json.loads(task)["headers"]["task"]] += 1
            except (ValueError, KeyError, TypeError):
                by_task["(unreadable)"] += 1
        depths[name] += client.llen(raw)
    return [(name, depths[name], tasks[name].most_common()) for name in sorted(tasks)]


def _age(moment: datetime | None, now: datetime) -> timedelta | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive UTC from aggregates
        moment = moment.replace(tzinfo=now.tzinfo)
    return now - moment


def _describe_age(age: timedelta) -> str:
    """In English, as every figure of this page is (README, "The coordinator dashboard")."""
    return duration(age.total_seconds(), "en")
