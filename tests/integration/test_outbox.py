"""The transactional outbox against a real Redis: published after commit, never before."""

import json

import redis
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import outbox
from leads.models import OutboxMessage


def _queued_task_names(redis_server) -> list[str]:
    client = redis.Redis.from_url(redis_server.url)
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(outbox.ROUTING_QUEUE, 0, -1)]


def _flush(redis_server):
    redis.Redis.from_url(redis_server.url).flushdb()


def test_a_committed_message_is_published_right_after_commit(app, redis_server):
    _flush(redis_server)
    message = db.session.get(OutboxMessage, outbox.add_task("workers.sweep_outbox"))
    db.session.commit()
    assert _queued_task_names(redis_server) == ["workers.sweep_outbox"]
    db.session.refresh(message)
    assert message.dispatched_at is not None and message.attempts == 1


def test_a_rolled_back_message_is_never_published(app, redis_server):
    _flush(redis_server)
    outbox.add_task("workers.sweep_outbox")
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert _queued_task_names(redis_server) == []
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_with_redis_down_the_commit_succeeds_and_the_sweep_publishes_later(app, redis_server):
    redis_server.stop()
    message = db.session.get(OutboxMessage, outbox.add_task("workers.sweep_outbox"))
    db.session.commit()  # must not raise
    db.session.refresh(message)
    assert message.dispatched_at is None
    assert message.attempts == 1 and message.last_error
    redis_server.start()
    _flush(redis_server)
    assert outbox.publish_stale() == 1
    db.session.refresh(message)
    assert message.dispatched_at is not None
    assert _queued_task_names(redis_server) == ["workers.sweep_outbox"]
    assert outbox.publish_stale() == 0
