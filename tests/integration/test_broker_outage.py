"""A Redis outage while tasks finish does not stop the worker (workers/broker.py)."""

import pytest
import sqlalchemy as sa
from kombu import Connection

import config
from leads import create_app
from leads.extensions import db
from leads.messaging.email import queue_email
from leads.models import EmailMessage
from leads.timeutil import utcnow
from tests.helpers import wait_until
from tests.servers import RedisServer, Worker
from workers.broker import transport_for

pytestmark = pytest.mark.commits


@pytest.mark.parametrize("how", ["connection collected", "transport closed under the channel"])
def test_acknowledging_on_a_closed_broker_connection_is_a_connection_error(redis_server, how):
    """Celery logs a connection error on acknowledging and carries on; kombu's own transport
    raised AttributeError ('NoneType' object has no attribute 'hostname'), which stopped it."""
    connection = Connection(redis_server.url, transport=transport_for(redis_server.url))
    channel = connection.default_channel
    if how == "connection collected":
        connection.collect()
    else:  # closing stopped half-way: the channel kept its transport, whose client is gone
        channel._disconnect_pools()
        channel.connection.client = None
    with pytest.raises(connection.connection_errors):
        channel.qos.ack("a-delivery-tag")


def test_a_channel_publishes_with_one_redis_client_until_it_makes_a_new_pool(redis_server, monkeypatch):
    """kombu built a redis-py client for every message; the channel now keeps one per pool."""
    connection = Connection(redis_server.url, transport=transport_for(redis_server.url))
    channel = connection.default_channel
    made = []
    build = type(channel)._create_client

    def counted(self, **options):
        made.append(1)
        return build(self, **options)

    monkeypatch.setattr(type(channel), "_create_client", counted)
    for number in range(5):
        channel._put("one-client-queue", {"body": str(number)})
    assert len(made) == 1 and channel._size("one-client-queue") == 5
    channel._disconnect_pools()  # as after an outage: the next command makes a new pool
    assert channel._size("one-client-queue") == 5 and len(made) == 2
    connection.release()


def _statuses(email_ids):
    rows = db.session.execute(sa.select(EmailMessage.status).where(EmailMessage.id.in_(email_ids))).scalars()
    statuses = list(rows)
    db.session.rollback()  # never hold the SQLite write lock while the worker needs it
    return statuses


def test_the_worker_still_consumes_after_redis_stops_while_tasks_finish(app, mail_sink, test_env, tmp_path):
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    env = {**test_env, "REDIS_URL": broker.url}
    worker = Worker(env, tmp_path / "worker.log", pool="prefork")
    worker.start()
    outage_app = create_app(config.TestingConfig, REDIS_URL=broker.url)
    try:
        with outage_app.app_context():
            # A slow mail server keeps the tasks running while Redis goes away.
            for address in ("slow-1@example.org", "slow-2@example.org"):
                mail_sink.delay[address] = 2
            slow_ids = [
                queue_email(template="test_message", to=address, idempotency_key=address, sent_at=utcnow())
                for address in ("slow-1@example.org", "slow-2@example.org")
            ]
            db.session.commit()
            wait_until(lambda: "sending" in _statuses(slow_ids))
            broker.stop()
            # The tasks finish and are acknowledged with Redis gone.
            wait_until(lambda: _statuses(slow_ids).count("sent") >= 1, timeout=30)
            broker.start()

            after_id = queue_email(
                template="test_message", to="after@example.org", idempotency_key="after", sent_at=utcnow()
            )
            db.session.commit()
            wait_until(lambda: _statuses([after_id]) == ["sent"], timeout=60)
        log = worker.log_path.read_text(errors="replace")
        assert worker.process.poll() is None, log[-3000:]
        assert "Unrecoverable error" not in log
    finally:
        mail_sink.delay.clear()
        worker.stop()
        broker.stop()
        with outage_app.app_context():
            db.engine.dispose()
