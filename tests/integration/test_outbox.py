"""The transactional outbox against a real Redis: published after commit, never before."""

import json

import redis
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import outbox
from leads.models import OutboxMessage
from tests.helpers import statements


def _queued_task_names(redis_server) -> list[str]:
    client = redis.Redis.from_url(redis_server.url)
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(outbox.ROUTING_QUEUE, 0, -1)]


def _flush(redis_server):
    redis.Redis.from_url(redis_server.url).flushdb()


def _the_message() -> OutboxMessage:
    return db.session.scalars(sa.select(OutboxMessage)).one()


def test_a_committed_message_is_published_right_after_commit(app, redis_server):
    _flush(redis_server)
    outbox.add_task("workers.sweep_outbox")
    db.session.commit()
    assert _queued_task_names(redis_server) == ["workers.sweep_outbox"]
    message = _the_message()
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
    outbox.add_task("workers.sweep_outbox")
    db.session.commit()  # must not raise
    message = _the_message()
    assert message.dispatched_at is None
    assert message.attempts == 1 and message.last_error
    redis_server.start()
    _flush(redis_server)
    assert outbox.publish_stale() == 1
    db.session.refresh(message)
    assert message.dispatched_at is not None
    assert _queued_task_names(redis_server) == ["workers.sweep_outbox"]
    assert outbox.publish_stale() == 0


def test_every_task_of_a_transaction_is_written_in_one_statement_at_its_commit(app, redis_server):
    _flush(redis_server)
    outbox.add_task(outbox.ROUTE_LEAD, lead_id=7)
    outbox.add_to_batch(outbox.SEND_EMAILS, "email_ids", 1)
    outbox.add_to_batch(outbox.SEND_EMAILS, "email_ids", 2)
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0, "nothing before the commit"
    db.session.rollback()
    with statements() as seen:
        outbox.add_task(outbox.ROUTE_LEAD, lead_id=7)
        outbox.add_to_batch(outbox.SEND_EMAILS, "email_ids", 1)
        outbox.add_to_batch(outbox.SEND_EMAILS, "email_ids", 2)
        db.session.commit()
    assert len([s for s in seen if s.startswith("INSERT INTO outbox_message")]) == 1
    written = db.session.execute(
        sa.select(OutboxMessage.task_name, OutboxMessage.payload).order_by(OutboxMessage.id)
    ).all()
    assert [tuple(row) for row in written] == [
        (outbox.ROUTE_LEAD, {"lead_id": 7}),
        (outbox.SEND_EMAILS, {"email_ids": [1, 2]}),
    ]
    assert _queued_task_names(redis_server) == [outbox.ROUTE_LEAD]
