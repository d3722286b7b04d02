"""One sweeper at a time: the outbox sweep claims the rows it publishes, so two beats or
overlapping sweeps never publish the same row twice (PostgreSQL: FOR UPDATE SKIP LOCKED;
SQLite: the conditional UPDATE, one writer at a time)."""

import json
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import outbox
from leads.models import OutboxMessage
from leads.timeutil import utcnow
from tests.helpers import at_once

pytestmark = pytest.mark.pg


def _stale_rows(count: int, **values) -> list[int]:
    """Undispatched rows as a killed web process leaves them (written without the publish hook)."""
    created = utcnow() - timedelta(minutes=1)
    ids = [
        db.session.scalar(
            sa.insert(OutboxMessage)
            .values(task_name="workers.sweep_outbox", payload={}, created_at=created, attempts=0, **values)
            .returning(OutboxMessage.id)
        )
        for _ in range(count)
    ]
    db.session.commit()
    return ids


def _queued(redis_server) -> list[str]:
    client = redis.Redis.from_url(redis_server.url)
    queues = (outbox.ROUTING_QUEUE, outbox.EMAIL_QUEUE)
    queued = [raw for queue in queues for raw in client.lrange(queue, 0, -1)]
    return [json.loads(raw)["headers"]["id"] for raw in queued]


def _flush(redis_server):
    redis.Redis.from_url(redis_server.url).flushdb()


def test_a_sweep_leaves_alone_the_rows_another_sweep_has_claimed(app):
    rows = _stale_rows(5)
    first = outbox.claim_stale(limit=3)
    second = outbox.claim_stale(limit=10)
    assert first == rows[:3]
    assert second == rows[3:]
    assert outbox.claim_stale(limit=10) == []


def test_a_claim_left_by_a_sweep_that_died_lapses(app):
    now = utcnow()
    [abandoned] = _stale_rows(1, sweep_claimed_at=now - timedelta(seconds=outbox.SWEEP_CLAIM_SECONDS + 1))
    _stale_rows(1, sweep_claimed_at=now - timedelta(seconds=5))  # a live sweep is on it
    assert outbox.claim_stale(limit=10) == [abandoned]


def test_rows_the_sweep_could_not_publish_are_given_back_to_the_next_sweep(app, redis_server):
    [row] = _stale_rows(1)
    redis_server.stop()
    assert outbox.publish_stale() == 0
    message = db.session.get(OutboxMessage, row)
    assert message.dispatched_at is None and message.sweep_claimed_at is None
    redis_server.start()
    _flush(redis_server)
    assert outbox.publish_stale() == 1
    assert len(_queued(redis_server)) == 1


@pytest.mark.commits
def test_two_overlapping_sweeps_publish_each_row_once(app, redis_server):
    _flush(redis_server)
    rows = _stale_rows(40)
    published = at_once(app, outbox.publish_stale)

    assert sum(published) == len(rows)
    assert len(_queued(redis_server)) == len(rows)
    dispatched = db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_not(None))
    )
    assert dispatched == len(rows)


class _Clock:
    """The outbox's clock, moved only by the publishes below."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now


def test_a_sweep_stops_publishing_before_its_claim_lapses_and_the_next_publishes_the_rest(
    app, redis_server, monkeypatch
):
    rows = _stale_rows(20)
    clock = _Clock()
    monkeypatch.setattr(outbox, "utcnow", clock)
    app.config["BROKER_PUBLISH_TIMEOUT"] = 5.0
    publish_takes = timedelta(seconds=4.9)  # each publish succeeds just under the timeout
    ended = []  # when each publish ended

    def slow_send_task(name, kwargs=None, **options):
        clock.now += publish_takes
        ended.append(clock.now)

    monkeypatch.setattr(app.extensions["celery"], "send_task", slow_send_task)

    claimed_at = clock.now
    first = outbox.publish_stale()
    assert 0 < first < len(rows)
    lapses = claimed_at + timedelta(seconds=outbox.SWEEP_CLAIM_SECONDS)
    assert len(ended) == first and ended[-1] < lapses

    second = outbox.publish_stale()
    assert first + second == len(rows) == len(ended)
    assert outbox.publish_stale() == 0
    db.session.expire_all()
    published = db.session.scalars(sa.select(OutboxMessage.attempts).where(OutboxMessage.id.in_(rows))).all()
    assert published == [1] * len(rows)
